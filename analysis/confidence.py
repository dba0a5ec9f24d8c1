"""Confidence: the confidence-accuracy characteristic and ROC over target-present and target-absent lineups.

Eyewitness research reads identification evidence from confidence, not from one hit rate (Wixted and Wells 2017).
Two analyses, for studies that asked for a rating after each choice (the ``confidence`` column; absent or empty
otherwise, and then both are skipped):

- The confidence-accuracy characteristic (CAC; Mickes 2015): at each confidence level, of the identifications of
  the target or of an innocent face, the share that were the target. A target-absent lineup here has no designated
  innocent suspect, so, as in that literature, innocent-suspect identifications are estimated as the target-absent
  lineups' face picks divided by the lineup size (5).
- The ROC (Gronlund, Wixted and Mickes 2014): the hit rate (target picked in target-present lineups) against the
  false identification rate (the same estimate, per target-absent lineup), cumulated from the most confident
  answers down, and its partial area up to a common false-ID rate: the smallest of the compared conditions'
  largest false-ID rates, so every condition's area covers the same range. Percentile bootstrap intervals resample
  answers within target-present and target-absent lineups.

Only reconstruction answers count (no gold, no control items).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import GROUP, LINEUP_SIZE, reconstructions


def rated(frame: pd.DataFrame) -> pd.DataFrame:
    """The reconstruction answers that carry a confidence rating, with it as a number (empty when none do)."""
    if "confidence" not in frame.columns:
        return frame.iloc[0:0]
    data = reconstructions(frame).copy()
    data["confidence"] = pd.to_numeric(data["confidence"], errors="coerce")
    return data[data["confidence"].notna()]


def confidence_accuracy(frame: pd.DataFrame, by: tuple[str, ...] = GROUP) -> pd.DataFrame:
    """The CAC per group and confidence level: target IDs, estimated innocent IDs and their share that was the
    target, beside the plain share of all answers at that level that were right. Groups without target-absent
    lineups are left out."""
    data = rated(frame)
    if data.empty:
        return pd.DataFrame()
    # without target-absent lineups there is no estimate of innocent identifications, so no CAC
    data = data[~data.groupby(list(by))["target_present"].transform("all").astype(bool)]
    rows = []
    for key, group in data.groupby([*by, "confidence"], sort=True):
        present, absent = group[group["target_present"]], group[~group["target_present"]]
        target_ids = int(present["correct"].sum())
        innocent_ids = (~absent["chose_absent"]).sum() / LINEUP_SIZE
        rows.append({**dict(zip([*by, "confidence"], key)), "answers": len(group), "target_ids": target_ids,
                     "innocent_ids": float(innocent_ids),
                     "suspect_id_accuracy": target_ids / (target_ids + innocent_ids)
                     if target_ids + innocent_ids else None,
                     "proportion_correct": float(group["correct"].mean())})
    return pd.DataFrame(rows)


def _counts(group: pd.DataFrame, levels: list) -> tuple[np.ndarray, int, np.ndarray, int]:
    """Target IDs per confidence level (strictest first) and target-present answers; face picks per level and
    target-absent answers."""
    present = group[group["target_present"]]
    absent = group[~group["target_present"]]
    hits = np.array([(present["correct"] & (present["confidence"] == level)).sum() for level in levels])
    picks = np.array([((~absent["chose_absent"]) & (absent["confidence"] == level)).sum() for level in levels])
    return hits, len(present), picks, len(absent)


def _curve(hits: np.ndarray, present: int, picks: np.ndarray, absent: int) -> tuple[np.ndarray, np.ndarray]:
    """(false-ID rates, hit rates) from (0, 0) through every criterion, strictest first; works on rows of draws."""
    zero = np.zeros(hits.shape[:-1] + (1,))
    hit_rate = np.concatenate([zero, np.cumsum(hits, axis=-1) / present], axis=-1)
    false_id_rate = np.concatenate([zero, np.cumsum(picks, axis=-1) / LINEUP_SIZE / absent], axis=-1)
    return false_id_rate, hit_rate


def partial_auc(false_id_rate: np.ndarray, hit_rate: np.ndarray, cutoff: float) -> float:
    """Area under the ROC from false-ID rate 0 to ``cutoff`` (trapezoids, the curve cut at the cutoff by linear
    interpolation). NaN if the curve stops short of the cutoff."""
    if cutoff <= 0 or false_id_rate[-1] < cutoff - 1e-12:
        return float("nan")
    keep = false_id_rate <= cutoff
    xs, ys = list(false_id_rate[keep]), list(hit_rate[keep])
    if xs[-1] < cutoff:
        ys.append(float(np.interp(cutoff, false_id_rate, hit_rate)))
        xs.append(cutoff)
    return float(np.trapezoid(ys, xs))


def roc_analysis(frame: pd.DataFrame, by: tuple[str, ...] = GROUP, bootstrap: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(points, summary): every group's ROC points (one per confidence criterion, strictest first, after (0, 0)),
    and per group its partial AUC up to the common cutoff with a percentile bootstrap interval (answers resampled
    within target-present and within target-absent lineups). Groups without both kinds of lineup are left out."""
    data = rated(frame)
    groups = {}
    for key, group in data.groupby(list(by), sort=True):
        if group["target_present"].any() and (~group["target_present"]).any():
            groups[key if isinstance(key, tuple) else (key,)] = group
    if not groups:
        return pd.DataFrame(), pd.DataFrame()
    counts, curves = {}, {}
    for key, group in groups.items():
        levels = sorted(group["confidence"].unique(), reverse=True)
        counts[key] = (levels, *_counts(group, levels))
        curves[key] = _curve(*counts[key][1:])
    cutoff = min(float(x[-1]) for x, _ in curves.values())
    rng = np.random.default_rng(seed)
    points, summary = [], []
    for key, (levels, hits, present, picks, absent) in counts.items():
        x, y = curves[key]
        points.append(pd.DataFrame({**dict(zip(by, key)), "criterion": [None, *levels], "hit_rate": y,
                                    "false_id_rate": x}))
        # a resample of answers is a multinomial draw over (a hit at each level, anything else), and likewise for
        # the target-absent answers
        hit_draws = rng.multinomial(present, np.r_[hits, present - hits.sum()] / present, size=bootstrap)[:, :-1]
        pick_draws = rng.multinomial(absent, np.r_[picks, absent - picks.sum()] / absent, size=bootstrap)[:, :-1]
        draw_x, draw_y = _curve(hit_draws, present, pick_draws, absent)
        draws = np.array([partial_auc(a, b, cutoff) for a, b in zip(draw_x, draw_y)])
        draws = draws[~np.isnan(draws)]
        low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2]) if len(draws) else (np.nan, np.nan)
        summary.append({**dict(zip(by, key)), "target_present": present, "target_absent": absent,
                        "pauc": partial_auc(x, y, cutoff), "pauc_low": float(low), "pauc_high": float(high),
                        "cutoff": cutoff, "max_hit_rate": float(y[-1]), "max_false_id_rate": float(x[-1]),
                        "bootstrap_draws": len(draws)})
    return pd.concat(points, ignore_index=True), pd.DataFrame(summary)
