"""The tree-inversion results of `mi-harness trees` and `mi-harness warfarin`, read from their output folders
for the report (the CSVs are the interface, as with the machine evaluator)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .load import AnswersError

FILES = {"attacks.csv": ("survey", "population", "attack", "accuracy_mean", "precision_mean", "recall_mean"),
         "depth.csv": ("survey", "depth", "model_accuracy", "training_accuracy", "training_precision",
                       "training_recall"),
         "warfarin.csv": ("knows_cyp2c9", "population", "attack", "accuracy")}


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
            raise AnswersError(f"{path} is not a `mi-harness trees` table: no column {', '.join(missing)}")
        tables[name.removesuffix(".csv")] = table
    if not tables:
        raise AnswersError(f"{folder} holds none of {', '.join(FILES)} (the output of `mi-harness trees` or "
                           "`mi-harness warfarin`)")
    return tables


def figures_of(folder: str | Path) -> list[Path]:
    return sorted((Path(folder) / "figures").glob("*.png"))
