"""An image prior for MI-Face's AUXTERM: what a face looks like, beyond what the model says.

Algorithm 1 leaves AUXTERM(x) for side information. Gradient ascent on a model's confidence alone finds any
image the model assigns to the person, and for the MLP those are grain: the input gradient is dominated by the
part of the first layer's weights that no training image ever touched (BENCHMARKS.md, "MLP reconstructions").
Total variation, the classic natural-image prior (Rudin, Osher and Fatemi 1992; Mahendran and Vedaldi 2015 for
inverting networks), charges for that grain and not for the smooth shading of a face.

    TV(x) = mean over pixels of sqrt(dx^2 + dy^2 + eps^2) - eps

with forward differences (zero past the last row and column) on the decoded image, so a weight w adds w times
the mean gradient magnitude per pixel: a face photo in [0, 1] has about 0.05, pixel grain of amplitude a about a.
The small eps keeps the gradient finite where the image is flat (the paper's all-zero x_0).
"""
from __future__ import annotations

from typing import Callable

import torch

from .faces import HEIGHT, WIDTH

TV_EPSILON = 1e-3
PRIORS = ("tv",)


def total_variation(images: torch.Tensor, height: int = HEIGHT, width: int = WIDTH,
                    epsilon: float = TV_EPSILON) -> torch.Tensor:
    """Smoothed isotropic total variation of each row of ``images`` (flattened, row-major), averaged per pixel."""
    grid = images.reshape(len(images), height, width)
    dx = torch.zeros_like(grid)
    dy = torch.zeros_like(grid)
    dx[:, :, :-1] = grid[:, :, 1:] - grid[:, :, :-1]
    dy[:, :-1, :] = grid[:, 1:, :] - grid[:, :-1, :]
    return ((dx ** 2 + dy ** 2 + epsilon ** 2).sqrt() - epsilon).mean(dim=(1, 2))


def parse_prior(text: str | None) -> dict[str, float]:
    """'tv:0.05' -> {'tv_weight': 0.05} (MIFaceConfig fields); 'none' or empty -> {}."""
    if text is None or text.strip().lower() in ("", "none"):
        return {}
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition(":")
        if name not in PRIORS or not sep:
            raise ValueError(f"prior {part.strip()!r}: use tv:WEIGHT (e.g. tv:0.05), or none")
        try:
            weight = float(value)
        except ValueError:
            raise ValueError(f"prior {part.strip()!r}: the weight {value!r} is not a number") from None
        if not weight > 0:  # also refuses nan
            raise ValueError(f"prior {part.strip()!r}: the weight must be positive")
        weights[f"{name}_weight"] = weight
    return weights


class ImagePrior:
    """AUXTERM: ``tv_weight`` x TV of the decoded image (pixels for softmax and MLP, the decoded code for the DAE)."""

    def __init__(self, tv_weight: float, decode: Callable[[torch.Tensor], torch.Tensor] = lambda code: code,
                 height: int = HEIGHT, width: int = WIDTH) -> None:
        self.tv_weight, self.decode, self.height, self.width = tv_weight, decode, height, width

    def __call__(self, code: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        return self.tv_weight * total_variation(self.decode(code), self.height, self.width)
