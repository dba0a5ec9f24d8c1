"""The AttriGuard evaluation on a survey: attackers' accuracy at inferring the sensitive answer against the utility
budget beta, for AttriGuard and for randomised response at the same expected number of changed answers.

Who knows what (as in the paper's evaluation): the respondents are split in half, stratified by the sensitive
answer. The first half are people who disclose the sensitive answer; it is split again into the defender's sample,
on which the defender trains its classifier, and the attacker's sample, on which the attacker trains theirs, all
on unperturbed answers. The second half are the protected people whose public answers are released perturbed.
An attacker's accuracy under AttriGuard is its exact expectation over the mechanism's draw (sum_i M_i times
whether it is right on the answers changed by r_i); under randomised response it is the mean over ``draws``
draws.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeClassifier
from tqdm import tqdm

from .attriguard import (
    DEFAULT_BUDGET,
    AdditiveClassifier,
    kl_divergence,
    matched_epsilon,
    mechanism,
    phase_one,
    randomised_response,
)
from .public_answers import PublicAnswers

DEFENDER = "defender's classifier"
TARGETS = ("prior", "uniform")


def attackers(answers: PublicAnswers, rows: np.ndarray, labels: np.ndarray, seed: int) -> dict:
    """The attacker's own classifiers, each trained on the attacker's sample (unperturbed answers): another logistic
    regression on one-hot answers, a decision tree and a random forest on the answer codes (ordered answers keep
    their order). Classes are weighted so each value counts equally, as the defender's are: the attacker wants the
    people who said "yes", not to be right about the many who said "no"."""
    one_hot = OneHotEncoder(categories=[np.arange(k) for k in answers.sizes], handle_unknown="ignore")
    weights = {"class_weight": "balanced", "random_state": seed}
    return {"logistic regression": make_pipeline(one_hot, LogisticRegression(max_iter=2000, **weights)).fit(rows,
                                                                                                           labels),
            "decision tree": DecisionTreeClassifier(min_samples_leaf=5, **weights).fit(rows, labels),
            "random forest": RandomForestClassifier(n_estimators=100, min_samples_leaf=2, n_jobs=1, **weights
                                                    ).fit(rows, labels)}


def target_distribution(kind: str, labels: np.ndarray, n_values: int) -> np.ndarray:
    """The distribution the defender wants its classifier's output to follow: the population's prior (the share of
    each value among the people who disclose it, add-one smoothed so no value is impossible), or uniform."""
    if kind == "uniform":
        return np.full(n_values, 1 / n_values)
    if kind != "prior":
        raise ValueError(f"unknown target {kind!r} (targets: {', '.join(TARGETS)})")
    counts = np.bincount(labels, minlength=n_values) + 1.0
    return counts / counts.sum()


def balanced(hit: np.ndarray, truth: np.ndarray, n_values: int) -> dict[str, float]:
    """The mean over values of the share of people with that value the attacker gets right (1 / values is no
    information, whatever the base rate: accuracy alone rewards always guessing the common answer), and its
    standard error over the protected people (a person's hit is 0 or 1, or its expectation under AttriGuard)."""
    groups = [hit[truth == v] for v in range(n_values) if (truth == v).any()]
    return {"balanced_accuracy": float(np.mean([g.mean() for g in groups])),
            "balanced_accuracy_se": float(np.sqrt(sum(g.var(ddof=1) / len(g) for g in groups if len(g) > 1))
                                          / len(groups))}


def run(answers: PublicAnswers, betas: list[float], policy: str = "modify-add", target: str = "prior",
        draws: int = 10, seed: int = 0, budget: int = DEFAULT_BUDGET, progress: bool = True
        ) -> tuple[pd.DataFrame, dict]:
    """The table (one row per defence x beta x attacker) and facts for the note."""
    rows, truth, n_values = answers.codes, answers.truth, len(answers.sensitive_values)
    everyone = np.arange(len(rows))
    known, protected = train_test_split(everyone, train_size=0.5, stratify=truth, random_state=seed)
    own, theirs = train_test_split(known, train_size=0.5, stratify=truth[known], random_state=seed)
    defender = AdditiveClassifier.logistic(rows[own], truth[own], answers.sizes, n_values)
    classifiers = {DEFENDER: defender, **attackers(answers, rows[theirs], truth[theirs], seed)}
    p = target_distribution(target, truth[known], n_values)
    counts = answers.answer_counts()
    people, truth_p = rows[protected], truth[protected]
    changed, costs = phase_one(defender, people, counts, policy, budget, progress)
    right = {name: (c.predict(changed.reshape(-1, rows.shape[1])).reshape(len(people), n_values) ==
                    truth_p[:, None]) for name, c in classifiers.items()}
    answered = np.where(people < counts, counts, 0)  # randomised response's k per person and question
    base_rate = float(np.bincount(truth_p, minlength=n_values).max() / len(truth_p))
    common = {"survey": answers.name, "sensitive": answers.sensitive, "policy": policy, "target": target,
              "people": len(people), "base_rate": base_rate}
    out = []
    rng = np.random.default_rng(seed)
    reachable_target = np.where(np.isfinite(costs), p, 0.0)
    reachable_target /= reachable_target.sum(axis=1, keepdims=True)  # what Phase II can reach, and minimises KL to
    for beta in tqdm(betas, desc="budgets", unit="beta", disable=not progress, leave=False):
        m = mechanism(p, costs, beta)
        spent = float(np.where(m > 0, m * np.where(np.isfinite(costs), costs, 0), 0).sum(axis=1).mean())
        kl = float(kl_divergence(reachable_target, m).mean())
        for name in classifiers:
            hit = (m * right[name]).sum(axis=1)
            out.append({**common, "defence": "attriguard", "beta": beta, "attacker": name,
                        "accuracy": float(hit.mean()), **balanced(hit, truth_p, n_values),
                        "changed_answers": spent,
                        "kl_to_target": kl, "epsilon": np.nan})
        epsilon = matched_epsilon(answered, beta)
        hits, changes = {name: np.zeros(len(people)) for name in classifiers}, []
        repeats = draws if beta > 0 else 1
        for _ in range(repeats):
            noisy = randomised_response(people, answered, epsilon, rng)
            changes.append(np.mean(np.sum(noisy != people, axis=1)))
            for name, c in classifiers.items():
                hits[name] += (c.predict(noisy) == truth_p) / repeats
        for name in classifiers:
            out.append({**common, "defence": "randomised response", "beta": beta, "attacker": name,
                        "accuracy": float(hits[name].mean()),
                        **balanced(hits[name], truth_p, n_values),
                        "changed_answers": float(np.mean(changes)),
                        "kl_to_target": np.nan, "epsilon": float(np.median(epsilon))})
    moved = costs[np.isfinite(costs) & (costs > 0)]
    facts = {"unreachable": int(np.isinf(costs).sum()), "pairs": costs.size,
             "mean_cost": float(moved.mean()) if len(moved) else 0.0,
             "target_distribution": dict(zip(answers.sensitive_values, p.round(4).tolist())),
             "defender_rows": len(own), "attacker_rows": len(theirs),
             "rr_capped": int((matched_epsilon(answered, max(betas)) == 0).sum()) if max(betas) > 0 else 0}
    return pd.DataFrame(out), facts
