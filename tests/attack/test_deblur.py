import numpy as np
import pytest
import torch

from attack.deblur import Blur, BlurConsistency, parse_blur


def test_pixelate_makes_constant_blocks_with_the_block_mean(faces):
    image = torch.from_numpy(faces.images[0].reshape(1, -1))
    out = Blur("pixelate", 8)(image).reshape(112, 92)
    block = faces.images[0][:8, :8]
    assert torch.allclose(out[:8, :8], torch.full((8, 8), float(block.mean())), atol=1e-6)
    # the last, partial column of blocks (92 = 11 * 8 + 4) averages only its own pixels
    assert torch.allclose(out[:8, 88:], torch.full((8, 4), float(faces.images[0][:8, 88:].mean())), atol=1e-6)


def test_gaussian_blur_keeps_brightness_and_removes_detail(faces):
    image = torch.from_numpy(faces.images[:2].reshape(2, -1))
    weak, strong = Blur("gaussian", 1)(image), Blur("gaussian", 4)(image)
    assert torch.allclose(strong.mean(1), image.mean(1), atol=0.01)
    detail = lambda x: x.reshape(-1, 112, 92).diff(dim=2).abs().mean()  # noqa: E731
    assert detail(image) > detail(weak) > detail(strong)


def test_blur_consistency_is_zero_at_the_truth_and_differentiable(faces):
    clean = torch.from_numpy(faces.images[:3].reshape(3, -1))
    blur = Blur("gaussian", 3)
    term = BlurConsistency(blur, blur(clean), decode=lambda z: z, mu=2.0)
    rows = torch.arange(3)
    assert torch.allclose(term(clean, rows), torch.zeros(3), atol=1e-10)
    wrong = clean.flip(0).requires_grad_(True)
    cost = term(wrong, rows)
    cost.sum().backward()
    assert (cost[[0, 2]] > 0).all() and wrong.grad.abs().sum() > 0


@pytest.mark.parametrize("spec,message", [("gaussian", "needs a strength"), ("motion:3", "unknown blur"),
                                          ("gaussian:-1", "positive"), ("pixelate:2.5", "whole block"),
                                          ("pixelate:1", "whole block")])
def test_bad_blur_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_blur(spec)


def test_specs_round_trip():
    assert parse_blur("gaussian:2.5").spec == "gaussian:2.5" and parse_blur("pixelate:6") == Blur("pixelate", 6.0)
    np.testing.assert_equal(parse_blur("pixelate:6").strength, 6.0)
