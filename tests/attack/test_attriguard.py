"""AttriGuard: Phase I's minimum change on hand-made classifiers (checked against every possible row), Phase II's
mechanism on cases worked by hand (and against a general-purpose solver), randomised response's expected changes,
and the command on the real steak survey."""
from itertools import product

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.optimize import minimize

from attack.trees.attriguard import (
    AdditiveClassifier,
    allowed_moves,
    expected_changes,
    matched_epsilon,
    mechanism,
    minimum_change,
    randomised_response,
)
from attack.trees.public_answers import UNANSWERED, load_public_answers
from mi_harness.cli import main


def weighted_rule(weights, threshold) -> AdditiveClassifier:
    """Binary questions; the classifier says 1 when sum_j weights_j x_j > threshold."""
    table = np.zeros((len(weights), 2, 2))
    table[:, 1, 1] = weights
    return AdditiveClassifier(table, np.array([0.0, -threshold]))


def brute_force(model: AdditiveClassifier, row, sizes, target, free=None) -> int | None:
    """The fewest answers changed, over every possible row (only questions in ``free`` may change)."""
    best = None
    for other in product(*(range(k) for k in sizes)):
        other = np.array(other)
        if free is not None and (other != row)[~free].any():
            continue
        if model.predict(other[None])[0] == target:
            cost = int((other != row).sum())
            best = cost if best is None else min(best, cost)
    return best


def test_phase_one_finds_the_changes_worked_out_by_hand():
    # says "yes" when 3 x1 + x2 + x3 > 3.5: x1 and at least one of x2, x3
    model = weighted_rule([3.0, 1.0, 1.0], 3.5)
    moves = lambda row: allowed_moves(np.array(row), np.array([2, 2, 2]), "modify")  # noqa: E731
    assert minimum_change(model, np.array([0, 1, 1]), moves([0, 1, 1]), 1).tolist() == [1, 1, 1]  # one change
    two = minimum_change(model, np.array([0, 0, 0]), moves([0, 0, 0]), 1)
    assert two[0] == 1 and two[1:].sum() == 1  # x1 and one other: two changes, not three
    assert minimum_change(model, np.array([1, 1, 0]), moves([1, 1, 0]), 0).tolist() == [0, 1, 0]  # drop x1
    assert minimum_change(model, np.array([1, 1, 0]), moves([1, 1, 0]), 1).tolist() == [1, 1, 0]  # already says 1
    # the first question frozen: "yes" is out of reach for someone without x1
    frozen = moves([0, 1, 1])
    frozen[0] = np.zeros(0, dtype=int)
    assert minimum_change(model, np.array([0, 1, 1]), frozen, 1) is None


@pytest.mark.parametrize("classes", [2, 3])
def test_phase_one_is_the_exact_minimum_over_every_row(classes):
    rng = np.random.default_rng(classes)
    sizes = [3, 2, 4, 3]
    for _ in range(12):
        table = rng.normal(size=(len(sizes), max(sizes), classes))
        model = AdditiveClassifier(table, rng.normal(size=classes))
        row = np.array([rng.integers(k) for k in sizes])
        moves = allowed_moves(row, np.array(sizes), "modify")
        for target in range(classes):
            found = minimum_change(model, row, moves, target)
            best = brute_force(model, row, sizes, target)
            if best is None:
                assert found is None
            else:
                assert model.predict(found[None])[0] == target and (found != row).sum() == best


def test_policies_change_only_what_they_allow():
    counts = np.array([2, 3])  # question 0: answers 0, 1 (code 2 = unanswered); question 1: answers 0, 1, 2
    row = np.array([2, 1])
    assert [m.tolist() for m in allowed_moves(row, counts, "modify")] == [[], [0, 2]]
    assert [m.tolist() for m in allowed_moves(row, counts, "add")] == [[0, 1], []]
    assert [m.tolist() for m in allowed_moves(row, counts, "modify-add")] == [[0, 1], [0, 2]]
    with pytest.raises(ValueError, match="unknown policy"):
        allowed_moves(row, counts, "remove")


def test_phase_two_by_hand():
    p = np.array([0.5, 0.3, 0.2])
    costs = np.array([[0.0, 1.0, 2.0]])
    # beta = 0: the person's answers stay as they are (all weight on the classifier's own output)
    assert mechanism(p, costs, 0.0).tolist() == [[1.0, 0.0, 0.0]]
    # beta >= sum p_i cost_i = 0.7: the target itself
    assert np.allclose(mechanism(p, costs, 0.7), p) and np.allclose(mechanism(p, costs, 5.0), p)
    # beta = 0.5: M_i = p_i / (mu + lambda cost_i) with mu = 0.8, lambda = 0.4 sums to 1 and spends 0.5
    assert np.allclose(mechanism(p, costs, 0.5), [[0.625, 0.25, 0.125]], atol=1e-9)
    # two values: the budget caps the other value's probability at beta / cost
    binary = mechanism(np.array([0.8, 0.2]), np.array([[0.0, 4.0], [3.0, 0.0], [0.0, 0.5]]), 0.4)
    assert np.allclose(binary, [[0.9, 0.1], [0.4 / 3, 1 - 0.4 / 3], [0.8, 0.2]], atol=1e-9)
    # an unreachable value gets nothing; the target is renormalised over the others
    assert np.allclose(mechanism(p, np.array([[0.0, np.inf, 1.0]]), 10.0), [[0.5 / 0.7, 0.0, 0.2 / 0.7]])
    with pytest.raises(ValueError, match="positive probability"):
        mechanism(np.array([1.0, 0.0]), np.array([[0.0, 1.0]]), 1.0)


def test_phase_two_matches_a_general_solver():
    rng = np.random.default_rng(4)
    for _ in range(5):
        p = rng.dirichlet(np.ones(4))
        costs = np.concatenate([[0.0], rng.integers(1, 5, size=3).astype(float)])
        beta = 0.5 * float(p @ costs)
        exact = mechanism(p, costs[None], beta)[0]
        solver = minimize(lambda m: np.sum(p * np.log(p / m)), p, method="SLSQP", bounds=[(1e-9, 1)] * 4,
                          constraints=[{"type": "eq", "fun": lambda m: m.sum() - 1},
                                       {"type": "ineq", "fun": lambda m: beta - m @ costs}])
        assert exact @ costs <= beta + 1e-9 and abs(exact.sum() - 1) < 1e-9
        assert np.sum(p * np.log(p / exact)) <= np.sum(p * np.log(p / solver.x)) + 1e-6
        assert np.allclose(exact, solver.x, atol=1e-3)


def test_randomised_response_changes_as_many_answers_as_the_formula_says():
    counts = np.array([[2, 5, 0]])  # a yes/no question, a five-answer one, and one left unanswered
    assert expected_changes(np.array([np.log(3.0)]), counts)[0] == pytest.approx(1 / 4 + 4 / 7)
    epsilon = matched_epsilon(np.repeat(counts, 3, axis=0), 0.6)
    assert np.allclose(expected_changes(epsilon, np.repeat(counts, 3, axis=0)), 0.6)
    assert matched_epsilon(counts, 0.0)[0] == np.inf and matched_epsilon(counts, 5.0)[0] == 0.0
    people = 40_000
    rows = np.tile([1, 3, 0], (people, 1))
    noisy = randomised_response(rows, np.repeat(counts, people, axis=0), np.full(people, epsilon[0]),
                                np.random.default_rng(0))
    changed = (noisy != rows).sum(axis=1)
    assert abs(changed.mean() - 0.6) < 4 * changed.std() / np.sqrt(people)
    assert (noisy[:, 2] == 0).all() and set(noisy[:, 1]) == set(range(5))


def test_the_surveys_keep_unanswered_questions_as_an_answer():
    steak = load_public_answers("fivethirtyeight")
    assert len(steak.truth) == 539 and steak.sensitive_values == ["No", "Yes"] and "cheated" not in steak.columns
    assert steak.values["income"][-1] == UNANSWERED and (steak.codes < steak.answer_counts()).all(axis=1).sum() == 332
    gss = load_public_answers("gss")
    assert len(gss.truth) == 15235 and gss.sensitive == "xmovie" and UNANSWERED in gss.values["childs"]


def test_attriguard_command_on_the_steak_survey(tmp_path):
    runner = CliRunner()
    out = tmp_path / "ag"
    result = runner.invoke(main, ["attriguard", "--survey", "fivethirtyeight", "--betas", "0.5,4", "--draws", "2",
                                  "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "attriguard.csv")
    assert sorted(set(table["beta"])) == [0.0, 0.5, 4.0] and set(table["defence"]) == {"attriguard",
                                                                                      "randomised response"}
    guard = table[table["defence"] == "attriguard"]
    assert (guard["changed_answers"] <= guard["beta"] + 1e-9).all()
    defender = guard[(guard["attacker"] == "defender's classifier") & (guard["beta"] == 4.0)].iloc[0]
    # a budget the target fits in: the defender's classifier's output follows the prior whatever the truth is
    assert defender["kl_to_target"] < 1e-9 and defender["balanced_accuracy"] == pytest.approx(0.5, abs=1e-9)
    rr = table[(table["defence"] == "randomised response") & (table["beta"] == 4.0)]
    assert (rr["changed_answers"] - 4.0).abs().max() < 0.5 and rr["epsilon"].iloc[0] > 0
    assert (out / "figures" / "attriguard.png").stat().st_size > 0 and "cheated" in (out / "note.txt").read_text()
    for bad, message in ((["--betas", "-1"], "at least 0"), (["--betas", "x"], "numbers"),
                         (["--sensitive", "shoe size"], "unknown sensitive answer")):
        refused = runner.invoke(main, ["attriguard", "--survey", "fivethirtyeight", *bad, "--out",
                                       str(tmp_path / "bad")])
        assert refused.exit_code != 0 and message in refused.output and not (tmp_path / "bad").exists()
