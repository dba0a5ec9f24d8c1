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

PAPER = {  # Table of section 6 (training-set individuals): accuracy, precision, recall, in %
    ("fivethirtyeight", "white-box"): (86.4, 100.0, 21.1), ("fivethirtyeight", "black-box"): (85.8, 85.7, 21.1),
    ("fivethirtyeight", "most-common"): (82.9, 0.0, 0.0),
    ("gss", "white-box"): (80.3, 100.0, 0.7), ("gss", "black-box"): (80.0, 38.8, 1.0),
}


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


def trials(survey: Survey, count: int, seed: int = 0, train_share: float = 0.5, trainer=None, progress: bool = True,
           tree_params: dict | None = None):
    """``count`` trees, each trained on a stratified (by the sensitive answer) sample of the respondents
    (``tree_params``: scikit-learn settings of the default trainer, e.g. min_samples_leaf)."""
    rows, labels = survey.codes(), survey.codes([survey.target])[:, 0]
    sensitive = rows[:, survey.features.index(survey.sensitive)]
    everyone = np.arange(len(rows))
    trainer = trainer or (lambda r, y, s: train_tree(survey, r, y, s, **(tree_params or {})))
    for k in tqdm(range(count), desc=f"trees on {survey.name}", unit="tree", disable=not progress, leave=False):
        train, test = train_test_split(everyone, train_size=train_share, stratify=sensitive, random_state=seed + k)
        tree = trainer(rows[train], labels[train], seed + k)
        yield Trial(tree, train, test, float(np.mean(tree.predict(rows[test]) == labels[test])))


def attack_trial(survey: Survey, trial: Trial, seed: int = 0, rounding: float | None = None) -> list[dict]:
    """Every attack on the trial's training individuals and on its test individuals (the confidence-reading
    black-box attacker sees confidences rounded to ``rounding``)."""
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
            "black-box-confidence": est.black_box_confidence(trial.tree, r, y, feature, prior, rounding),
            "ideal": ideal.infer(r, y),
            "most-common": est.most_common(len(r), prior),
            "random": est.random_guess(len(r), prior, seed),
        }
        for attack, guess in guesses.items():
            out.append({"population": population, "attack": attack, **est.scores(truth, guess, positive)})
    return out


def attack_tree(survey: Survey, tree: TreeModel, seed: int = 0, rounding: float | None = None) -> pd.DataFrame:
    """Every attack on every respondent of the survey against one given tree (one trained elsewhere, read from
    its JSON form): the tree must use the survey's features with the same values, and predict its target."""
    problems = []
    for feature in tree.features:
        if feature.name not in survey.values:
            problems.append(f"the tree's feature {feature.name!r} is not a column of {survey.name}")
        elif feature.values != survey.values[feature.name]:
            problems.append(f"the tree's values of {feature.name!r} differ from the survey's")
    if tree.classes != survey.values[survey.target]:
        problems.append(f"the tree predicts {tree.classes}, the survey's {survey.target!r} is "
                        f"{survey.values[survey.target]}")
    names = [f.name for f in tree.features]
    if survey.sensitive not in names:
        problems.append(f"the tree does not use the sensitive feature {survey.sensitive!r}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError("; ".join(problems[:3]) + more)
    rows, labels = survey.codes(names), survey.codes([survey.target])[:, 0]
    feature = names.index(survey.sensitive)
    positive = survey.values[survey.sensitive].index(survey.positive)
    prior = est.priors(rows[:, feature], len(survey.values[survey.sensitive]))
    truth = rows[:, feature]
    guesses = {
        "white-box": est.white_box_with_counts(tree, rows, labels, feature, prior),
        "black-box": est.black_box(tree, rows, labels, feature, prior, est.confusion(tree, rows, labels)),
        "black-box-confidence": est.black_box_confidence(tree, rows, labels, feature, prior, rounding),
        "most-common": est.most_common(len(rows), prior),
        "random": est.random_guess(len(rows), prior, seed),
    }
    table = pd.DataFrame([{"survey": survey.name, "population": "all", "attack": attack,
                           **{f"{k}_mean": v for k, v in est.scores(truth, guess, positive).items()}}
                          for attack, guess in guesses.items()])
    table["precision_trees"] = table["precision_mean"].notna().astype(int)
    table["trees"] = 1
    table["model_accuracy"] = float(np.mean(tree.predict(rows) == labels))
    return table


def run_table(survey: Survey, count: int = 100, seed: int = 0, progress: bool = True,
              rounding: float | None = None, min_samples_leaf: int = 1) -> pd.DataFrame:
    """Mean (and standard deviation) over ``count`` trees of each attack's accuracy, precision and recall, with
    the paper's figures beside them where it reports them; ``precision_trees`` counts the trees whose precision
    was defined (the attack guessed the positive value at least once), the ones its mean is over."""
    rows, model_accuracy = [], []
    params = {"min_samples_leaf": min_samples_leaf}
    for k, trial in enumerate(trials(survey, count, seed, progress=progress, tree_params=params)):
        model_accuracy.append(trial.model_accuracy)
        rows += [{**r, "tree": k} for r in attack_trial(survey, trial, seed + k, rounding)]
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["population", "attack"], sort=False)
    table = grouped[["accuracy", "precision", "recall"]].agg(["mean", "std"])
    table.columns = [f"{metric}_{stat}" for metric, stat in table.columns]
    # Precision is undefined for a tree on which the attack never guessed the positive value: its mean is over
    # the trees that had one, and says how many.
    table["precision_trees"] = grouped["precision"].count()
    table = table.reset_index()
    table.insert(0, "survey", survey.name)
    table["trees"] = count
    table["rounding"] = rounding or 0.0
    table["min_samples_leaf"] = min_samples_leaf
    table["model_accuracy"] = float(np.mean(model_accuracy))
    for k, metric in enumerate(("accuracy", "precision", "recall")):
        table[f"paper_{metric}"] = [PAPER.get((survey.name, a), (None,) * 3)[k] if p == "training" else None
                                    for p, a in zip(table["population"], table["attack"])]
    return table


def depth_table(survey: Survey, depths: list[int | None], count: int = 100, seed: int = 0,
                progress: bool = True) -> pd.DataFrame:
    """The privacy-aware CART countermeasure: for the sensitive feature forced to each depth (None: the bottom),
    the model's accuracy on held-out rows and the white-box attack on the training individuals, over ``count``
    trees."""
    from .privacy_cart import train_with_feature_at

    features = [Feature(f, survey.values[f]) for f in survey.features]
    sensitive = survey.features.index(survey.sensitive)
    out = []
    for depth in depths:
        def trainer(rows, labels, tree_seed, depth=depth):
            return train_with_feature_at(rows, labels, features, survey.values[survey.target], sensitive, depth,
                                         tree_seed)

        results = []
        for k, trial in enumerate(trials(survey, count, seed, trainer=trainer, progress=progress)):
            scores = [r for r in attack_trial(survey, trial, seed + k) if r["attack"] == "white-box"]
            results.append({"model_accuracy": trial.model_accuracy,
                            **{f"{r['population']}_{m}": r[m] for r in scores for m in ("accuracy", "precision",
                                                                                        "recall")}})
        frame = pd.DataFrame(results)
        counted = {f"{p}_precision_trees": int(frame[f"{p}_precision"].count()) for p in ("training", "test")}
        out.append({"survey": survey.name, "sensitive": survey.sensitive,
                    "depth": "bottom" if depth is None else ("top" if depth == 0 else str(depth)), "trees": count,
                    **frame.mean().to_dict(), **counted})
    return pd.DataFrame(out)
