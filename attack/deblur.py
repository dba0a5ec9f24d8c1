"""Deblurring, the paper's second attack: a blurred photo of a training subject as side information.

The attacker holds y = B(x) for an unknown face x of a known label. MI-Face starts from y and adds
AUXTERM(x) = mu * sum((B(x) - y)^2): the result must still blur to what the attacker holds, while the model
pulls it toward what it learned of that person. B is differentiable (a torch convolution or average pool),
so the term's gradient is exact even for a black-box attacker, who owns it.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .faces import HEIGHT, WIDTH

BLUR_KINDS = ("gaussian", "pixelate")


@dataclass(frozen=True)
class Blur:
    """``gaussian:S`` blurs with standard deviation S pixels; ``pixelate:S`` averages S x S blocks."""

    kind: str
    strength: float

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.strength:g}"

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        images = pixels.reshape(-1, 1, HEIGHT, WIDTH)
        if self.kind == "gaussian":
            radius = max(1, int(round(3 * self.strength)))
            t = torch.arange(-radius, radius + 1, dtype=pixels.dtype, device=pixels.device)
            kernel = torch.exp(-0.5 * (t / self.strength) ** 2)
            kernel = kernel / kernel.sum()
            padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
            out = F.conv2d(F.conv2d(padded, kernel.reshape(1, 1, 1, -1)), kernel.reshape(1, 1, -1, 1))
        else:
            size = int(self.strength)
            pooled = F.avg_pool2d(images, size, ceil_mode=True, count_include_pad=False)
            out = F.interpolate(pooled, scale_factor=size, mode="nearest")[..., :HEIGHT, :WIDTH]
        return out.reshape(pixels.shape[0], -1)


def parse_blur(spec: str) -> Blur:
    kind, _, value = spec.strip().partition(":")
    if kind not in BLUR_KINDS:
        raise ValueError(f"unknown blur {spec!r}: expected gaussian:SIGMA or pixelate:BLOCK")
    try:
        strength = float(value)
    except ValueError:
        raise ValueError(f"blur {spec!r}: needs a strength, e.g. {kind}:4") from None
    if strength <= 0 or (kind == "pixelate" and (strength != int(strength) or strength < 2)):
        raise ValueError(f"blur {spec!r}: strength must be positive (a whole block size of 2 or more to pixelate)")
    return Blur(kind, strength)


class BlurConsistency:
    """AUXTERM for deblurring: how far the candidate, blurred again, is from the blurred photo held."""

    def __init__(self, blur: Blur, blurred: torch.Tensor, decode, mu: float = 1.0) -> None:
        self.blur, self.blurred, self.decode, self.mu = blur, blurred, decode, mu

    def __call__(self, code: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.mu * ((self.blur(self.decode(code)) - self.blurred[rows]) ** 2).sum(1)
