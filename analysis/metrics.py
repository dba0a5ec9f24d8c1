"""Identification accuracy with honest statistics: intervals, chance levels, tests, agreement between runs.

Every function takes the tidy frame of ``analysis.load`` and leaves gold items out (they measure workers, not
attacks). Groups with no answers are simply absent from a table, never a row of NaN.
"""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pandas as pd
from scipy.stats import binomtest, fisher_exact
from statsmodels.stats.inter_rater import fleiss_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from mi_harness.conditions import CONDITION

GROUP = CONDITION
LINEUP_SIZE = 5
CATEGORIES = ("1", "2", "3", "4", "5", "absent")


def reconstructions(frame: pd.DataFrame, workers: str = "all") -> pd.DataFrame:
    """The answers about reconstructions (no gold or control items), from all workers or only the skilled ones; for
    skilled workers only the
    answers their skill was not measured on (``load.tidy``'s ``measures_skill``), so the skilled figures are not
    biased upward by the selection."""
    if workers not in ("all", "skilled"):
        raise ValueError(f"workers must be 'all' or 'skilled', not {workers!r}")
    kept = frame[~frame["gold"] & ~control_mask(frame)]
    return kept[kept["skilled"] & ~kept["measures_skill"]] if workers == "skilled" else kept


def control_mask(frame: pd.DataFrame) -> pd.Series:
    """Which answers are about control (mock-witness) items: they measure the lineups, not the attacks. All false
    for studies without the ``control`` column."""
    if "control" not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame["control"].map(lambda v: v is True or str(v).lower() == "true").astype(bool)


def interval(successes: int, trials: int, method: str, alpha: float) -> tuple[float, float]:
    low, high = proportion_confint(successes, trials, alpha=alpha, method=method)
    return float(low), float(high)


def accuracy_table(frame: pd.DataFrame, by: tuple[str, ...] = GROUP, workers: str = "all", method: str = "wilson",
                   alpha: float = 0.05) -> pd.DataFrame:
    """Accuracy per group, split into target-present lineups (hits, wrong faces, misses) and target-absent ones
    (correct rejections, false identifications), with ``method`` intervals (statsmodels ``proportion_confint``:
    ``wilson`` or ``beta`` = Clopper-Pearson), the two chance levels and an exact binomial test of the hit rate
    against picking one of the five faces at random."""
    rows = []
    data = reconstructions(frame, workers)
    for key, group in data.groupby(list(by), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        present, absent = group[group["target_present"]], group[~group["target_present"]]
        n, correct = len(group), int(group["correct"].sum())
        hits = int(present["correct"].sum())
        row = dict(zip(by, key))
        low, high = interval(correct, n, method, alpha)
        row.update(answers=n, correct=correct, accuracy=correct / n, ci_low=low, ci_high=high,
                   present=len(present), hits=hits,
                   wrong_face=int((~present["correct"] & ~present["chose_absent"]).sum()),
                   misses=int(present["chose_absent"].sum()),
                   absent=len(absent), correct_rejections=int(absent["correct"].sum()),
                   false_ids=int((~absent["chose_absent"]).sum()))
        if len(present):
            row["hit_rate"] = hits / len(present)
            row["hit_ci_low"], row["hit_ci_high"] = interval(hits, len(present), method, alpha)
            row["p_vs_chance"] = binomtest(hits, len(present), 1 / LINEUP_SIZE, alternative="greater").pvalue
        else:
            row["hit_rate"] = row["hit_ci_low"] = row["hit_ci_high"] = row["p_vs_chance"] = None
        row["chance_random_face"] = len(present) / n / LINEUP_SIZE
        row["chance_always_absent"] = len(absent) / n
        row["workers"] = group["worker"].nunique()
        row["method"] = method
        rows.append(row)
    return pd.DataFrame(rows)


def run_verdicts(frame: pd.DataFrame) -> pd.DataFrame:
    """Each item's modal answer in each run (ties: the first of 1-5, absent), items answered in every run only."""
    data = reconstructions(frame)
    runs = sorted(data["run"].unique())
    verdicts = {}
    for (item, run), answers in data.groupby(["item", "run"]):
        counts = Counter(answers["choice"])
        best = max(counts.values())
        verdicts.setdefault(item, {})[run] = next(c for c in CATEGORIES if counts.get(c) == best)
    return pd.DataFrame.from_dict(verdicts, orient="index", columns=runs).dropna()


def kappa_across_runs(frame: pd.DataFrame, bootstrap: int = 2000, alpha: float = 0.05, seed: int = 0) -> dict:
    """Fleiss' kappa of the runs' verdicts (each run one rater of every item), with a percentile bootstrap
    interval over items. Needs at least two runs and two items answered in all of them."""
    verdicts = run_verdicts(frame)
    if verdicts.shape[1] < 2 or len(verdicts) < 2:
        return {"kappa": None, "ci_low": None, "ci_high": None, "items": len(verdicts), "runs": verdicts.shape[1],
                "note": "needs at least two runs and two items answered in all of them"}
    table = np.array([[list(row).count(c) for c in CATEGORIES] for row in verdicts.itertuples(index=False)])
    kappa = _kappa(table)
    rng = np.random.default_rng(seed)
    draws = [_kappa(table[rng.integers(0, len(table), len(table))]) for _ in range(bootstrap)]
    draws = [d for d in draws if not math.isnan(d)]
    low, high = (np.quantile(draws, [alpha / 2, 1 - alpha / 2]) if draws else (math.nan, math.nan))
    return {"kappa": kappa, "ci_low": float(low), "ci_high": float(high), "items": len(table),
            "runs": int(table.sum(axis=1)[0]), "note": f"percentile bootstrap over items, {bootstrap} draws"}


def _kappa(table: np.ndarray) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(fleiss_kappa(table, method="fleiss"))


def compare_countermeasures(frame: pd.DataFrame, baseline: str = "none", within: tuple[str, ...] = ("model", "attack"),
                            workers: str = "all", correction: str = "holm", alpha: float = 0.05) -> pd.DataFrame:
    """Each countermeasure level against ``baseline`` within each model and attack: a two-proportion z-test, or
    Fisher's exact test where an expected count is under 5; p-values adjusted together (``correction``, as in
    statsmodels ``multipletests``)."""
    rows = []
    data = reconstructions(frame, workers)
    for key, group in data.groupby(list(within), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        base = group[group["countermeasure"] == baseline]
        if base.empty:
            continue
        for level, other in group[group["countermeasure"] != baseline].groupby("countermeasure", sort=True):
            counts = np.array([int(base["correct"].sum()), int(other["correct"].sum())])
            trials = np.array([len(base), len(other)])
            table = np.array([counts, trials - counts])
            expected = table.sum(axis=1, keepdims=True) * trials / trials.sum()
            if (expected < 5).any():
                test, p = "fisher exact", fisher_exact(table.T)[1]
            else:
                test, p = "two-proportion z", proportions_ztest(counts, trials)[1]
            rows.append({**dict(zip(within, key)), "baseline": baseline, "countermeasure": level,
                         "baseline_accuracy": counts[0] / trials[0], "accuracy": counts[1] / trials[1],
                         "baseline_answers": int(trials[0]), "answers": int(trials[1]), "test": test,
                         "p": float(p)})
    table = pd.DataFrame(rows)
    if not table.empty:
        reject, adjusted, _, _ = multipletests(table["p"], alpha=alpha, method=correction)
        table["p_adjusted"], table["significant"], table["correction"] = adjusted, reject, correction
    return table
