"""The attribute-inference results of `mi-harness trees`, `warfarin` and `attriguard`, read from their output folders
for the report (the CSVs are the interface, as with the machine evaluator)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .load import AnswersError

FILES = {"attacks.csv": ("survey", "population", "attack", "accuracy_mean", "precision_mean", "recall_mean"),
         "depth.csv": ("survey", "depth", "model_accuracy", "training_accuracy", "training_precision",
                       "training_recall"),
         "warfarin.csv": ("knows_cyp2c9", "population", "attack", "accuracy"),
         "attriguard.csv": ("survey", "sensitive", "policy", "target", "defence", "beta", "attacker", "accuracy",
                            "balanced_accuracy", "changed_answers", "epsilon", "base_rate")}

SHOWN = {"attriguard": ["defence", "beta", "attacker", "accuracy", "balanced_accuracy", "balanced_accuracy_se",
                        "changed_answers", "kl_to_target", "epsilon", "base_rate"]}
"""The columns the report shows of a table, where not all (the rest repeat the run's settings, in its note)."""

EXPLANATIONS = {
    "attriguard": "AttriGuard (Jia and Gong, USENIX Security 2018) as a defence of the sensitive answer: for each of "
                  "its values the fewest public answers changed that make the defender's classifier output it "
                  "(Phase I, an exact search), drawn by the mechanism that brings the classifier's output closest in "
                  "KL divergence to the target distribution while changing at most beta answers per person on "
                  "average (Phase II). Each attacker's accuracy and balanced accuracy (the mean of the per-value "
                  "recalls; 0.5 for two values is no information) against beta, beside k-ary randomised response on "
                  "every answer with epsilon set for the same expected number of changed answers (local "
                  "differential privacy at matched utility loss). The attackers' own classifiers were trained on "
                  "other people's unperturbed answers, so their rows measure how well the defence transfers. "
                  "These are survey respondents' answers, not a deployed service.",
}


def read_tree_results(folder: str | Path) -> dict[str, pd.DataFrame]:
    """Every known table in ``folder`` (at least one), checked for the columns the report shows."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AnswersError(f"no tree results folder at {folder}")
    tables = {}
    for name, columns in FILES.items():
        path = folder / name
        if not path.is_file():
            continue
        table = pd.read_csv(path)
        missing = [c for c in columns if c not in table.columns]
        if missing:
            raise AnswersError(f"{path} is not a `mi-harness {'attriguard' if name == 'attriguard.csv' else 'trees'}` "
                               f"table: no column {', '.join(missing)}")
        tables[name.removesuffix(".csv")] = table
    if not tables:
        raise AnswersError(f"{folder} holds none of {', '.join(FILES)} (the output of `mi-harness trees`, "
                           "`mi-harness warfarin` or `mi-harness attriguard`)")
    return tables


def figures_of(folder: str | Path) -> list[Path]:
    return sorted((Path(folder) / "figures").glob("*.png"))
