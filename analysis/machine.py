"""The machine evaluator beside the people: `mi-harness evaluate --csv` output joined to the human accuracy.

The evaluator's file is the interface (DESIGN.md: an arrow is a file, not an import): its rows are groups of
model x attack x countermeasure x blur with top-1 / top-5 over all 40 subjects, by pixel correlation and in an
eigenface space. That is a harder question than a five-face lineup (one right answer in 40, not in 5), so the
two are shown side by side, never merged into one number.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .load import AnswersError
from .metrics import GROUP

MACHINE_COLUMNS = ("n", "top1_pixel", "top5_pixel", "top1_eigen", "top5_eigen", "ssim")


def read_machine_scores(path: str | Path) -> pd.DataFrame:
    """The evaluator's CSV, grouped by at least model, attack and countermeasure (blur: '-' means none)."""
    path = Path(path)
    if not path.is_file():
        raise AnswersError(f"no machine evaluation at {path}")
    try:
        table = pd.read_csv(path, dtype={"model": str, "attack": str, "countermeasure": str, "blur": str},
                            keep_default_na=False)
    except (ValueError, pd.errors.ParserError) as exc:
        raise AnswersError(f"{path} is not a `mi-harness evaluate --csv` file ({exc})") from None
    missing = [c for c in ("model", "attack", "countermeasure", *MACHINE_COLUMNS) if c not in table.columns]
    if missing:
        raise AnswersError(f"{path} is not a `mi-harness evaluate --csv` file: no column {', '.join(missing)} "
                           "(evaluate it with --by model,attack,countermeasure,blur)")
    if "blur" not in table.columns:
        table["blur"] = ""
    table["blur"] = table["blur"].replace("-", "")
    for column in MACHINE_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table[[*GROUP, *MACHINE_COLUMNS]]


def side_by_side(human_all: pd.DataFrame, human_skilled: pd.DataFrame, machine: pd.DataFrame) -> pd.DataFrame:
    """One row per group that people answered about: their accuracy and hit rate (all and skilled workers),
    then the machine's scores for the same reconstructions (empty where the evaluator did not see them)."""
    keep = [*GROUP, "answers", "accuracy", "ci_low", "ci_high", "hit_rate", "hit_ci_low", "hit_ci_high"]
    people = human_all[[c for c in keep if c in human_all.columns]]
    if not human_skilled.empty:
        skilled = human_skilled[[c for c in [*GROUP, "answers", "accuracy", "hit_rate"] if c in human_skilled]]
        people = people.merge(skilled.rename(columns={"answers": "skilled_answers", "accuracy": "skilled_accuracy",
                                                      "hit_rate": "skilled_hit_rate"}), on=list(GROUP), how="left")
    machine = machine.rename(columns={"n": "machine_items"})
    return people.merge(machine, on=list(GROUP), how="left")
