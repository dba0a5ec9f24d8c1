"""Our tree attacks beside IBM ART's on the same trees: accuracy, precision, recall and time (BENCHMARKS.md).

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python bench/bench_trees_art.py --survey fivethirtyeight --trees 100
    .venv/bin/python bench/bench_trees_art.py --survey gss --trees 10

Each tree is the one `mi-harness trees` trains (a scikit-learn tree on a stratified half, same seeds), wrapped
for ART with ``ScikitlearnDecisionTreeClassifier``. ART's ``AttributeInferenceWhiteBoxLifestyleDecisionTree``
and ``AttributeInferenceWhiteBoxDecisionTree`` get the sensitive feature's codes as values and the training
half's marginal as priors (and, for the second, the true labels as y, the paper's setting), exactly what our
white-box (WBWC) and black-box estimators get. Times are seconds per tree for all training individuals.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
from art.attacks.inference.attribute_inference import (
    AttributeInferenceWhiteBoxDecisionTree,
    AttributeInferenceWhiteBoxLifestyleDecisionTree,
)
from art.estimators.classification.scikitlearn import ScikitlearnDecisionTreeClassifier
from sklearn.model_selection import train_test_split
from sklearn.tree import DecisionTreeClassifier

from attack.trees import estimators as est
from attack.trees.surveys import load_survey
from attack.trees.tree_model import Feature, from_sklearn

RESULTS = Path(__file__).parent / "results"


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--survey", default="fivethirtyeight")
    parser.add_argument("--trees", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    survey = load_survey(args.survey)
    rows, labels = survey.codes(), survey.codes([survey.target])[:, 0]
    j = survey.features.index(survey.sensitive)
    positive = survey.values[survey.sensitive].index(survey.positive)
    n_values = len(survey.values[survey.sensitive])
    features = [Feature(f, survey.values[f]) for f in survey.features]
    records = []
    for k in range(args.trees):
        seed = args.seed + k
        train, _ = train_test_split(np.arange(len(rows)), train_size=0.5, stratify=rows[:, j], random_state=seed)
        x, y = rows[train], labels[train]
        classifier = DecisionTreeClassifier(random_state=seed).fit(x, y)
        tree = from_sklearn(classifier, features, survey.values[survey.target])
        prior = est.priors(x[:, j], n_values)
        error_model = est.confusion(tree, x, y)
        wrapped = ScikitlearnDecisionTreeClassifier(classifier)
        others = np.delete(x, j, axis=1).astype(float)
        predicted_class = np.searchsorted(classifier.classes_, y)  # ART compares with its argmax over classes_
        runs = {
            "ours white-box (WBWC)": lambda: est.white_box_with_counts(tree, x, y, j, prior),
            "ours black-box": lambda: est.black_box(tree, x, y, j, prior, error_model),
            "ART WhiteBoxLifestyleDecisionTree": lambda: AttributeInferenceWhiteBoxLifestyleDecisionTree(
                wrapped, attack_feature=j).infer(others, values=list(range(n_values)), priors=list(prior)),
            "ART WhiteBoxDecisionTree": lambda: AttributeInferenceWhiteBoxDecisionTree(
                wrapped, attack_feature=j).infer(others, predicted_class, values=list(range(n_values)),
                                                 priors=list(prior)),
        }
        for name, run in runs.items():
            guess, seconds = timed(run)
            records.append({"tree": k, "attack": name, "seconds": seconds,
                            **est.scores(x[:, j], np.asarray(guess).astype(int), positive)})
    frame = pd.DataFrame(records)
    table = frame.groupby("attack", sort=False).agg(accuracy=("accuracy", "mean"), precision=("precision", "mean"),
                                                    recall=("recall", "mean"), seconds=("seconds", "median"))
    ours = table.loc["ours white-box (WBWC)", "seconds"]
    table["time_vs_ours_wbwc"] = table["seconds"] / ours
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"trees_art_{args.survey}.json").write_text(json.dumps(
        {"survey": args.survey, "trees": args.trees, "table": table.reset_index().to_dict(orient="records"),
         "median_seconds": {a: statistics.median(frame[frame.attack == a].seconds) for a in table.index}}, indent=1))
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
