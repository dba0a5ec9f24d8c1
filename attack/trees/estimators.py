"""Inferring a sensitive feature x1 of a person from a tree model, their other features x_K and their label y.

- ``black_box``: Fredrikson et al. (2014)'s estimator with the model as an oracle: each candidate v scored by
  the model's error model C(y, f(v, x_K)) = Pr[true label y | the model says f(v, x_K)] (the confusion matrix,
  which model services publish) times the marginal prior Pr[x1 = v].
- ``white_box_with_counts`` (WBWC): reads the tree. Each candidate v leads down one path; the path counts only
  if its leaf outputs y (phi_i(v) = 1), and then weighs p_i = n_i / N, the share of training rows on it, times
  the prior Pr[x1 = v], as the 2014 estimator weighs its error model by the priors. (A path that does not test
  x1 is the same for every v, so there the prior decides.) No consistent path: the prior decides.
- ``black_box_confidence``: the same oracle attacker when the API also returns confidences (the leaf's class
  shares), scoring v by the confidence of y; rounding the confidences is the countermeasure it meets.
- Baselines: a random guess, always the most common value, and the "ideal" attacker, a classifier trained to
  predict x1 from x_K and y on the training rows.

Rows are integer codes (see ``surveys.Survey.codes``); labels are class indices.
"""
from __future__ import annotations

import numpy as np
from sklearn.tree import DecisionTreeClassifier

from .tree_model import TreeModel


def priors(column: np.ndarray, n_values: int) -> np.ndarray:
    """Marginal distribution of a feature's codes (add-one smoothed, so no value is impossible)."""
    counts = np.bincount(column, minlength=n_values).astype(float) + 1.0
    return counts / counts.sum()


def confusion(tree: TreeModel, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """C[y, y'] = Pr[true label y | prediction y'], from the model's predictions on ``rows`` (add-one smoothed)."""
    k = len(tree.classes)
    matrix = np.ones((k, k))
    np.add.at(matrix, (labels, tree.predict(rows)), 1.0)
    return matrix / matrix.sum(axis=0, keepdims=True)


def with_value(rows: np.ndarray, feature: int, value: int) -> np.ndarray:
    out = np.array(rows, dtype=int, copy=True)
    out[:, feature] = value
    return out


def _decide(scores: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Highest score per row (values x rows); where every score is 0, the most likely value a priori."""
    best = scores.argmax(axis=0)
    return np.where(scores.max(axis=0) > 0, best, prior.argmax())


def black_box(tree: TreeModel, rows: np.ndarray, labels: np.ndarray, feature: int, prior: np.ndarray,
              error_model: np.ndarray) -> np.ndarray:
    scores = np.stack([error_model[labels, tree.predict(with_value(rows, feature, v))] * prior[v]
                       for v in range(len(prior))])
    return _decide(scores, prior)


def confidences(tree: TreeModel, rows: np.ndarray, rounding: float | None = None) -> np.ndarray:
    """What a prediction API returns for each row: its leaf's class shares, rounded to ``rounding`` if given
    (the paper's countermeasure)."""
    counts = tree.counts[tree.apply(rows)]
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return np.round(shares / rounding) * rounding if rounding else shares


def black_box_confidence(tree: TreeModel, rows: np.ndarray, labels: np.ndarray, feature: int, prior: np.ndarray,
                         rounding: float | None = None) -> np.ndarray:
    """The black-box attacker who also sees confidences: each candidate v scored by the confidence the API gives
    the person's known label y, times the prior. Rounding makes candidates tie, and ties go to the prior."""
    scores = np.stack([confidences(tree, with_value(rows, feature, v), rounding)[np.arange(len(rows)), labels]
                       * prior[v] for v in range(len(prior))])
    return _decide(scores, prior)


def white_box_with_counts(tree: TreeModel, rows: np.ndarray, labels: np.ndarray, feature: int,
                          prior: np.ndarray) -> np.ndarray:
    total = tree.counts[0].sum()
    prediction = tree.counts.argmax(axis=1)
    scores = []
    for v in range(len(prior)):
        leaf = tree.apply(with_value(rows, feature, v))
        scores.append((prediction[leaf] == labels) * tree.counts[leaf].sum(axis=1) / total * prior[v])
    return _decide(np.stack(scores), prior)


def random_guess(n: int, prior: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, len(prior), size=n)


def most_common(n: int, prior: np.ndarray) -> np.ndarray:
    return np.full(n, prior.argmax())


class IdealAttacker:
    """The best a classifier does at predicting x1 from the other features and the label, trained on the same
    training rows as the model: what an attacker learns from the population, not from the model."""

    def __init__(self, rows: np.ndarray, labels: np.ndarray, feature: int, seed: int = 0) -> None:
        self.feature = feature
        self.classifier = DecisionTreeClassifier(random_state=seed, min_samples_leaf=5)
        self.classifier.fit(self._inputs(rows, labels), rows[:, feature])

    def _inputs(self, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return np.column_stack([np.delete(rows, self.feature, axis=1), labels])

    def infer(self, rows: np.ndarray, labels: np.ndarray) -> np.ndarray:
        return self.classifier.predict(self._inputs(rows, labels))


def scores(truth: np.ndarray, guess: np.ndarray, positive: int) -> dict[str, float]:
    """Accuracy, and precision and recall of the positive value. Precision is undefined (NaN), not 0, when the
    attack never guesses the positive value: it made no positive claim to be right or wrong about (the paper's
    0% for a baseline that never guesses it reads as "always wrong"). Means over trees skip the NaNs and say
    how many trees had a precision (``experiment.run_table``)."""
    hits = np.sum((guess == positive) & (truth == positive))
    guessed, actual = np.sum(guess == positive), np.sum(truth == positive)
    return {"accuracy": float(np.mean(truth == guess)), "precision": float(hits / guessed) if guessed else float("nan"),
            "recall": float(hits / actual) if actual else 0.0}
