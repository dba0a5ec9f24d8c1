"""MI-Face's gradient blur and jitter (MIFaceConfig.grad_blur, .jitter): the step they take, worked by hand."""
import math

import numpy as np
import pytest
import torch

from attack.gradient_estimators import FiniteDifferences
from attack.mi_face import MIFace, MIFaceConfig, blur_rows, gaussian_kernel, roll_rows
from attack.prediction_api import PredictionAPI

from .tiny_models import TinyLinear

SHAPE = (4, 5)  # a 20-pixel "image"
V = torch.linspace(-1.0, 1.0, 20) * torch.tensor([1.0, -1.0] * 10)  # w_0 - w_1: alternating, like grain


def api() -> PredictionAPI:
    return PredictionAPI(TinyLinear([V.tolist(), [0.0] * 20]))


def first_step(config: MIFaceConfig, start: torch.Tensor) -> torch.Tensor:
    """x_1, recorded by PROCESS right after the first step."""
    seen = {}

    def record(x):
        seen.setdefault("x1", x.clone())
        return x

    MIFace(api(), config, process=record, show_progress=False, image_shape=SHAPE).invert([0], start=start)
    return seen["x1"][0]


def sigmoid(t: float) -> float:
    return 1 / (1 + math.exp(-t))


def test_blur_keeps_a_constant_image_and_spreads_a_point_into_a_normalised_gaussian():
    kernel = gaussian_kernel(1.0)
    assert len(kernel) == 7 and float(kernel.sum()) == pytest.approx(1.0)
    flat = torch.full((1, 20), 0.3)
    np.testing.assert_allclose(blur_rows(flat, kernel, *SHAPE).numpy(), flat.numpy(), rtol=1e-6)
    point = torch.zeros(1, 9 * 9)
    point[0, 40] = 1.0  # the centre of a 9x9 image: nothing reaches the border
    spread = blur_rows(point, kernel, 9, 9).reshape(9, 9)
    assert float(spread.sum()) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(spread.numpy(), spread.numpy().T, atol=1e-7)
    assert float(spread[4, 4]) == pytest.approx(float(kernel[3] ** 2))


def test_grad_blur_steps_along_the_blurred_gradient():
    """1 - f, f = sigmoid(v.x): grad c = -f(1 - f) v, so x_1 = x_0 + lam f(1 - f) blur(v)."""
    start = torch.zeros(1, 20)
    x1 = first_step(MIFaceConfig(alpha=1, lam=0.1, stop_rule="none", grad_blur=1.0), start)
    expected = 0.1 * 0.25 * blur_rows(V[None], gaussian_kernel(1.0), *SHAPE)[0]
    np.testing.assert_allclose(x1.numpy(), expected.numpy(), rtol=1e-5, atol=1e-8)
    unblurred = first_step(MIFaceConfig(alpha=1, lam=0.1, stop_rule="none"), start)
    assert float(x1.abs().mean()) < 0.5 * float(unblurred.abs().mean())  # the alternating grain is smoothed away


def test_jitter_takes_the_gradient_at_the_shifted_image_and_shifts_it_back():
    start = torch.rand(1, 20, generator=torch.Generator().manual_seed(0))
    config = MIFaceConfig(alpha=1, lam=0.1, stop_rule="none", jitter=2, jitter_seed=7)
    x1 = first_step(config, start)
    dy, dx = (int(v) for v in torch.randint(-2, 3, (2,), generator=torch.Generator().manual_seed(7)))
    shifted = roll_rows(start, dy, dx, *SHAPE)[0]
    f = sigmoid(float(V @ shifted))
    assert (dy, dx) != (0, 0) and abs(f - sigmoid(float(V @ start[0]))) > 0.01  # the shift matters here
    # d/dx f(roll(x)) = roll^-1 of the gradient at the shifted image, f(1 - f) v: v shifted back
    back = roll_rows(V[None], -dy, -dx, *SHAPE)[0]
    np.testing.assert_allclose(x1.numpy(), (start[0] + 0.1 * f * (1 - f) * back).numpy(), rtol=1e-5)
    again = first_step(config, start)
    np.testing.assert_allclose(again.numpy(), x1.numpy())  # the seed repeats the run


def test_jitter_scores_the_image_itself_not_the_shifted_one():
    start = torch.linspace(0.0, 1.0, 20)[None]
    config = MIFaceConfig(alpha=3, lam=0.1, stop_rule="none", jitter=2)
    [result] = MIFace(api(), config, show_progress=False, image_shape=SHAPE).invert([0], start=start,
                                                                                   keep_history=True)
    assert result.history[0] == pytest.approx(1 - sigmoid(float(V @ start[0])), rel=1e-5)


@pytest.mark.parametrize("kwargs,message", [({"grad_blur": -1.0}, "grad_blur"), ({"jitter": -1}, "jitter")])
def test_invalid_shaping_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MIFaceConfig(**kwargs)


def test_shaping_needs_an_image_and_jitter_a_white_box_attacker():
    with pytest.raises(ValueError, match="pixel attack space"):
        MIFace(api(), MIFaceConfig(grad_blur=1.0), image_shape=(3, 3))
    with pytest.raises(ValueError, match="white-box gradient"):
        MIFace(api(), MIFaceConfig(jitter=1), estimator=FiniteDifferences(h=1e-3), image_shape=SHAPE)
    MIFace(api(), MIFaceConfig(grad_blur=1.0), estimator=FiniteDifferences(h=1e-3), image_shape=SHAPE)  # blur is fine
