"""AttriGuard (Jia and Gong, USENIX Security 2018) for survey answers, and the local differential privacy baseline.

The setting: an attacker's classifier infers a person's sensitive answer from their other answers (public data).
The defender, who does not know the person's sensitive answer nor the attacker's classifier, trains its own
classifier and perturbs the public answers in two phases.

- **Phase I** (``minimum_change``): for each value i of the sensitive answer, the change of the public answers with
  the fewest answers changed (the paper's L0 noise) that makes the defender's classifier output i. The paper adapts
  an evasion attack (a Jacobian saliency heuristic) because its public data has thousands of dimensions; a survey
  has about a dozen questions with a few answers each, so here the search is exact: change sets are tried in
  order of size and the first size at which one works is the minimum. The defender's classifier is a logistic
  regression on one-hot answers, whose class scores add up over the questions; that gives each question's largest
  possible gain against each rival class, and a change set is skipped unless those gains could close every
  rival's margin (an admissible bound, so nothing better is pruned); within a question, a move that another beats
  against every rival is dropped (Pareto pruning, also exact). With two values the bound is attained by the
  largest gains, so the search ends at once: O(d log d) per person. With k values, at most
  ``sum_{s <= s*} C(d, s) * a^s`` candidates are scored (d questions, a answers at most, s* the minimum size);
  ``budget`` caps that, and a value beyond it counts as unreachable (the run says how often).
- **Phase II** (``mechanism``): the defender draws value i with probability M_i and adds Phase I's change r_i, so
  the defender's classifier outputs i with probability M_i. M minimises KL(p || M) subject to the expected number
  of changed answers sum_i M_i |r_i| <= beta. The problem is convex; its Lagrangian gives M_i = p_i / (mu + lambda
  |r_i|) (the paper's closed form), with mu making M sum to 1 and lambda >= 0 making the budget hold (lambda = 0,
  M = p, when p already fits the budget). Both are found by bisection, so the solution is exact to float precision.
- **Randomised response** (``randomised_response``): k-ary randomised response on each answered question (keep the
  answer with probability e^eps / (e^eps + k - 1), else any other answer uniformly), with each person's epsilon
  set so that their expected number of changed answers equals beta: the same utility loss as AttriGuard's budget.

Policies (the paper's Modify_Exist, Add_New and Modify_Add): ``modify`` changes an answered question to another
answer; ``add`` answers a question the person left unanswered; ``modify-add`` does either. Removing an answer is
none of them.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder
from tqdm import tqdm

POLICIES = ("modify", "add", "modify-add")
DEFAULT_BUDGET = 200_000
"""Phase I candidates scored per person and value before the value counts as unreachable (never reached with a
two-valued sensitive answer, where the search is a sort)."""


@dataclass
class AdditiveClassifier:
    """The defender's classifier in the form Phase I searches: class c's score is bias[c] plus, for each question j,
    table[j, answer_j, c]. A logistic regression on one-hot answers is exactly this."""

    table: np.ndarray  # questions x answers (the most any question has) x classes
    bias: np.ndarray  # classes

    @property
    def n_classes(self) -> int:
        return len(self.bias)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=int)
        return self.bias + self.table[np.arange(rows.shape[1]), rows].sum(axis=1)

    def predict(self, rows: np.ndarray) -> np.ndarray:
        return self.scores(rows).argmax(axis=1)

    @classmethod
    def logistic(cls, rows: np.ndarray, labels: np.ndarray, sizes: list[int], n_classes: int,
                 regularisation: float = 1.0) -> AdditiveClassifier:
        """A logistic regression (scikit-learn, L2, ``regularisation`` = its C) on one-hot answers, read as tables.
        Classes are weighted so each value counts equally: with four people in five answering "no", an unweighted
        one says "no" to nearly everyone, and there would be nothing to defend against."""
        if len(set(labels.tolist())) != n_classes:
            raise ValueError(f"the defender's training rows hold {len(set(labels.tolist()))} of the {n_classes} "
                             "values of the sensitive answer: too few people to train on")
        model = make_pipeline(OneHotEncoder(categories=[np.arange(k) for k in sizes], handle_unknown="ignore"),
                              LogisticRegression(C=regularisation, max_iter=2000, class_weight="balanced")
                              ).fit(rows, labels)
        regression = model[-1]
        weights, bias = regression.coef_, regression.intercept_
        if n_classes == 2:  # scikit-learn keeps one weight vector: class 1's score minus class 0's
            weights, bias = np.vstack([np.zeros_like(weights), weights]), np.array([0.0, bias[0]])
        table = np.full((len(sizes), max(sizes), n_classes), 0.0)
        offsets = np.cumsum([0, *sizes])
        for j, k in enumerate(sizes):
            table[j, :k] = weights[:, offsets[j]:offsets[j + 1]].T
        return cls(table, np.asarray(bias, dtype=float))


def allowed_moves(row: np.ndarray, answer_counts: np.ndarray, policy: str) -> list[np.ndarray]:
    """For each question, the codes the policy may change the person's answer to (answers come first in each
    question's codes; a code at or past ``answer_counts[j]`` is "unanswered")."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r} (policies: {', '.join(POLICIES)})")
    moves = []
    for answer, count in zip(row, answer_counts):
        answered = answer < count
        if (answered and policy != "add") or (not answered and policy != "modify"):
            moves.append(np.array([v for v in range(count) if v != answer], dtype=int))
        else:
            moves.append(np.zeros(0, dtype=int))
    return moves


def minimum_change(model: AdditiveClassifier, row: np.ndarray, moves: list[np.ndarray], target: int,
                   budget: int = DEFAULT_BUDGET) -> np.ndarray | None:
    """Phase I: the row with the fewest answers changed (each within ``moves``) that the model classifies as
    ``target``; among the changes of that size, the one with the largest margin over the rival classes. None when
    no allowed change works, or when ``budget`` candidates were scored without finding one."""
    row = np.asarray(row, dtype=int)
    if model.predict(row[None])[0] == target:
        return row.copy()
    rivals = np.delete(np.arange(model.n_classes), target)
    current = model.scores(row[None])[0]
    margin = current[target] - current[rivals]  # every entry must become > 0

    def advantage(j: int, values: np.ndarray) -> np.ndarray:  # values x rivals
        return model.table[j, values][:, [target]] - model.table[j, values][:, rivals]

    delta = {j: advantage(j, moves[j]) - advantage(j, row[[j]]) for j in range(len(row)) if len(moves[j])}
    if model.n_classes == 2:  # one rival: each question's best move, largest gains first, is optimal at every size
        gains = sorted(((d[:, 0].max(), j, moves[j][d[:, 0].argmax()]) for j, d in delta.items()), reverse=True)
        changed, total = row.copy(), margin[0]
        for gain, j, value in gains:
            if total > 0 or gain <= 0:
                break
            changed[j], total = value, total + gain
        return changed if total > 0 else None
    moves = list(moves)  # the caller's list serves every target value
    for j, d in delta.items():  # a move no better against any rival than another move of the question never helps
        keep = [a for a in range(len(d)) if not any((d[b] >= d[a]).all() and (d[b] > d[a]).any() or
                                                     (b < a and (d[b] == d[a]).all()) for b in range(len(d)))]
        moves[j], delta[j] = moves[j][keep], d[keep]
    best_gain = {j: d.max(axis=0) for j, d in delta.items()}
    scored = 0
    for size in range(1, len(delta) + 1):
        best, best_margin = None, 0.0
        for questions in combinations(delta, size):
            if (margin + sum(best_gain[j] for j in questions) <= 0).any():
                continue  # even each question's best move for every rival cannot close some margin
            for choice in product(*(range(len(moves[j])) for j in questions)):
                scored += 1
                total = margin + sum(delta[j][c] for j, c in zip(questions, choice))
                if total.min() > best_margin:
                    best, best_margin = (questions, choice), total.min()
                if scored >= budget and best is None:
                    return None
        if best is not None:
            changed = row.copy()
            for j, c in zip(*best):
                changed[j] = moves[j][c]
            return changed
    return None


def phase_one(model: AdditiveClassifier, rows: np.ndarray, answer_counts: np.ndarray, policy: str,
              budget: int = DEFAULT_BUDGET, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Phase I for every person and value: the changed rows (people x values x questions; the person's own row
    where a value is unreachable) and the number of answers changed (inf where unreachable)."""
    n, classes = len(rows), model.n_classes
    changed = np.repeat(np.asarray(rows, dtype=int)[:, None, :], classes, axis=1)
    costs = np.full((n, classes), np.inf)
    for person in tqdm(range(n), desc="AttriGuard phase I", unit="person", disable=not progress, leave=False):
        moves = allowed_moves(rows[person], answer_counts, policy)
        for value in range(classes):
            found = minimum_change(model, rows[person], moves, value, budget)
            if found is not None:
                changed[person, value] = found
                costs[person, value] = np.sum(found != rows[person])
    return changed, costs


def _solve_mu(p: np.ndarray, d: np.ndarray, lam: np.ndarray, iterations: int = 80) -> np.ndarray:
    """Per row, the mu > 0 with sum_i p_i / (mu + lam d_i) = 1 (the sum falls as mu grows; the zero-cost
    values' share z puts mu in [z, 1])."""
    lo, hi = np.where(d == 0, p, 0.0).sum(axis=1), np.ones(len(p))
    for _ in range(iterations):
        mid = (lo + hi) / 2
        too_big = (p / (mid[:, None] + lam[:, None] * d)).sum(axis=1) > 1
        lo, hi = np.where(too_big, mid, lo), np.where(too_big, hi, mid)
    return hi


def mechanism(target: np.ndarray, costs: np.ndarray, beta: float, iterations: int = 80) -> np.ndarray:
    """Phase II: for each person (a row of ``costs``: Phase I's number of changed answers per value, inf where
    unreachable), the distribution M over values minimising KL(p || M) with sum_i M_i cost_i <= beta. An
    unreachable value gets no probability, and p is renormalised over the reachable ones."""
    if beta < 0:
        raise ValueError("the utility budget beta must be at least 0")
    target = np.asarray(target, dtype=float)
    if target.ndim != 1 or len(target) != costs.shape[1] or (target <= 0).any() or abs(target.sum() - 1) > 1e-9:
        raise ValueError("the target distribution must give every value a positive probability, summing to 1")
    reachable = np.isfinite(costs)
    if not (costs[reachable] >= 0).all() or not (costs == 0).any(axis=1).all():
        raise ValueError("each person needs one value at cost 0 (the classifier's output on their own answers)")
    p = np.where(reachable, target, 0.0)
    p /= p.sum(axis=1, keepdims=True)
    d = np.where(reachable, costs, 0.0)
    if beta == 0:
        return (d == 0) * reachable / ((d == 0) * reachable).sum(axis=1, keepdims=True)
    def spent(m: np.ndarray) -> np.ndarray:
        return (m * d).sum(axis=1)

    fits = spent(p) <= beta
    lo, hi = np.zeros(len(p)), np.ones(len(p))
    for _ in range(200):  # grow lambda until the budget holds everywhere
        over = spent(_m(p, d, hi)) > beta
        if not over.any():
            break
        hi = np.where(over, hi * 2, hi)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        over = spent(_m(p, d, mid)) > beta
        lo, hi = np.where(over, mid, lo), np.where(over, hi, mid)
    return np.where(fits[:, None], p, _m(p, d, hi))


def _m(p: np.ndarray, d: np.ndarray, lam: np.ndarray) -> np.ndarray:
    mu = _solve_mu(p, d, lam)
    m = p / (mu[:, None] + lam[:, None] * d)
    return m / m.sum(axis=1, keepdims=True)


def kl_divergence(p: np.ndarray, m: np.ndarray) -> np.ndarray:
    """KL(p || M) per row (inf where p gives weight to a value M cannot produce)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p / m), 0.0)
    return terms.sum(axis=-1)


def expected_changes(epsilon: np.ndarray, answer_counts: np.ndarray) -> np.ndarray:
    """Randomised response's expected number of changed answers: sum over answered questions of (k - 1) /
    (e^eps + k - 1), k the question's number of answers (``answer_counts``: people x questions, 0 where
    unanswered)."""
    k = np.asarray(answer_counts, dtype=float)
    with np.errstate(over="ignore"):
        e = np.exp(np.asarray(epsilon, dtype=float))[:, None]
    return np.where(k >= 2, (k - 1) / (e + np.maximum(k, 2) - 1), 0.0).sum(axis=1)


def matched_epsilon(answer_counts: np.ndarray, beta: float, iterations: int = 100) -> np.ndarray:
    """Per person, the epsilon whose expected number of changed answers is beta (inf for beta = 0; 0, the most
    noise randomised response adds, where even that changes fewer than beta answers on average)."""
    n = len(answer_counts)
    if beta <= 0:
        return np.full(n, np.inf)
    lo, hi = np.zeros(n), np.full(n, 60.0)
    for _ in range(iterations):
        mid = (lo + hi) / 2
        more = expected_changes(mid, answer_counts) > beta
        lo, hi = np.where(more, mid, lo), np.where(more, hi, mid)
    return np.where(expected_changes(np.zeros(n), answer_counts) <= beta, 0.0, hi)


def randomised_response(rows: np.ndarray, answer_counts: np.ndarray, epsilon: np.ndarray,
                        rng: np.random.Generator) -> np.ndarray:
    """k-ary randomised response on every answered question, epsilon per person."""
    rows = np.asarray(rows, dtype=int)
    k = np.asarray(answer_counts)
    with np.errstate(over="ignore"):
        e = np.exp(np.asarray(epsilon, dtype=float))[:, None]
    change = (k >= 2) & (rng.random(rows.shape) < (k - 1) / (e + np.maximum(k, 2) - 1))
    offset = rng.integers(1, np.maximum(k, 2))  # uniform over the other k - 1 answers
    return np.where(change, (rows + offset) % np.maximum(k, 1), rows)
