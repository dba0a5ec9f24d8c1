"""Screening: reconstructions no person could use on a lineup page, found before a study shows them.

Two kinds are flagged, each by one measured statistic (BENCHMARKS.md, "Deep face judge and screening"):

- ``constant``: the middle 80% of pixels span less than ``SPREAD_MIN`` of the grey range (p90 - p10). Every AT&T
  photo spans at least 0.34 and every reconstruction measured (ours and the paper authors') at least 0.21; a
  constant image with quantisation-level noise spans 0.013. A uniform black rectangle, or one with a few stray
  pixels, is caught here.
- ``grain``: less than ``STRUCTURE_MIN`` of the image's contrast survives a Gaussian blur of ``BLUR_SIGMA`` image
  widths (2 px at 92 px): std(blurred) / std(image). Faces carry their contrast at coarse scales (AT&T photos
  0.80-0.95, our softmax reconstructions 0.77-0.91, the paper authors' grainy black-box DAE images 0.71-0.82);
  pixel-scale noise does not (uniform or Gaussian white noise 0.13-0.16). A person sees grain, not a face.

What was measured and not used: the face recogniser itself does not separate noise from faces on these images.
dlib's descriptor of white noise lies 0.46-0.60 from its nearest AT&T photo, the same range as clearly visible
softmax reconstructions (0.40-0.60), and its 5-point landmark fit on noise lands within the range of real photos
(inter-ocular 16-30 px against 21-40 px); dlib's HOG face detector scores noise up to -0.19 and visible
reconstructions down to -0.97. A threshold on any of them would either keep noise or drop faces. Smooth blobs
(noise upsampled 4x, structure 0.59-0.65) are not flagged: no attack here produces them.

Screening is pixel statistics only: fast, torch-free and without dlib, so the survey server can run it on upload.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from .conditions import CONDITION

SPREAD_MIN = 0.05  # p90 - p10 of grey values in [0, 1]: 13 of 255 levels
STRUCTURE_MIN = 0.4  # share of the standard deviation left after the blur
BLUR_SIGMA = 2 / 92  # blur width as a share of the image width (2 px on AT&T's 92 px)
REASONS = {
    "constant": "near-constant image: the middle 80% of its pixels span only {spread:.3f} of the grey range "
                f"(at least {SPREAD_MIN} needed)",
    "grain": "no face-scale structure: only {structure:.2f} of its contrast survives a blur of "
             f"{BLUR_SIGMA * 92:.0f} px per 92 (at least {STRUCTURE_MIN} needed); it is grain",
}


@dataclass(frozen=True)
class Verdict:
    """Whether a person could use an image on a lineup page, and if not, why (``reason`` is a REASONS key)."""
    usable: bool
    reason: str | None
    detail: str
    spread: float
    structure: float


def grey(image: np.ndarray) -> np.ndarray:
    """An (H, W) grey or (H, W, 3) colour image, uint8 or float in [0, 1], as float grey in [0, 1]."""
    values = np.asarray(image)
    scale = 255.0 if values.dtype == np.uint8 else 1.0
    values = values.astype(np.float64) / scale
    if values.ndim == 3 and values.shape[-1] == 3:
        values = values @ np.array([0.299, 0.587, 0.114])
    if values.ndim != 2:
        raise ValueError(f"screening takes one (H, W) or (H, W, 3) image, not shape {np.asarray(image).shape}")
    return values


def screen_image(image: np.ndarray) -> Verdict:
    values = grey(image)
    low, high = np.percentile(values, [10, 90])
    spread = float(high - low)
    std = float(values.std())
    blurred = gaussian_filter(values, BLUR_SIGMA * values.shape[1], mode="reflect")
    structure = float(blurred.std() / std) if std > 1e-6 else 0.0  # float error on a constant is no contrast
    if spread < SPREAD_MIN:
        return Verdict(False, "constant", REASONS["constant"].format(spread=spread), spread, structure)
    if structure < STRUCTURE_MIN:
        return Verdict(False, "grain", REASONS["grain"].format(structure=structure), spread, structure)
    return Verdict(True, None, "usable", spread, structure)


def screen_images(images) -> list[Verdict]:
    """One verdict per image of an (n, H, W[, 3]) array or an iterable of images."""
    return [screen_image(image) for image in images]


def screening_record(conditions: list[dict[str, str]], ids: list[str], verdicts: list[Verdict],
                     kept_unusable: bool) -> dict:
    """What a study stores about screening: the thresholds, each flagged item with its reason, and per condition
    (model x attack x countermeasure x blur) how many items it had and how many were left out, by reason."""
    table: dict[tuple[str, ...], dict] = {}
    for condition, verdict in zip(conditions, verdicts):
        key = tuple(str(condition.get(k) or "") for k in CONDITION)
        row = table.setdefault(key, {**dict(zip(CONDITION, key)), "items": 0, "unusable": 0, "left_out": 0,
                                     "reasons": {}})
        row["items"] += 1
        if not verdict.usable:
            row["unusable"] += 1
            row["left_out"] += 0 if kept_unusable else 1
            row["reasons"][verdict.reason] = row["reasons"].get(verdict.reason, 0) + 1
    flagged = [{"id": item_id, "reason": v.reason, "detail": v.detail}
               for item_id, v in zip(ids, verdicts) if not v.usable]
    return {"kept_unusable": kept_unusable, "items": len(verdicts), "unusable": len(flagged),
            "left_out": 0 if kept_unusable else len(flagged),
            "thresholds": {"spread_min": SPREAD_MIN, "structure_min": STRUCTURE_MIN, "blur_sigma_width": BLUR_SIGMA},
            "by_condition": [table[key] for key in sorted(table)], "flagged": flagged}
