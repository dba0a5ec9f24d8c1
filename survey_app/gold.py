"""Gold probes that look like the study's reconstructions, so that a gold item cannot be told apart by eye.

A gold item's probe is a real photo of someone in its lineup. Shown as it is, it would be the one sharp photo among
blurry reconstructions (and byte for byte a face shown in other lineups), so a worker could pass the skilled filter
on purpose. The rule, one place: the photo is blurred (Gaussian, sigma found by bisection) until its sharpness, the
mean squared gradient over the pixel variance (so contrast does not count), equals the median sharpness of the
study's reconstructions (a photo already as blurry is not blurred); then its mean and standard deviation are set to
the reconstructions' medians (a contrast stretch). A probe that would still be byte-identical to an image the study
serves gets one grey level of seeded noise until it is not.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable

import numpy as np
from PIL import Image as PILImage
from scipy.ndimage import gaussian_filter

MAX_SIGMA = 16.0


def sharpness(image: np.ndarray) -> float:
    """Mean squared gradient over variance, of the grey image (colour: the channels' mean); 0 for a flat image."""
    grey = image.mean(axis=2) if image.ndim == 3 else image
    grey = grey.astype(np.float64)
    variance = grey.var()
    if variance < 1e-12:
        return 0.0
    gy, gx = np.gradient(grey)
    return float((gx ** 2 + gy ** 2).mean() / variance)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return image
    return gaussian_filter(image, sigma=(sigma, sigma, 0) if image.ndim == 3 else sigma, mode="nearest")


class Look:
    """What the study's reconstructions look like: median sharpness, mean and standard deviation (in [0, 1])."""

    def __init__(self, reconstructions: Iterable[np.ndarray]) -> None:
        stats = np.array([(sharpness(r), float(r.mean()), float(r.std())) for r in reconstructions])
        if not len(stats):
            raise ValueError("gold probes are matched to the study's reconstructions, and it has none")
        self.sharpness, self.mean, self.std = (float(v) for v in np.median(stats, axis=0))

    def sigma_for(self, photo: np.ndarray) -> float:
        """The blur that brings the photo's sharpness down to the reconstructions' (0 when it is already there)."""
        if sharpness(photo) <= self.sharpness:
            return 0.0
        low, high = 0.0, MAX_SIGMA
        for _ in range(30):
            middle = (low + high) / 2
            if sharpness(_blur(photo, middle)) > self.sharpness:
                low = middle
            else:
                high = middle
        return high

    def apply(self, photo: np.ndarray) -> tuple[np.ndarray, float]:
        """The photo blurred and contrast-stretched to look like the reconstructions, in [0, 1]; and the blur."""
        sigma = self.sigma_for(photo)
        out = _blur(photo.astype(np.float64), sigma)
        spread = out.std()
        if spread > 1e-9:
            out = (out - out.mean()) / spread * self.std + self.mean
        return np.clip(out, 0.0, 1.0), sigma


def gold_png(look: Look, photo: np.ndarray, served: set[str], seed: int, mode: str) -> tuple[bytes, float]:
    """The degraded probe as PNG, never byte-identical (by SHA-256) to one of ``served``; and the blur's sigma."""
    degraded, sigma = look.apply(photo)
    pixels = np.round(degraded * 255)
    rng = np.random.default_rng(seed)
    while True:
        buffer = io.BytesIO()
        PILImage.fromarray(pixels.astype(np.uint8)).convert(mode).save(buffer, format="PNG")
        data = buffer.getvalue()
        if hashlib.sha256(data).hexdigest() not in served:
            return data, sigma
        pixels = np.clip(pixels + rng.integers(-1, 2, size=pixels.shape), 0, 255)
