"""Deblurring, the paper's second attack: a blurred photo of a training subject as side information.

The attacker holds y = B(x) for an unknown face x of a known label. MI-Face starts from y and adds
AUXTERM(x) = mu * sum((B(x) - y)^2): the result must still blur to what the attacker holds, while the model
pulls it toward what it learned of that person. B is differentiable (a torch convolution or average pool),
so the term's gradient is exact even for a black-box attacker, who owns it.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from .faces import HEIGHT, WIDTH

BLUR_KINDS = ("gaussian", "pixelate")


def gaussian_operator(n: int, sigma: float) -> np.ndarray:
    """An n x n matrix that blurs a line of n pixels, replicating the edge pixels beyond the border."""
    radius = max(1, int(round(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    op = np.zeros((n, n))
    for i in range(n):
        for t, w in zip(range(-radius, radius + 1), taps):
            op[i, min(max(i + t, 0), n - 1)] += w
    return op


def pixelate_operator(n: int, block: int) -> np.ndarray:
    """An n x n matrix that replaces each pixel by the mean of its block (the last block may be shorter)."""
    op = np.zeros((n, n))
    for start in range(0, n, block):
        stop = min(start + block, n)
        op[start:stop, start:stop] = 1.0 / (stop - start)
    return op


@dataclass(frozen=True)
class Blur:
    """``gaussian:S`` blurs with standard deviation S pixels; ``pixelate:S`` averages S x S blocks.

    Both are separable linear maps, applied as two small matrix products (rows, then columns): exact,
    differentiable, and far faster on a CPU than a one-channel convolution.
    """

    kind: str
    strength: float

    @property
    def spec(self) -> str:
        return f"{self.kind}:{self.strength:g}"

    @functools.cached_property
    def operators(self) -> tuple[torch.Tensor, torch.Tensor]:
        build = gaussian_operator if self.kind == "gaussian" else pixelate_operator
        size = self.strength if self.kind == "gaussian" else int(self.strength)
        return (torch.from_numpy(build(HEIGHT, size)).float(), torch.from_numpy(build(WIDTH, size)).float())

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        rows, cols = (op.to(pixels.device, pixels.dtype) for op in self.operators)
        images = pixels.reshape(-1, HEIGHT, WIDTH)
        return (rows @ images @ cols.T).reshape(pixels.shape[0], -1)


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
