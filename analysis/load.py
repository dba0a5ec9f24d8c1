"""Answers into one tidy pandas frame, from the survey's database (read-only) or from its export.

The database is read with plain SQL over the survey's tables, not through ``survey_app``: the tables and the
export's columns are the interface between the two stages (DESIGN.md).
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from mi_harness.answers import (
    ABSENT_CHOICE,
    ADDED_COLUMNS,
    COLUMNS,
    FLAGS,
    is_skilled,
    measures_skill,
    skill_evidence,
    skill_measured_on_gold,
)
from mi_harness.conditions import blur_of


class AnswersError(ValueError):
    pass


ANSWERS_SQL = text("""
SELECT s.name AS study, r.number AS run, w.external_id AS worker, w.id AS worker_key, a.hit_id AS hit,
       i.external_id AS item, i.subject, i.model, i.attack, i.countermeasure, i.params, i.is_gold AS gold,
       i.is_control AS control, l.target_present, l.target_position, l.photo, l.photo_role, ans.choice, ans.correct,
       ans.confidence, ans.shown_at, ans.answered_at
FROM answer ans
JOIN assignment a ON a.id = ans.assignment_id
JOIN run r ON r.id = ans.run_id
JOIN worker w ON w.id = ans.worker_id
JOIN lineup l ON l.id = ans.lineup_id
JOIN item i ON i.id = l.item_id
JOIN study s ON s.id = r.study_id
WHERE s.name = :study
ORDER BY ans.id
""")


def read_only_engine(url: str):
    """An engine that cannot write: SQLite opened with mode=ro, PostgreSQL in read-only transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not path.is_file():
            raise AnswersError(f"no SQLite database at {path}")
        return create_engine(f"sqlite:///file:{path.resolve()}?mode=ro&uri=true")
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    options = " ".join(filter(None, [parsed.query.get("options"), "-c default_transaction_read_only=on"]))
    return create_engine(parsed.difference_update_query(["options"]), connect_args={"options": options})


def study_settings(url: str, study: str) -> dict:
    engine = read_only_engine(url)
    try:
        with engine.connect() as connection:
            raw = connection.execute(text("SELECT settings FROM study WHERE name = :s"), {"s": study}).scalar()
            names = [n for (n,) in connection.execute(text("SELECT name FROM study ORDER BY id"))]
    finally:
        engine.dispose()
    if raw is None:
        raise AnswersError(f"no study named {study!r} in the database (it has: {', '.join(names) or 'none'})")
    return raw if isinstance(raw, dict) else json.loads(raw)


def from_database(url: str, study: str) -> pd.DataFrame:
    """Every answer of ``study``, with the skilled flag worked out by the definition the study recorded."""
    settings = study_settings(url, study)
    engine = read_only_engine(url)
    try:
        with engine.connect() as connection:
            frame = pd.DataFrame(connection.execute(ANSWERS_SQL, {"study": study}).mappings().all())
    finally:
        engine.dispose()
    if frame.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    params = frame.pop("params").map(lambda p: p if isinstance(p, dict) else json.loads(p or "{}"))
    frame["blur"] = params.map(blur_of)
    frame["control_of"] = params.map(lambda p: p.get("control_of") or "")
    frame["filler_policy"] = settings.get("filler_policy", ADDED_COLUMNS["filler_policy"])
    frame["confidence_scale"] = settings.get("confidence_scale", ADDED_COLUMNS["confidence_scale"])
    for column in ("gold", "control", "target_present", "correct"):
        frame[column] = frame[column].astype(bool)
    frame["target_position"] = frame["target_position"].map(lambda p: None if pd.isna(p) else int(p) + 1)
    frame["choice"] = frame["choice"].map(lambda c: ABSENT_CHOICE if c == -1 else str(int(c) + 1))
    frame["shown_at"] = pd.to_datetime(frame["shown_at"])
    frame["answered_at"] = pd.to_datetime(frame["answered_at"])
    frame["response_ms"] = (frame["answered_at"] - frame["shown_at"]).dt.total_seconds() * 1000
    frame["skilled"] = frame["worker_key"].map(skilled_workers(frame, settings))
    return tidy(frame.drop(columns="worker_key"))


def skilled_workers(frame: pd.DataFrame, settings: dict) -> dict:
    """worker_key -> skilled, by the study's rule (``mi_harness.answers``): enough answered lineups and accuracy
    on gold items where the study has them (and shows them), else on every other answer. ``frame`` is in the order
    the answers were given."""
    on_gold = skill_measured_on_gold(bool(frame["gold"].any()), settings.get("gold_per_hit", 1))
    out = {}
    for key, answers in frame.groupby("worker_key", sort=False):
        controls = answers["control"].map(lambda v: v is True or v == 1) if "control" in answers else None
        measured, right = skill_evidence(answers["gold"], answers["correct"], on_gold, controls)
        out[key] = is_skilled(len(answers), measured, right,
                              settings.get("skilled_min_tasks", 5), settings.get("skilled_min_accuracy", 0.75))
    return out


def from_export(path: str | Path) -> pd.DataFrame:
    """The survey's answers.csv or answers.json."""
    path = Path(path)
    if not path.is_file():
        raise AnswersError(f"no export at {path}")
    try:
        frame = pd.read_json(path, dtype=False) if path.suffix == ".json" else pd.read_csv(path, dtype=str,
                                                                                         keep_default_na=False)
    except ValueError as exc:
        raise AnswersError(f"{path} is not a survey export ({exc})") from None
    for column, default in ADDED_COLUMNS.items():  # an export from before these columns
        if column not in frame.columns:
            frame[column] = default
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise AnswersError(f"{path} is not a survey export: no column {', '.join(missing)}")
    for column in FLAGS:
        frame[column] = frame[column].map(lambda v: v is True or str(v).lower() == "true")
    frame["run"] = frame["run"].astype(int)
    frame["hit"] = frame["hit"].astype(int)
    frame["target_position"] = frame["target_position"].map(lambda p: None if p in ("", None) or pd.isna(p)
                                                            else int(p))
    frame["choice"] = frame["choice"].astype(str)
    frame["response_ms"] = pd.to_numeric(frame["response_ms"])
    frame["blur"] = frame["blur"].fillna("").astype(str)
    frame["confidence"] = pd.to_numeric(frame["confidence"].mask(frame["confidence"].astype(str) == ""))
    frame["confidence_scale"] = pd.to_numeric(frame["confidence_scale"]).astype(int)
    return tidy(frame)


def tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """The export's columns in its order, flags as booleans (so that even an empty frame filters),
    ``chose_absent``, and ``measures_skill``: whether the answer is skill evidence (a gold item, or without gold
    one of the worker's 1st, 3rd... answers other than control items, counted in row order, which is the order
    answered), so that the skilled tables leave it out."""
    frame = frame[list(COLUMNS)].copy()
    for column, default in ADDED_COLUMNS.items():  # unset in hand-made tables: as in an export from before them
        if default is not None:
            frame[column] = frame[column].where(frame[column].notna(), default)
    for column in FLAGS:
        frame[column] = frame[column].astype(bool)
    frame["run"] = frame["run"].astype(int)
    frame["chose_absent"] = frame["choice"] == ABSENT_CHOICE
    on_gold = bool(frame["gold"].any())  # gold answers exist exactly when a study has gold items and shows them
    position = (~frame["control"]).astype(int).groupby(frame["worker"], sort=False).cumsum() - 1
    frame["measures_skill"] = [measures_skill(k, gold, on_gold, control)
                               for k, gold, control in zip(position, frame["gold"], frame["control"])]
    frame["measures_skill"] = frame["measures_skill"].astype(bool)
    return frame.reset_index(drop=True)


GALLERY_SQL = text("""
SELECT i.subject, i.model, i.attack, i.countermeasure, i.external_id, img.png AS reconstruction,
       (SELECT fimg.png FROM lineup_face f JOIN lineup l2 ON l2.id = f.lineup_id JOIN image fimg ON fimg.id = f.image_id
        WHERE l2.study_id = s.id AND f.subject = i.subject ORDER BY f.id LIMIT 1) AS photo
FROM item i JOIN study s ON s.id = i.study_id JOIN image img ON img.id = i.image_id
WHERE s.name = :study AND NOT i.is_gold AND i.countermeasure = 'none' AND i.attack IN ('mi-face', 'external')
ORDER BY i.subject, i.model
""")


def reconstruction_gallery(url: str, study: str) -> pd.DataFrame:
    """Each unprotected white-box (or external) reconstruction's PNG beside a real photo of its subject, as the
    study serves them: subject, model, reconstruction, photo (PNG bytes; photo None if no lineup shows one)."""
    engine = read_only_engine(url)
    try:
        with engine.connect() as connection:
            return pd.DataFrame(connection.execute(GALLERY_SQL, {"study": study}).mappings().all())
    finally:
        engine.dispose()


LINEUPS_SQL = text("""
SELECT l.id AS lineup, i.external_id AS item, i.subject, i.model, i.attack, i.countermeasure, i.params,
       l.target_present, l.target_position, i.image_id AS probe_image
FROM lineup l JOIN item i ON i.id = l.item_id JOIN study s ON s.id = i.study_id
WHERE s.name = :study AND NOT i.is_gold
ORDER BY l.id
""")
LINEUP_FACES_SQL = text("""
SELECT f.lineup_id AS lineup, f.position, f.subject, f.image_id AS image
FROM lineup_face f JOIN lineup l ON l.id = f.lineup_id JOIN study s ON s.id = l.study_id
WHERE s.name = :study
ORDER BY f.lineup_id, f.position
""")
STUDY_IMAGES_SQL = text("""
SELECT img.id, img.png FROM image img JOIN study s ON s.id = img.study_id WHERE s.name = :study
""")


def study_lineups(url: str, study: str) -> tuple[pd.DataFrame, dict[int, bytes]]:
    """The study's reconstruction lineups as it serves them: one row per lineup (its item's group, whether and
    where the target is, 0-based, and ``faces``, the image ids left to right), and the PNG of each image id."""
    engine = read_only_engine(url)
    try:
        with engine.connect() as connection:
            lineups = pd.DataFrame(connection.execute(LINEUPS_SQL, {"study": study}).mappings().all())
            faces = pd.DataFrame(connection.execute(LINEUP_FACES_SQL, {"study": study}).mappings().all())
            images = {int(row.id): bytes(row.png) for row in connection.execute(STUDY_IMAGES_SQL, {"study": study})}
    finally:
        engine.dispose()
    if lineups.empty:
        return pd.DataFrame(columns=["lineup", "item", "subject", "model", "attack", "countermeasure", "blur",
                                     "target_present", "target_position", "probe_image", "faces"]), images
    params = lineups.pop("params").map(lambda p: p if isinstance(p, dict) else json.loads(p or "{}"))
    lineups["blur"] = params.map(blur_of)
    lineups["target_present"] = lineups["target_present"].astype(bool)
    order = faces.groupby("lineup")["image"].apply(list)
    lineups["faces"] = lineups["lineup"].map(order)
    return lineups, images
