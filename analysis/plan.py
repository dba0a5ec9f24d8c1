"""`mi-harness plan`: how many answers per item a study needs, by simulation from the mixed model.

A design (items per condition, answers per item in each run, runs, HIT size, HITs per worker) and the size of the
worker and item effects decide how precisely a condition's accuracy can be known; no formula for independent
trials gives that, because answers about one item, or from one worker, move together. So the power to tell two
conditions apart is estimated the way it will be analysed: simulate many studies from the model the analysis fits
(``glmm``), fit it to each, and count how often the difference is significant.

Default effect sizes (log-odds scale):

- item sd 1.0: the demo's answers to the same item correlate 0.19 to 0.33 (issue 12); on the latent logistic scale
  an item intraclass correlation of 0.25 with a worker sd of 0.8 is an item sd of about 1.1.
- worker sd 0.8: people differ widely in face matching; on the Glasgow Face Matching Test accuracy has a mean of
  about 90% and an sd of about 7 percentage points between people (Burton, White and McNeill 2010), which is a
  log-odds sd of about 0.8 around 90%.

A pilot study's export (``--pilot``) replaces them with the values fitted to it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit
from scipy.stats import norm

from .glmm import fit_crossed, population_accuracy

SD_WORKER = 0.8
SD_ITEM = 1.0


@dataclass(frozen=True)
class Design:
    """A study of two conditions as the survey runs it: each run asks for ``answers_per_item`` answers to every
    item, served in HITs of ``hit_size`` lineups; a worker takes ``hits_per_worker`` HITs and new workers come
    to each run (the survey's default)."""
    accuracy_a: float
    accuracy_b: float
    items_per_condition: int = 20
    answers_per_item: int = 5
    runs: int = 3
    hit_size: int = 10
    hits_per_worker: int = 3
    sd_worker: float = SD_WORKER
    sd_item: float = SD_ITEM

    def __post_init__(self):
        for name in ("accuracy_a", "accuracy_b"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be a proportion strictly between 0 and 1, not {getattr(self, name)}")
        for name in ("items_per_condition", "answers_per_item", "runs", "hit_size", "hits_per_worker"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.sd_worker < 0 or self.sd_item < 0:
            raise ValueError("the worker and item standard deviations cannot be negative")

    @property
    def total_sd(self) -> float:
        return math.hypot(self.sd_worker, self.sd_item)

    def log_odds(self, accuracy: float) -> float:
        """The condition's fixed effect that gives this population accuracy (a new worker on a new item)."""
        return brentq(lambda eta: float(population_accuracy(eta, self.total_sd)) - accuracy, -30, 30)


def simulate_answers(design: Design, rng: np.random.Generator) -> pd.DataFrame:
    """One simulated study: a row per answer (worker, item, condition 0 = a or 1 = b, correct), each answer right
    with probability expit(condition + worker effect + item effect)."""
    beta = np.array([design.log_odds(design.accuracy_a), design.log_odds(design.accuracy_b)])
    n_items = 2 * design.items_per_condition
    condition = np.repeat([0, 1], design.items_per_condition)
    item_effect = rng.normal(0, design.sd_item, n_items)
    workers, items = [], []
    first_worker = 0
    for _ in range(design.runs):
        # each block of the queue is a permutation of the items, so a HIT rarely holds an item twice
        queue = np.concatenate([rng.permutation(n_items) for _ in range(design.answers_per_item)])
        per_worker = design.hit_size * design.hits_per_worker
        workers.append(first_worker + np.arange(len(queue)) // per_worker)
        items.append(queue)
        first_worker = workers[-1].max() + 1
    worker, item = np.concatenate(workers), np.concatenate(items)
    worker_effect = rng.normal(0, design.sd_worker, worker.max() + 1)
    correct = rng.random(len(item)) < expit(beta[condition[item]] + worker_effect[worker] + item_effect[item])
    return pd.DataFrame({"worker": worker, "item": item, "condition": condition[item], "correct": correct})


def contrast(answers: pd.DataFrame) -> tuple[float, float, float]:
    """The mixed model's (p of the log-odds difference, accuracy of a, accuracy of b) on one simulated study."""
    design = np.eye(2)[answers["condition"].to_numpy()]
    fit = fit_crossed(answers["correct"].to_numpy(float), design,
                      {"worker": answers["worker"].to_numpy(), "item": answers["item"].to_numpy()})
    difference = fit.beta[1] - fit.beta[0]
    se = math.sqrt(fit.cov[0, 0] + fit.cov[1, 1] - 2 * fit.cov[0, 1])
    a, b = fit.population_accuracy(fit.beta)
    return float(2 * norm.sf(abs(difference) / se)), float(a), float(b)


def power(design: Design, simulations: int = 200, alpha: float = 0.05, seed: int = 0) -> dict:
    """The share of ``simulations`` simulated studies in which the mixed model's Wald test finds the difference
    at level ``alpha``, with its Monte Carlo standard error, and the workers and answers the design needs."""
    rng = np.random.default_rng(seed)
    rejected = 0
    for _ in range(simulations):
        answers = simulate_answers(design, rng)
        p, _, _ = contrast(answers)
        rejected += p < alpha
    share = rejected / simulations
    return {"answers_per_item": design.answers_per_item, "power": share,
            "mc_se": math.sqrt(share * (1 - share) / simulations), "answers": len(answers),
            "workers": int(answers["worker"].nunique()), "simulations": simulations}


def recommend(design: Design, candidates: list[int], target: float = 0.8, simulations: int = 200,
              alpha: float = 0.05, seed: int = 0, progress=lambda row: None) -> tuple[pd.DataFrame, int | None]:
    """Power for each candidate number of answers per item (in each run), and the smallest that reaches
    ``target`` (None when none does: more items help more than more answers once item variance dominates)."""
    rows = []
    for answers_per_item in sorted(set(candidates)):
        row = power(replace(design, answers_per_item=answers_per_item), simulations, alpha, seed)
        rows.append(row)
        progress(row)
    table = pd.DataFrame(rows)
    enough = table[table["power"] >= target]
    return table, (int(enough["answers_per_item"].iloc[0]) if len(enough) else None)


def ceiling_note(design: Design) -> str:
    """Why more answers per item stop helping: with infinitely many answers per item, the items themselves are
    still a sample, and the difference is known no better than the item effects allow."""
    spread = design.sd_item / math.sqrt(design.items_per_condition) * math.sqrt(2)
    gap = abs(design.log_odds(design.accuracy_b) - design.log_odds(design.accuracy_a))
    return (f"even with unlimited answers per item, {design.items_per_condition} items per condition leave the "
            f"log-odds difference (about {gap:.2f}) uncertain by about {spread:.2f} (one sd) from the items alone")
