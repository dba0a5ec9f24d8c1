"""Every answer of a study as flat rows, for CSV and JSON: what the analysis reads."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select
from sqlalchemy.orm import Session

from mi_harness.answers import ABSENT_CHOICE, ADDED_COLUMNS, COLUMNS

from .models import ABSENT, Answer, Assignment, Item, Lineup, Run, Study, Worker
from .studies import worker_table


def answer_rows(db: Session, study: Study) -> list[dict]:
    skilled = {w["worker_id"]: w["skilled"] for w in worker_table(db, study)}
    settings = study.settings or {}
    rows = db.execute(
        select(Answer, Run.number, Worker.external_id, Assignment.hit_id, Item, Lineup)
        .join(Run, Run.id == Answer.run_id).join(Worker, Worker.id == Answer.worker_id)
        .join(Assignment, Assignment.id == Answer.assignment_id)
        .join(Lineup, Lineup.id == Answer.lineup_id).join(Item, Item.id == Lineup.item_id)
        .where(Run.study_id == study.id).order_by(Answer.id)).all()
    out = []
    for answer, run, external_id, hit_id, item, lineup in rows:
        out.append({
            "study": study.name, "run": run, "worker": external_id, "hit": hit_id,
            "item": item.external_id, "subject": item.subject, "model": item.model, "attack": item.attack,
            "countermeasure": item.countermeasure, "blur": (item.params or {}).get("blur") or "",
            "gold": item.is_gold, "control": item.is_control,
            "control_of": (item.params or {}).get("control_of") or "", "target_present": lineup.target_present,
            "target_position": lineup.target_position + 1 if lineup.target_present else None,
            "photo": lineup.photo or "", "photo_role": lineup.photo_role or "",
            "filler_policy": settings.get("filler_policy", ADDED_COLUMNS["filler_policy"]),
            "choice": ABSENT_CHOICE if answer.choice == ABSENT else answer.choice + 1,
            "correct": answer.correct, "confidence": answer.confidence,
            "confidence_scale": settings.get("confidence_scale", ADDED_COLUMNS["confidence_scale"]),
            "skilled": skilled.get(answer.worker_id, False),
            "response_ms": response_ms(answer),
            "shown_at": answer.shown_at.isoformat(timespec="milliseconds") + "Z",
            "answered_at": answer.answered_at.isoformat(timespec="milliseconds") + "Z"})
    return out


def response_ms(answer: Answer) -> int:
    return round((answer.answered_at - answer.shown_at).total_seconds() * 1000)


def to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buffer.getvalue()
