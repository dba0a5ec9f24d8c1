"""The metrics on hand-made answer tables whose right values are worked out by hand."""
import math

import pandas as pd
import pytest

from analysis.load import COLUMNS, tidy
from analysis.metrics import accuracy_table, compare_countermeasures, kappa_across_runs, run_verdicts


def answer(model="softmax", countermeasure="none", present=True, choice="1", target=1, run=1, item="i1",
           worker="w1", gold=False, skilled=True):
    correct = choice == (str(target) if present else "absent")
    return {"study": "s", "run": run, "worker": worker, "hit": 1, "item": item, "subject": "s1", "model": model,
            "attack": "mi-face", "countermeasure": countermeasure, "blur": "", "gold": gold,
            "target_present": present, "target_position": target if present else None, "choice": choice,
            "correct": correct, "skilled": skilled, "response_ms": 1000, "shown_at": None, "answered_at": None}


def frame(rows):
    return tidy(pd.DataFrame(rows, columns=COLUMNS))


def group_a():
    """10 answers: 8 target-present (6 hits, 1 wrong face, 1 miss), 2 target-absent (1 rejection, 1 false id)."""
    return ([answer(choice="3", target=3)] * 6 + [answer(choice="2", target=3), answer(choice="absent", target=3)]
            + [answer(present=False, choice="absent"), answer(present=False, choice="4")])


def test_counts_rates_chance_levels_and_the_binomial_test():
    table = accuracy_table(frame(group_a()))
    row = table.iloc[0]
    assert (row.answers, row.correct, row.present, row.hits, row.wrong_face, row.misses) == (10, 7, 8, 6, 1, 1)
    assert (row.absent, row.correct_rejections, row.false_ids) == (2, 1, 1)
    assert row.accuracy == pytest.approx(0.7) and row.hit_rate == pytest.approx(0.75)
    assert row.chance_random_face == pytest.approx(0.8 / 5) and row.chance_always_absent == pytest.approx(0.2)
    # P(X >= 6) for X ~ Binomial(8, 1/5), by hand
    by_hand = 28 * 0.2 ** 6 * 0.8 ** 2 + 8 * 0.2 ** 7 * 0.8 + 0.2 ** 8
    assert row.p_vs_chance == pytest.approx(by_hand)


@pytest.mark.parametrize("method, low, high", [("wilson", 0.3968, 0.8922), ("beta", 0.3475, 0.9333)])
def test_intervals_are_the_named_method(method, low, high):
    row = accuracy_table(frame(group_a()), method=method).iloc[0]
    assert (row.ci_low, row.ci_high) == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))
    assert row.method == method


def test_gold_items_are_left_out_and_skilled_workers_can_be_chosen():
    rows = group_a() + [answer(gold=True, choice="1")] * 5 + [answer(model="mlp", choice="5", skilled=False)]
    everyone = accuracy_table(frame(rows), by=("model",))
    assert list(everyone["model"]) == ["mlp", "softmax"] and list(everyone["answers"]) == [1, 10]
    skilled = accuracy_table(frame(rows), by=("model",), workers="skilled")
    assert list(skilled["model"]) == ["softmax"]  # no row for a group without answers, rather than a NaN row


def test_a_group_without_target_present_lineups_has_no_hit_rate_rather_than_nan_noise():
    row = accuracy_table(frame([answer(present=False, choice="absent")] * 3)).iloc[0]
    assert row.accuracy == 1.0 and row.hit_rate is None and row.p_vs_chance is None
    assert row.chance_random_face == 0 and row.chance_always_absent == 1


def test_fleiss_kappa_of_the_runs_verdicts_by_hand():
    verdicts = {"a": ["1", "1", "1"], "b": ["2", "2", "2"], "c": ["1", "1", "2"], "d": ["absent"] * 3}
    rows = [answer(item=item, run=run + 1, choice=choice, target=1)
            for item, choices in verdicts.items() for run, choice in enumerate(choices)]
    result = kappa_across_runs(frame(rows), bootstrap=200)
    # P-bar = (1 + 1 + 1/3 + 1) / 4; P-e = (5/12)^2 + (4/12)^2 + (3/12)^2
    p_bar, p_e = (3 + 1 / 3) / 4, (25 + 16 + 9) / 144
    assert result["kappa"] == pytest.approx((p_bar - p_e) / (1 - p_e))
    assert result["items"] == 4 and result["runs"] == 3
    assert result["ci_low"] <= result["kappa"] <= result["ci_high"] <= 1


def test_a_run_verdict_is_the_modal_answer_and_ties_go_to_the_first_place():
    rows = [answer(item="x", run=1, choice=c, worker=f"w{k}") for k, c in enumerate(["2", "3", "3", "absent"])]
    rows += [answer(item="x", run=2, choice=c, worker=f"v{k}") for k, c in enumerate(["4", "2"])]
    assert run_verdicts(frame(rows)).loc["x"].tolist() == ["3", "2"]


def test_kappa_needs_two_runs():
    result = kappa_across_runs(frame(group_a()))
    assert result["kappa"] is None and "two runs" in result["note"]


def test_countermeasures_against_the_baseline_with_holm_correction():
    rows = ([answer(countermeasure="none", choice="1")] * 18 + [answer(countermeasure="none", choice="2")] * 2
            + [answer(countermeasure="round:0.05", choice="1")] * 2
            + [answer(countermeasure="round:0.05", choice="2")] * 18
            + [answer(countermeasure="round:0.001", choice="1")] * 9 + [answer(countermeasure="round:0.001",
                                                                               choice="2")])
    table = compare_countermeasures(frame(rows)).set_index("countermeasure")
    assert table.loc["round:0.05", "test"] == "two-proportion z"
    assert table.loc["round:0.001", "test"] == "fisher exact"  # 3 failures in all: expected counts under 5
    assert table.loc["round:0.001", "p"] == pytest.approx(1.0)
    assert table.loc["round:0.05", "p"] < 1e-6 and bool(table.loc["round:0.05", "significant"])
    p_small = table.loc["round:0.05", "p"]
    assert table.loc["round:0.05", "p_adjusted"] == pytest.approx(2 * p_small)  # Holm: smallest p times 2
    assert table.loc["round:0.001", "p_adjusted"] == pytest.approx(1.0)
    assert not math.isnan(table.loc["round:0.05", "baseline_accuracy"])
    assert table.loc["round:0.05", "baseline_accuracy"] == pytest.approx(0.9)


def test_an_empty_study_gives_empty_tables_not_errors():
    empty = frame([])
    assert accuracy_table(empty).empty and compare_countermeasures(empty).empty
    assert kappa_across_runs(empty)["kappa"] is None
