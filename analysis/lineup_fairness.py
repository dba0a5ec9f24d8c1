"""Lineup fairness from the control condition: functional size, Tredoux's E, and the target picked with no
information.

A control (mock-witness) item shows a lineup with a probe that says nothing about the target (another subject's
reconstruction, or a neutral silhouette). If workers still pick the target more often than one time in five, the
lineup gives the target away by how it looks (a woman among four men), and the real items' accuracy credits the
attack with it. Eyewitness research measures this with mock witnesses (Wells, Leippe and Ostrom 1979; Malpass
1981; Tredoux 1998):

- functional size: face choices divided by choices of the target (5 for a fair five-face lineup; 1 when everyone
  picks the target). "Not in this lineup" answers are not face choices. Its interval inverts the Wilson interval of
  the target's share of face choices.
- Tredoux's E: 1 / sum of squared shares of face choices over the five places (5 when choices spread evenly,
  1 when all fall on one face), with Tredoux's large-sample (delta method) interval; over several lineups, their
  mean E with a percentile bootstrap interval over lineups.

Only answers about control items count here; the ``control`` column is absent from studies without them, and then
there is nothing to report.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.stats.proportion import proportion_confint

from .metrics import GROUP, LINEUP_SIZE, control_mask

PLACES = tuple(str(k) for k in range(1, LINEUP_SIZE + 1))


def control_answers(frame: pd.DataFrame) -> pd.DataFrame:
    """Answers about target-present control items (empty when the study has none)."""
    return frame[control_mask(frame) & ~frame["gold"] & frame["target_present"]]


def tredoux_e(counts: np.ndarray) -> np.ndarray:
    """Tredoux's E of face-choice counts over the places (the last axis); NaN where there are no choices."""
    counts = np.asarray(counts, dtype=float)
    total = counts.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total ** 2 / (counts ** 2).sum(axis=-1)


def tredoux_e_interval(counts: np.ndarray, alpha: float) -> tuple[float, float]:
    """Tredoux's (1998) large-sample interval: the delta method on the sum of squared shares S, whose variance is
    4 (sum p^3 - S^2) / n; E = 1/S, clipped to the possible range 1 to 5."""
    n = counts.sum()
    p = counts / n
    s = (p ** 2).sum()
    se = np.sqrt(max(4 * ((p ** 3).sum() - s ** 2) / n, 0.0)) / s ** 2
    z = norm.ppf(1 - alpha / 2)
    return float(max(1.0, 1 / s - z * se)), float(min(LINEUP_SIZE, 1 / s + z * se))


def _measures(counts: np.ndarray, target: int, alpha: float) -> dict:
    """Functional size and E with intervals, from face-choice counts per place and target choices."""
    choices, on_target = int(counts.sum()), int(target)
    out = {"face_choices": choices, "target_choices": on_target}
    if choices == 0:
        return out
    low, high = proportion_confint(on_target, choices, alpha=alpha, method="wilson")
    out.update(target_share=on_target / choices,
               functional_size=choices / on_target if on_target else float("inf"),
               functional_size_low=1 / high, functional_size_high=1 / low if low > 0 else float("inf"))
    if len(counts) == LINEUP_SIZE:
        out["tredoux_e"] = float(tredoux_e(counts))
        out["tredoux_e_low"], out["tredoux_e_high"] = tredoux_e_interval(counts, alpha)
    return out


def lineup_fairness(frame: pd.DataFrame, alpha: float = 0.05, bootstrap: int = 2000,
                    seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per lineup, per condition and overall): mock witnesses, how often they picked the target (of all answers,
    and of face choices), functional size and Tredoux's E with intervals. Overall and per condition: functional size
    from all their face choices pooled, and the mean of their lineups' E with a bootstrap interval over lineups."""
    data = control_answers(frame)
    if data.empty:
        return pd.DataFrame(), pd.DataFrame()
    rng = np.random.default_rng(seed)
    per_lineup, per_group = [], []
    lineup = data["control_of"].where(data["control_of"].astype(bool), data["item"]) if "control_of" in data \
        else data["item"]  # the lineup a control item copies: all its mock witnesses together
    data = data.assign(face_choice=data["choice"].astype(str).where(~data["chose_absent"], None), lineup=lineup)
    for (item, *group), answers in data.groupby(["lineup", *GROUP], sort=True):
        counts = np.array([(answers["face_choice"] == place).sum() for place in PLACES])
        target = answers["correct"].sum()
        per_lineup.append({"lineup": item, **dict(zip(GROUP, group)), "mock_witnesses": len(answers),
                           "target_picked": float(answers["correct"].mean()),
                           **_measures(counts, target, alpha)})
    lineups = pd.DataFrame(per_lineup)
    for key, rows in [(("all", "", "", ""), data), *data.groupby(list(GROUP), sort=True)]:
        choices = int(rows["face_choice"].notna().sum())
        # E of places pooled over lineups means nothing (the target stands in different places): the lineups' mean
        measures = _measures(np.array([choices]), rows["correct"].sum(), alpha)
        members = lineups[lineups["lineup"].isin(rows["lineup"].unique())]["tredoux_e"].dropna().to_numpy()
        if len(members):
            means = members[rng.integers(0, len(members), (bootstrap, len(members)))].mean(axis=1)
            low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
            measures.update(mean_tredoux_e=float(members.mean()), mean_tredoux_e_low=float(low),
                            mean_tredoux_e_high=float(high))
        per_group.append({**dict(zip(GROUP, key)), "lineups": rows["lineup"].nunique(), "mock_witnesses": len(rows),
                          "target_picked": float(rows["correct"].mean()), **measures})
    return lineups, pd.DataFrame(per_group)
