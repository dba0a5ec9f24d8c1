"""The machine judges beside the people.

Two sources. The evaluator's file (`mi-harness evaluate --csv`; DESIGN.md: an arrow is a file, not an import):
groups of model x attack x countermeasure x blur with top-1 / top-5 over all 40 subjects by the deep face judge,
pixel correlation and eigenfaces, and how many items screening found unusable. That is a harder question than a
five-face lineup (one right answer in 40, not in 5), so it is shown beside the people, never merged with them.
And the deep face judge on the study's own lineups (``deep_lineup_answers``): the same five faces, the same
target-present and target-absent lineups, answered as a face recogniser would; that is directly comparable with
the people's accuracy.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from mi_harness.deep_face import ABSENT, DeepFaceJudge, lineup_choice

from .load import AnswersError
from .metrics import GROUP

MACHINE_COLUMNS = ("n", "top1_pixel", "top5_pixel", "top1_eigen", "top5_eigen", "ssim")
DEEP_COLUMNS = ("unusable", "top1_deep", "top5_deep", "deep_distance", "deep_same_person")
"""Columns of evaluator files written since the deep judge and screening; older files lack them (left empty)."""


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
    for column in DEEP_COLUMNS:
        if column not in table.columns:
            table[column] = float("nan")
    for column in (*MACHINE_COLUMNS, *DEEP_COLUMNS):
        table[column] = pd.to_numeric(table[column], errors="coerce")
    return table[[*GROUP, *MACHINE_COLUMNS, *DEEP_COLUMNS]]


def _pixels(png: bytes) -> np.ndarray:
    """A study image as the deep judge sees it: colour kept (a study's images share one mode)."""
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGB" if image.mode == "RGB" else "L"))


def _descriptors(judge: DeepFaceJudge, ids: list[int], images: dict[int, bytes]) -> dict:
    """Descriptors by image id, in batches of one image size, through the judge's cache (photos and
    reconstructions the evaluator already described cost a file read)."""
    pixels = {i: _pixels(images[i]) for i in ids}
    out = {}
    for shape in sorted({p.shape for p in pixels.values()}):
        same = [i for i in ids if pixels[i].shape == shape]
        stack = np.stack([pixels[i] for i in same])
        values = judge.cached_descriptors(stack)
        out.update(zip(same, values))
    return out


def deep_lineup_answers(lineups: pd.DataFrame, images: dict[int, bytes], allow_absent: bool,
                        judge: DeepFaceJudge | None = None) -> pd.DataFrame:
    """The deep judge's answer on every lineup (``load.study_lineups``): the nearest face, or "absent" when the
    study allows it and no face is within the recogniser's same-person distance. ``choice`` is 1-5 or "absent"
    and ``correct`` follows the survey's rule (the target's place, or "absent" when the target is not shown)."""
    if lineups.empty:
        return lineups.assign(choice=pd.Series(dtype=str), correct=pd.Series(dtype=bool))
    judge = judge or DeepFaceJudge()
    faces = _descriptors(judge, sorted({int(i) for row in lineups["faces"] for i in row}), images)
    probes = _descriptors(judge, sorted({int(i) for i in lineups["probe_image"]}), images)
    choices, correct = [], []
    for row in lineups.itertuples():
        choice = lineup_choice(probes[int(row.probe_image)], np.stack([faces[int(i)] for i in row.faces]),
                               allow_absent=allow_absent)
        target = int(row.target_position) if row.target_present else ABSENT
        choices.append("absent" if choice == ABSENT else str(choice + 1))
        correct.append(choice == target)
    return lineups.drop(columns=["faces"]).assign(choice=choices, correct=correct)


def deep_lineup_accuracy(answers: pd.DataFrame) -> pd.DataFrame:
    """Per group: the deep judge's accuracy over the study's lineups, its hit rate on target-present lineups and
    its correct rejections of target-absent ones."""
    rows = []
    for key, group in answers.groupby(list(GROUP), sort=True):
        present = group[group["target_present"]]
        absent = group[~group["target_present"]]
        rows.append({**dict(zip(GROUP, key)), "deep_lineups": len(group),
                     "deep_lineup_accuracy": float(group["correct"].mean()),
                     "deep_hit_rate": float(present["correct"].mean()) if len(present) else float("nan"),
                     "deep_correct_rejections": float(absent["correct"].mean()) if len(absent) else float("nan")})
    return pd.DataFrame(rows, columns=[*GROUP, "deep_lineups", "deep_lineup_accuracy", "deep_hit_rate",
                                       "deep_correct_rejections"])


def screening_table(settings: dict) -> pd.DataFrame:
    """How many items of each condition the study left out as unusable, and why (from the study's record)."""
    record = (settings or {}).get("screening") or {}
    rows = [{**{k: row.get(k, "") for k in GROUP}, "items": row["items"], "unusable": row["unusable"],
             "left_out": row["left_out"],
             "reasons": ", ".join(f"{reason} {n}" for reason, n in sorted(row.get("reasons", {}).items()))}
            for row in record.get("by_condition", [])]
    return pd.DataFrame(rows, columns=[*GROUP, "items", "unusable", "left_out", "reasons"])


def side_by_side(human_all: pd.DataFrame, human_skilled: pd.DataFrame, machine: pd.DataFrame | None,
                 deep_lineups: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per group that people answered about: their accuracy and hit rate (all and skilled workers),
    the deep judge's on the same lineups (``deep_lineup_accuracy``), then the evaluator's scores for the same
    reconstructions (empty where it did not see them)."""
    keep = [*GROUP, "answers", "accuracy", "ci_low", "ci_high", "hit_rate", "hit_ci_low", "hit_ci_high"]
    people = human_all[[c for c in keep if c in human_all.columns]]
    if not human_skilled.empty:
        skilled = human_skilled[[c for c in [*GROUP, "answers", "accuracy", "hit_rate"] if c in human_skilled]]
        people = people.merge(skilled.rename(columns={"answers": "skilled_answers", "accuracy": "skilled_accuracy",
                                                      "hit_rate": "skilled_hit_rate"}), on=list(GROUP), how="left")
    if deep_lineups is not None:
        people = people.merge(deep_lineups, on=list(GROUP), how="left")
    if machine is None:
        return people
    machine = machine.rename(columns={"n": "machine_items"})
    return people.merge(machine, on=list(GROUP), how="left")
