"""The paper's tree table: each attack's accuracy, precision and recall at inferring the sensitive answer, on
the individuals a tree was trained on and on others, averaged over many trees trained on stratified halves."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier
from tqdm import tqdm

from . import estimators as est
from .surveys import Survey
from .tree_model import Feature, TreeModel, from_sklearn

ATTACKS = ("white-box", "black-box", "ideal", "most-common", "random")


@dataclass
class Trial:
    tree: TreeModel
    train: np.ndarray  # row indices of the survey the tree was trained on
    test: np.ndarray
    model_accuracy: float


def train_tree(survey: Survey, rows: np.ndarray, labels: np.ndarray, seed: int, **params) -> TreeModel:
    classifier = DecisionTreeClassifier(random_state=seed, **params).fit(rows, labels)
    features = [Feature(f, survey.values[f]) for f in survey.features]
    return from_sklearn(classifier, features, survey.values[survey.target])


def trials(survey: Survey, count: int, seed: int = 0, train_share: float = 0.5, trainer=None, progress: bool = True):
    """``count`` trees, each trained on a stratified (by the sensitive answer) sample of the respondents."""
    rows, labels = survey.codes(), survey.codes([survey.target])[:, 0]
    sensitive = rows[:, survey.features.index(survey.sensitive)]
    everyone = np.arange(len(rows))
    trainer = trainer or (lambda r, y, s: train_tree(survey, r, y, s))
    for k in tqdm(range(count), desc=f"trees on {survey.name}", unit="tree", disable=not progress, leave=False):
        train, test = train_test_split(everyone, train_size=train_share, stratify=sensitive, random_state=seed + k)
        tree = trainer(rows[train], labels[train], seed + k)
        yield Trial(tree, train, test, float(np.mean(tree.predict(rows[test]) == labels[test])))


def attack_trial(survey: Survey, trial: Trial, seed: int = 0) -> list[dict]:
    """Every attack on the trial's training individuals and on its test individuals."""
    rows, labels = survey.codes(), survey.codes([survey.target])[:, 0]
    feature = survey.features.index(survey.sensitive)
    positive = survey.values[survey.sensitive].index(survey.positive)
    train_rows, train_labels = rows[trial.train], labels[trial.train]
    prior = est.priors(train_rows[:, feature], len(survey.values[survey.sensitive]))
    error_model = est.confusion(trial.tree, train_rows, train_labels)
    ideal = est.IdealAttacker(train_rows, train_labels, feature, seed)
    out = []
    for population, index in (("training", trial.train), ("test", trial.test)):
        r, y, truth = rows[index], labels[index], rows[index, feature]
        guesses = {
            "white-box": est.white_box_with_counts(trial.tree, r, y, feature, prior),
            "black-box": est.black_box(trial.tree, r, y, feature, prior, error_model),
            "ideal": ideal.infer(r, y),
            "most-common": est.most_common(len(r), prior),
            "random": est.random_guess(len(r), prior, seed),
        }
        for attack, guess in guesses.items():
            out.append({"population": population, "attack": attack, **est.scores(truth, guess, positive)})
    return out


def run_table(survey: Survey, count: int = 100, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Mean (and standard deviation) over ``count`` trees of each attack's accuracy, precision and recall."""
    rows, model_accuracy = [], []
    for k, trial in enumerate(trials(survey, count, seed, progress=progress)):
        model_accuracy.append(trial.model_accuracy)
        rows += [{**r, "tree": k} for r in attack_trial(survey, trial, seed + k)]
    frame = pd.DataFrame(rows)
    table = frame.groupby(["population", "attack"], sort=False)[["accuracy", "precision", "recall"]] \
        .agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    table = table.reset_index()
    table.insert(0, "survey", survey.name)
    table["trees"] = count
    table["model_accuracy"] = float(np.mean(model_accuracy))
    return table
