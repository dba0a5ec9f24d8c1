import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from attack.gradient_estimators import FiniteDifferences
from attack.image_prior import ImagePrior, parse_prior, total_variation
from attack.mi_face import MIFace, MIFaceConfig
from attack.prediction_api import PredictionAPI

from .tiny_models import TinyLinear

# a 2x2 image [[a, b], [c, d]] = [[0, 1], [2, 4]]: forward differences, zero past the last row and column
#   (0,0): dx = b - a = 1, dy = c - a = 2 -> sqrt(5);  (0,1): dy = d - b = 3;  (1,0): dx = d - c = 2;  (1,1): 0
SQUARE = torch.tensor([[0.0, 1.0, 2.0, 4.0]])


def test_total_variation_of_a_small_image_worked_by_hand():
    assert float(total_variation(SQUARE, 2, 2)) == pytest.approx((math.sqrt(5) + 3 + 2) / 4, abs=1e-3)
    assert float(total_variation(torch.full((1, 4), 0.7), 2, 2)) == 0.0  # a flat image costs nothing


def test_the_prior_gradient_matches_the_hand_derivative():
    """d/dx of w/4 (sqrt((b-a)^2 + (c-a)^2) + |d-b| + |d-c|) at (a, b, c, d) = (0, 1, 2, 4)."""
    weight = 0.3
    code = SQUARE.clone().requires_grad_(True)
    cost = ImagePrior(weight, height=2, width=2)(code, torch.tensor([0]))
    (grad,) = torch.autograd.grad(cost.sum(), code)
    r5 = math.sqrt(5)
    by_hand = np.array([-3 / r5, 1 / r5 - 1, 2 / r5 - 1, 2.0]) * weight / 4
    np.testing.assert_allclose(grad[0].numpy(), by_hand, atol=1e-5)
    assert float(cost.detach()) == pytest.approx(weight * (r5 + 5) / 4, abs=1e-3)


def test_the_prior_scores_the_decoded_image():
    """For the DAE the search runs in code space: the prior must look at the decoded pixels."""
    prior = ImagePrior(1.0, decode=lambda code: code.repeat(1, 2), height=2, width=2)  # [u, v] -> [[u, v], [u, v]]
    assert float(prior(torch.tensor([[0.0, 1.0]]), torch.tensor([0]))) == pytest.approx(0.5, abs=1e-3)


def smooth_and_grainy_api() -> PredictionAPI:
    """Two classes over a 6x6 image; class 0's direction is a smooth ramp plus pixel-level grain, small enough
    that reaching the target takes many steps (the prior has no say in a single step from a flat x_0)."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(-1, 1, 6)[None, :].repeat(6, 0).ravel()
    direction = 0.1 * (ramp + 0.8 * rng.choice([-1.0, 1.0], size=36))
    return PredictionAPI(TinyLinear([direction.tolist(), [0.0] * 36]))


def tv_of(result) -> float:
    return float(total_variation(result.image[None], 6, 6))


@pytest.mark.parametrize("step", ["plain", "normalized"])
def test_the_prior_makes_a_reconstruction_smoother(step):
    base = {"alpha": 2000, "beta": 50, "gamma": 0.95, "lam": 0.05 if step == "normalized" else 0.5, "step": step}
    [plain] = MIFace(smooth_and_grainy_api(), MIFaceConfig(**base), show_progress=False,
                     image_shape=(6, 6)).invert([0])
    [smooth] = MIFace(smooth_and_grainy_api(), MIFaceConfig(**base, tv_weight=0.2), show_progress=False,
                      image_shape=(6, 6)).invert([0])
    assert plain.stopped_by == smooth.stopped_by == "target"
    assert tv_of(smooth) < 0.7 * tv_of(plain)


def test_a_blackbox_attacker_gets_the_prior_too():
    """The prior is the attacker's own term: known exactly, no queries spent on it."""
    config = {"alpha": 40, "beta": 100, "gamma": 0.999, "lam": 0.5, "query_budget": 10_000}
    runs = {}
    for weight in (0.0, 0.2):
        attack = MIFace(smooth_and_grainy_api(), MIFaceConfig(**config, tv_weight=weight),
                        estimator=FiniteDifferences(h=1e-3), show_progress=False, image_shape=(6, 6))
        [runs[weight]] = attack.invert([0])
    assert runs[0.0].queries == runs[0.2].queries  # the same queries a step with and without the prior
    assert tv_of(runs[0.2]) < 0.7 * tv_of(runs[0.0])
    assert MIFace(smooth_and_grainy_api(), MIFaceConfig(tv_weight=0.5), image_shape=(6, 6),
                  estimator=FiniteDifferences(h=1e-3)).settings()["tv_weight"] == 0.5


def test_the_prior_adds_to_other_side_information():
    """Deblurring's AUXTERM and the prior together: c(x_0) = 1 - f + aux + w TV."""
    api = smooth_and_grainy_api()
    start = torch.linspace(0, 1, 36)[None]
    aux = lambda code, rows: (code ** 2).sum(1)  # noqa: E731
    attack = MIFace(api, MIFaceConfig(alpha=1, tv_weight=0.2), show_progress=False, image_shape=(6, 6))
    [result] = attack.invert([0], start=start, aux=aux, keep_history=True)
    expected = 1 - float(api.true_confidence(start, torch.tensor([0]))) + float((start ** 2).sum()) \
        + 0.2 * float(total_variation(start, 6, 6))
    assert result.history[0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("weight", [-0.1, float("nan")])
def test_a_bad_prior_weight_is_refused_by_the_config(weight):
    with pytest.raises(ValueError, match="tv_weight must be 0 .no prior. or positive"):
        MIFaceConfig(tv_weight=weight)


def test_a_prior_on_an_image_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="needs the image's shape: 112x92 is not the model's 36 pixels"):
        MIFace(smooth_and_grainy_api(), MIFaceConfig(tv_weight=0.1))
    MIFace(smooth_and_grainy_api(), MIFaceConfig())  # without a prior the shape does not matter


@pytest.mark.parametrize("text, expected", [("tv:0.1", {"tv_weight": 0.1}), (" tv:2e-2 ", {"tv_weight": 0.02}),
                                            ("none", {}), (None, {}), ("", {})])
def test_prior_specifications(text, expected):
    assert parse_prior(text) == expected


@pytest.mark.parametrize("text, message", [("tv", "use tv:WEIGHT"), ("blur:1", "use tv:WEIGHT"),
                                           ("tv:abc", "'abc' is not a number"), ("tv:-1", "must be positive"),
                                           ("tv:0", "must be positive"), ("tv:nan", "must be positive")])
def test_bad_prior_specifications_name_the_problem(text, message):
    with pytest.raises(ValueError, match=message):
        parse_prior(text)


# -- the named settings and the command line ---------------------------------------------------------------

def test_the_paper_setting_is_the_default_and_smooth_is_named():
    from attack.reconstruct import AttackRequest, attack_name, mi_face_config

    paper = mi_face_config("mlp", False, {})
    assert (paper.step, paper.lam, paper.tv_weight) == ("plain", 0.1, 0.0)
    smooth = mi_face_config("mlp", False, {}, "smooth")
    assert (smooth.step, smooth.tv_weight, smooth.confidence_term, smooth.stop_rule, smooth.alpha) == \
        ("normalized", 0.1, "log", "none", 300) and smooth.lam == pytest.approx(0.01)
    assert mi_face_config("mlp", False, {"tv_weight": 0.3, "lam": None}, "smooth").tv_weight == 0.3  # options win
    assert mi_face_config("dae", False, {}, "smooth").start_value == 0.5  # the model's own defaults stay
    request = AttackRequest(Path("m.pt"), [0], preset="smooth")
    assert attack_name(request, smooth) == "mi-face+tv" and attack_name(request, paper) == "mi-face"
    assert attack_name(AttackRequest(Path("m.pt"), [0], access="blackbox"), smooth) == "mi-face-blackbox+tv"
    with pytest.raises(ValueError, match="preset must be one of paper, smooth, faces, got 'pretty'"):
        AttackRequest(Path("m.pt"), [0], preset="pretty")
    with pytest.raises(ValueError, match="preset must be one of"):
        mi_face_config("mlp", False, {}, "pretty")


@pytest.fixture
def captured_request(monkeypatch):
    """Stop `mi-harness attack` where it would start attacking, keeping the request it built."""
    import attack.cli

    seen = []

    def capture(request, faces_dir=None):
        seen.append(request)
        raise ValueError("captured before any work")

    monkeypatch.setattr(attack.cli, "run_attack", capture)
    return seen


@pytest.mark.parametrize("args, preset, overrides", [
    ([], "paper", {}),
    (["--preset", "smooth"], "smooth", {}),
    (["--prior", "tv:0.3"], "paper", {"tv_weight": 0.3}),
    (["--preset", "smooth", "--prior", "none", "--lam", "0.02"], "smooth", {"tv_weight": 0.0, "lam": 0.02}),
    (["--confidence-term", "log"], "paper", {"confidence_term": "log"}),
])
def test_the_attack_command_passes_the_preset_and_prior_on(args, preset, overrides, captured_request, faces_dir,
                                                           tmp_path):
    from mi_harness.cli import main

    result = CliRunner().invoke(main, ["attack", "--model", "mlp", "--models-dir", str(tmp_path), *args,
                                       "--faces", str(faces_dir), "--out", str(tmp_path / "bundle")])
    assert "captured before any work" in result.output
    [request] = captured_request
    assert request.preset == preset
    assert {k: v for k, v in request.mi_face.items() if v is not None} == overrides


@pytest.mark.parametrize("args, message", [
    (["--prior", "tv:abc"], "Invalid value for --prior: prior 'tv:abc': the weight 'abc' is not a number"),
    (["--prior", "smooth:1"], "Invalid value for --prior: prior 'smooth:1': use tv:WEIGHT"),
    (["--preset", "pretty"], "Invalid value for '--preset'"),
    (["--confidence-term", "sqrt"], "Invalid value for '--confidence-term'"),
])
def test_bad_prior_or_preset_options_are_refused_before_any_work(args, message, captured_request, tmp_path):
    from mi_harness.cli import main

    result = CliRunner().invoke(main, ["attack", "--model", "mlp", "--models-dir", str(tmp_path), *args,
                                       "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 2 and message in result.output
    assert not captured_request and not (tmp_path / "bundle").exists()
