import math

import numpy as np
import pytest
import torch

from attack.countermeasures import Rounding
from attack.gradient_estimators import FiniteDifferences, NESEstimator
from attack.mi_face import MIFace, MIFaceConfig
from attack.prediction_api import PredictionAPI

from .tiny_models import TinyLinear

V = np.array([0.5, -1.0, 2.0])  # w_0 - w_1


def tiny_api(countermeasure=None) -> PredictionAPI:
    return PredictionAPI(TinyLinear([V.tolist(), [0.0, 0.0, 0.0]]), countermeasure)


def reference_descent(lam: float, gamma: float, alpha: int) -> tuple[int, np.ndarray]:
    """Algorithm 1 worked by hand for f_0 = sigmoid(v.x): x <- x + lam f(1-f) v until f >= gamma."""
    x = np.zeros(3)
    for i in range(1, alpha + 1):
        f = 1 / (1 + math.exp(-V @ x))
        x = x + lam * f * (1 - f) * V
        if 1 / (1 + math.exp(-V @ x)) >= gamma:
            return i, x
    return alpha, x


def test_confidence_rule_matches_the_hand_computed_descent():
    config = MIFaceConfig(alpha=5000, beta=100, gamma=0.9, lam=0.1, stop_rule="confidence")
    [result] = MIFace(tiny_api(), config, show_progress=False).invert([0])
    iterations, x = reference_descent(0.1, 0.9, 5000)
    assert result.stopped_by == "target"
    assert result.iterations == iterations and iterations > 10
    np.testing.assert_allclose(result.image.numpy(), x, rtol=1e-4)
    assert result.reported_confidence >= 0.9 and result.true_confidence >= 0.9


def test_cost_rule_as_the_paper_writes_it_stops_at_the_first_step():
    """c(x) <= gamma with gamma = 0.99 holds once f > 0.01, which f_0(0) = 0.5 already is."""
    config = MIFaceConfig(gamma=0.99, stop_rule="cost")
    [result] = MIFace(tiny_api(), config, show_progress=False).invert([0])
    assert (result.stopped_by, result.iterations) == ("target", 1)
    assert result.reported_confidence < 0.7


def test_plateau_rule_fires_after_beta_steps_without_progress():
    api = PredictionAPI(TinyLinear([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))  # zero gradient: cost stays 0.5
    [result] = MIFace(api, MIFaceConfig(alpha=1000, beta=7), show_progress=False).invert([0])
    # the paper's rule at i = beta: c(x_7) >= max(c(x_6), ..., c(x_0))
    assert (result.stopped_by, result.iterations) == ("plateau", 7)
    assert result.cost == pytest.approx(0.5)


def test_alpha_caps_the_iterations():
    config = MIFaceConfig(alpha=25, beta=100, gamma=0.999, lam=0.01)
    [result] = MIFace(tiny_api(), config, show_progress=False).invert([0])
    assert (result.stopped_by, result.iterations) == ("alpha", 25)
    assert result.queries == 26  # x_0 and each of the 25 steps


def test_the_best_point_is_returned_not_the_last():
    """A PROCESS that undoes progress after step 3 must not cost the attacker the best point found."""
    calls = {"n": 0}

    def sabotage(x):
        calls["n"] += 1
        return x if calls["n"] <= 3 else torch.zeros_like(x)

    config = MIFaceConfig(alpha=50, beta=5, gamma=0.999, lam=1.0)
    [result] = MIFace(tiny_api(), config, process=sabotage, show_progress=False).invert([0], keep_history=True)
    assert result.cost == pytest.approx(min(result.history))
    assert result.cost == pytest.approx(result.history[3])  # the third step (after x_0) was the best
    assert len(result.history) == result.iterations + 1
    assert result.stopped_by == "plateau"


def test_batched_rows_stop_independently_and_match_single_runs():
    api = PredictionAPI(TinyLinear([[1.0, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 3.0]]))
    config = MIFaceConfig(alpha=3000, gamma=0.95, lam=0.5)
    batched = MIFace(api, config, show_progress=False).invert([0, 1, 2])
    singles = [MIFace(api, config, show_progress=False).invert([label])[0] for label in (0, 1, 2)]
    assert len({r.iterations for r in batched}) == 3
    for b, s in zip(batched, singles):
        assert b.iterations == s.iterations and b.stopped_by == s.stopped_by == "target"
        torch.testing.assert_close(b.image, s.image)


def test_white_box_counts_one_query_per_row_and_step():
    api = tiny_api()
    results = MIFace(api, MIFaceConfig(gamma=0.9), show_progress=False).invert([0, 0, 1])
    assert [r.queries for r in results] == [r.iterations + 1 for r in results]
    assert api.queries == sum(r.queries for r in results)


def test_finite_differences_match_the_true_gradient():
    api = tiny_api()
    x = torch.tensor([[0.1, 0.2, -0.3]])
    f = api.confidences(x)[:, 0]
    cost = lambda pts, owner: 1 - api.confidences(pts)[:, 0]  # noqa: E731
    grad = FiniteDifferences(h=1e-3).estimate(cost, x, 1 - f)
    s = torch.sigmoid(torch.tensor(V, dtype=torch.float32) @ x[0])
    torch.testing.assert_close(grad[0], -(s * (1 - s)) * torch.tensor(V, dtype=torch.float32), atol=2e-3, rtol=1e-2)


def test_nes_points_the_right_way():
    api = tiny_api()
    x = torch.zeros(1, 3)
    cost = lambda pts, owner: 1 - api.confidences(pts)[:, 0]  # noqa: E731
    grad = NESEstimator(sigma=0.01, samples=400, seed=0).estimate(cost, x, 1 - api.confidences(x)[:, 0])
    true = -0.25 * torch.tensor(V, dtype=torch.float32)
    assert torch.nn.functional.cosine_similarity(grad, true[None]).item() > 0.9


def test_black_box_counts_queries_per_label_and_obeys_the_budget():
    api = tiny_api()
    config = MIFaceConfig(alpha=10_000, gamma=0.999, lam=0.05, query_budget=200)
    attack = MIFace(api, config, estimator=FiniteDifferences(h=1e-3), show_progress=False)
    results = attack.invert([0, 1])
    for r in results:
        assert r.stopped_by == "budget"
        assert 196 < r.queries <= 200 and r.queries == 4 * r.iterations + 1  # each point, and 3 probes to go on
    assert api.queries == sum(r.queries for r in results)


def test_black_box_fd_reaches_the_same_point_as_white_box():
    config = MIFaceConfig(gamma=0.9, lam=0.1)
    [white] = MIFace(tiny_api(), config, show_progress=False).invert([0])
    [black] = MIFace(tiny_api(), config, estimator=FiniteDifferences(h=1e-4), show_progress=False).invert([0])
    assert black.stopped_by == "target"
    assert abs(black.iterations - white.iterations) <= 2
    torch.testing.assert_close(black.image, white.image, atol=5e-3, rtol=1e-2)


def test_rounding_starves_finite_differences():
    config = MIFaceConfig(alpha=2000, beta=20, gamma=0.9, lam=0.1)
    [rounded] = MIFace(tiny_api(Rounding(0.05)), config, estimator=FiniteDifferences(h=1e-3),
                       show_progress=False).invert([0])
    assert rounded.stopped_by == "plateau" and rounded.iterations == 20
    assert rounded.true_confidence == pytest.approx(0.5)


@pytest.mark.parametrize("kwargs,message", [({"alpha": 0}, "alpha"), ({"gamma": 1.5}, "gamma"),
                                            ({"lam": -1}, "lambda"), ({"stop_rule": "x"}, "stop_rule"),
                                            ({"process_every": -1}, "process_every"),
                                            ({"start_value": 2.0}, "start_value"), ({"step": "big"}, "step"),
                                            ({"confidence_term": "sqrt"}, "confidence_term must be one of linear, log"),
                                            ({"confidence_term": "log", "stop_rule": "cost"},
                                             "with confidence_term log use the confidence or none stop rule"),
                                            ({"tv_weight": -1.0}, "tv_weight")])
def test_invalid_settings_are_refused_in_one_place(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MIFaceConfig(**kwargs)


def test_a_query_budget_needs_a_black_box_estimator():
    with pytest.raises(ValueError, match="black-box"):
        MIFace(tiny_api(), MIFaceConfig(query_budget=10))


def test_log_term_matches_the_hand_computed_descent():
    """c = -log f with f = sigmoid(v.x): grad c = -(1 - f) v, so x <- x + lam (1 - f) v until f >= gamma."""
    x, lam = np.zeros(3), 0.1
    for i in range(1, 5001):
        x = x + lam * (1 - 1 / (1 + math.exp(-V @ x))) * V
        if 1 / (1 + math.exp(-V @ x)) >= 0.9:
            break
    config = MIFaceConfig(gamma=0.9, lam=lam, confidence_term="log")
    result, twin = MIFace(tiny_api(), config, show_progress=False).invert([0, 0], keep_history=True)  # a batch
    np.testing.assert_allclose(twin.image.numpy(), result.image.numpy())
    assert (result.stopped_by, result.iterations) == ("target", i)
    np.testing.assert_allclose(result.image.numpy(), x, rtol=1e-4)
    assert result.history[0] == pytest.approx(math.log(2))  # -log f(x_0) = -log 0.5


def test_log_term_leaves_a_start_where_the_model_is_confidently_wrong():
    """f(x_0) = 1e-7: the paper's 1 - f has a gradient of 1e-7 there and the plain step never moves."""
    bias = -math.log(1e7)  # logit 0 vs 16.1 at x_0 = 0 (the constant pixel 1 carries the bias)
    api = lambda: PredictionAPI(TinyLinear([[1.0, 0.5, 0.0], [0.0, 0.0, -bias]]))  # noqa: E731
    start = torch.tensor([[0.0, 0.0, 1.0]])
    stuck = MIFace(api(), MIFaceConfig(alpha=300, lam=0.1), show_progress=False).invert([0], start=start)[0]
    moved = MIFace(api(), MIFaceConfig(alpha=300, lam=0.1, confidence_term="log"),
                   show_progress=False).invert([0], start=start)[0]
    assert stuck.stopped_by != "target" and stuck.reported_confidence < 1e-6
    assert moved.stopped_by == "target" and moved.reported_confidence >= 0.99


def test_log_term_reads_the_unprotected_confidence_in_the_white_box_gradient():
    """Rounding to 0.5 reports f~ = 0 at f = 0.2; the white-box attacker still divides by the model's own f,
    so its step is the unrounded one (dividing by the floor would throw x to 1e29)."""
    start = torch.tensor([[-1.0, 2.0, 0.0]])  # v.x = -2.5: f = 0.076
    config = MIFaceConfig(alpha=1, lam=0.1, confidence_term="log", stop_rule="none")
    steps = {}
    for name, countermeasure in (("rounded", Rounding(0.5)), ("plain", None)):
        def record(x, name=name):  # PROCESS sees x_1 right after the step
            steps[name] = x.clone()
            return x

        MIFace(tiny_api(countermeasure), config, process=record, show_progress=False).invert([0], start=start)
    f = 1 / (1 + math.exp(2.5))
    np.testing.assert_allclose(steps["rounded"].numpy()[0], start.numpy()[0] + 0.1 * (1 - f) * V, rtol=1e-5)
    np.testing.assert_allclose(steps["rounded"].numpy(), steps["plain"].numpy(), rtol=1e-6)
