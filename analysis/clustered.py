"""Accuracy and countermeasure contrasts with intervals that respect repeated measures.

Answers are clustered twice: by worker (some people are better at faces) and by item (some reconstructions are
recognisable, some are not). Treating 600 answers to 40 items as 600 independent trials (the Wilson interval) makes
intervals several times too narrow. Here each condition's accuracy and each countermeasure's contrast come from one
logistic regression with crossed random intercepts for worker and item (``glmm.fit_crossed``), and a two-way
cluster bootstrap over workers and items (Owen's pigeonhole bootstrap; items resampled within their condition)
checks it without any model. The naive Wilson interval stays beside them, for comparison only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from .glmm import CrossedFit, fit_crossed
from .metrics import GROUP, reconstructions

BOOTSTRAP_DRAWS = 1000
CONTRAST_WITHIN = ("model", "attack", "blur")
"""A countermeasure is compared with the baseline of the same model, attack and blur: never across attacks."""


def fit_conditions(data: pd.DataFrame, by: tuple[str, ...] = GROUP) -> tuple[CrossedFit, pd.DataFrame]:
    """One model over all conditions (one log-odds per condition, random intercepts for worker and item), and the
    conditions in the model's order."""
    codes, labels = condition_codes(data, by)
    design = np.eye(len(labels))[codes]
    fit = fit_crossed(data["correct"].to_numpy(float), design,
                      {"worker": data["worker"].astype(str).to_numpy(), "item": data["item"].astype(str).to_numpy()},
                      names=list(labels))
    conditions = pd.DataFrame([label.split("\x1f") for label in labels], columns=list(by))
    return fit, conditions


def condition_codes(data: pd.DataFrame, by: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Each answer's condition number, and the conditions' keys (their columns joined) in that order."""
    keys = data[list(by)].astype(str).agg("\x1f".join, axis=1)
    labels, codes = np.unique(keys, return_inverse=True)
    return codes, list(labels)


def cluster_bootstrap(data: pd.DataFrame, by: tuple[str, ...] = GROUP, draws: int = BOOTSTRAP_DRAWS,
                      seed: int = 0) -> np.ndarray:
    """Accuracy per condition (columns, in ``np.unique`` order of the condition keys) in ``draws`` resamples: workers
    drawn with replacement from all workers, items with replacement within each condition, and each answer counted
    as often as its worker times its item was drawn."""
    codes, labels = condition_codes(data, by)
    _, worker = np.unique(data["worker"].astype(str), return_inverse=True)
    _, item = np.unique(data["item"].astype(str), return_inverse=True)
    y = data["correct"].to_numpy(float)
    rng = np.random.default_rng(seed)
    items_of = [np.unique(item[codes == c]) for c in range(len(labels))]
    out = np.empty((draws, len(labels)))
    for b in range(draws):
        workers = worker.max() + 1
        worker_weight = np.bincount(rng.integers(0, workers, workers), minlength=workers)
        item_weight = np.zeros(item.max() + 1)
        for members in items_of:
            np.add.at(item_weight, members[rng.integers(0, len(members), len(members))], 1)
        weight = worker_weight[worker] * item_weight[item]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b] = np.bincount(codes, weight * y, len(labels)) / np.bincount(codes, weight, len(labels))
    return out


def clustered_accuracy(frame: pd.DataFrame, by: tuple[str, ...] = GROUP, workers: str = "all", alpha: float = 0.05,
                       bootstrap: int = BOOTSTRAP_DRAWS, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """Per condition: the observed accuracy; the model's population accuracy (a new worker on a new item) with its
    Wald interval (``ci_low``/``ci_high``, the one to read); the cluster bootstrap's percentile interval
    (``boot_low``/``boot_high``; NaN with ``bootstrap=0``); and the naive Wilson interval
    (``naive_low``/``naive_high``). Also the fitted standard deviations of worker and item effects (log-odds),
    returned beside the table."""
    data = reconstructions(frame, workers)
    if data.empty:
        return pd.DataFrame(columns=[*by, "answers", "accuracy", "ci_low", "ci_high"]), {}
    fit, conditions = fit_conditions(data, by)
    z = norm.ppf(1 - alpha / 2)
    se = np.sqrt(np.diag(fit.cov))
    codes, _ = condition_codes(data, by)
    table = conditions.copy()
    table["answers"] = np.bincount(codes, minlength=len(table))
    table["correct"] = np.bincount(codes, data["correct"].to_numpy(float), len(table)).astype(int)
    table["items"] = data.groupby(codes)["item"].nunique().to_numpy()
    table["workers"] = data.groupby(codes)["worker"].nunique().to_numpy()
    table["accuracy"] = table["correct"] / table["answers"]
    table["model_accuracy"] = fit.population_accuracy(fit.beta)
    table["ci_low"] = fit.population_accuracy(fit.beta - z * se)
    table["ci_high"] = fit.population_accuracy(fit.beta + z * se)
    if bootstrap:
        draws = cluster_bootstrap(data, by, bootstrap, seed)
        table["boot_low"], table["boot_high"] = np.nanquantile(draws, [alpha / 2, 1 - alpha / 2], axis=0)
    else:
        table["boot_low"] = table["boot_high"] = np.nan
    naive = [proportion_confint(c, n, alpha=alpha, method="wilson") for c, n in zip(table["correct"],
                                                                                   table["answers"])]
    table["naive_low"], table["naive_high"] = [low for low, _ in naive], [high for _, high in naive]
    table["interval"] = "mixed model (crossed worker and item intercepts)"
    model = {"sd_worker": fit.sd.get("worker", 0.0), "sd_item": fit.sd.get("item", 0.0),
             "converged": fit.converged, "answers": len(data), "workers": data["worker"].nunique(),
             "items": data["item"].nunique()}
    return table, model


def clustered_contrasts(frame: pd.DataFrame, baseline: str = "none", within: tuple[str, ...] = CONTRAST_WITHIN,
                        workers: str = "all", alpha: float = 0.05, correction: str = "holm",
                        bootstrap: int = BOOTSTRAP_DRAWS, seed: int = 0, draws: int = 4000) -> pd.DataFrame:
    """Each countermeasure against ``baseline`` within the same model, attack and blur, from the same model as
    ``clustered_accuracy``: the difference in population accuracy with its interval (draws from the fixed effects'
    normal approximation), the odds ratio, a Wald test of the log-odds difference (p adjusted together by
    ``correction``), and the cluster bootstrap's interval of the difference."""
    data = reconstructions(frame, workers)
    by = (*within, "countermeasure")
    if data.empty or not (data["countermeasure"] == baseline).any():
        return pd.DataFrame()
    fit, conditions = fit_conditions(data, by)
    boot = cluster_bootstrap(data, by, bootstrap, seed)
    rng = np.random.default_rng(seed)
    beta_draws = rng.multivariate_normal(fit.beta, fit.cov, size=draws, method="eigh")
    accuracy_draws = fit.population_accuracy(beta_draws)
    codes, _ = condition_codes(data, by)
    answers = np.bincount(codes, minlength=len(conditions))
    rows = []
    for key, group in conditions.groupby(list(within), sort=True):
        base = group.index[group["countermeasure"] == baseline]
        if base.empty:
            continue
        b = base[0]
        for k in group.index[group["countermeasure"] != baseline]:
            difference = fit.beta[k] - fit.beta[b]
            se = float(np.sqrt(fit.cov[k, k] + fit.cov[b, b] - 2 * fit.cov[k, b]))
            accuracy_difference = accuracy_draws[:, k] - accuracy_draws[:, b]
            boot_difference = boot[:, k] - boot[:, b]
            rows.append({**dict(zip(within, key if isinstance(key, tuple) else (key,))), "baseline": baseline,
                         "countermeasure": conditions.loc[k, "countermeasure"],
                         "baseline_accuracy": float(fit.population_accuracy(fit.beta[b])),
                         "accuracy": float(fit.population_accuracy(fit.beta[k])),
                         "difference": float(fit.population_accuracy(fit.beta[k])
                                             - fit.population_accuracy(fit.beta[b])),
                         "ci_low": float(np.quantile(accuracy_difference, alpha / 2)),
                         "ci_high": float(np.quantile(accuracy_difference, 1 - alpha / 2)),
                         "odds_ratio": float(np.exp(difference)),
                         "boot_low": float(np.nanquantile(boot_difference, alpha / 2)),
                         "boot_high": float(np.nanquantile(boot_difference, 1 - alpha / 2)),
                         "baseline_answers": int(answers[b]), "answers": int(answers[k]),
                         "test": "Wald, mixed model", "p": float(2 * norm.sf(abs(difference) / se))})
    table = pd.DataFrame(rows)
    if not table.empty:
        reject, adjusted, _, _ = multipletests(table["p"], alpha=alpha, method=correction)
        table["p_adjusted"], table["significant"], table["correction"] = adjusted, reject, correction
    return table


PHOTO_ROLES = ("train", "validation")


def accuracy_by_photo_role(frame: pd.DataFrame, alpha: float = 0.05, bootstrap: int = BOOTSTRAP_DRAWS,
                           seed: int = 0) -> pd.DataFrame:
    """The hit rate in target-present lineups by the role of the target's photo the lineup showed (one the model
    trained on, or a validation photo), with clustered intervals, for the conditions where both roles occur.
    Empty when the study did not record the role or used one role throughout."""
    if "photo_role" not in frame.columns:
        return pd.DataFrame()
    data = frame[frame["target_present"] & frame["photo_role"].isin(PHOTO_ROLES)]
    both = data.groupby(list(GROUP))["photo_role"].transform("nunique") == len(PHOTO_ROLES)
    if not both.any():
        return pd.DataFrame()
    table, _ = clustered_accuracy(data[both], by=(*GROUP, "photo_role"), alpha=alpha, bootstrap=bootstrap, seed=seed)
    return table.rename(columns={"accuracy": "hit_rate"})
