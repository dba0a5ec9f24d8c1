"""Every answer of a study as flat rows, for CSV and JSON: what the analysis reads; and the payments export: each
worker's HITs with the platform's ids, codes, answers, verdicts and a suggested approve or reject."""
from __future__ import annotations

import csv
import io

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mi_harness.answers import ABSENT_CHOICE, ADDED_COLUMNS, COLUMNS

from .hits import settings_of
from .models import ABSENT, Answer, Assignment, Hit, Item, Lineup, Run, Study, Worker
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


PAYMENT_COLUMNS = ["worker", "platform", "platform_assignment", "platform_hit", "hit", "run", "started_at",
                   "completed_at", "completion_code", "answers", "tasks", "worker_answers", "gold_answers",
                   "gold_correct", "skilled", "blocked", "suggestion", "reason"]
"""One CSV row per HIT (what a platform approves or rejects), with its worker's verdicts."""


GOLD_TO_JUDGE = 3
"""Gold answers a worker needs before the payments export suggests rejecting them for their gold answers."""


def suggest(completed: bool, answered: int, tasks: int, worker: dict, chance: float) -> tuple[str, str]:
    """Approve or reject one HIT, and why. Pay follows effort, not skill: a finished HIT is approved unless its
    worker was blocked, or answered at least GOLD_TO_JUDGE gold items (real photos of someone in the lineup, if
    degraded like the reconstructions) and got no more right than picking at random would (``chance``: one in the
    number of choices), the sign of answering without looking. Whether the worker is skilled is reported, never a
    reason: a hard study must not cost honest workers their pay."""
    if not completed:
        return "reject", f"the batch was not finished ({answered} of {tasks} tasks answered)"
    if worker["blocked"]:
        return "reject", "the worker is blocked from the study"
    gold, right = worker["gold_answers"], worker["gold_correct"]
    if gold >= GOLD_TO_JUDGE and right / gold <= chance:
        return "reject", f"gold items: {right} of {gold} right, no better than chance ({chance:.0%})"
    if gold:
        return "approve", f"finished; gold items: {right} of {gold} right"
    return "approve", "finished; no gold item answered"


def payment_rows(db: Session, study: Study) -> list[dict]:
    """Per worker (worker_table's verdicts: gold answers, skilled), their HITs with the platform's ids, completion
    codes, answers and a suggested approve or reject (``suggest``)."""
    chance = 1 / (5 + settings_of(study).allow_absent)
    workers = {w["worker_id"]: w for w in worker_table(db, study)}
    answers: dict[int, list[dict]] = {}
    for hit_id, item, gold, choice, correct, confidence in db.execute(
            select(Assignment.hit_id, Item.external_id, Item.is_gold, Answer.choice, Answer.correct, Answer.confidence)
            .join(Answer, Answer.assignment_id == Assignment.id).join(Lineup, Lineup.id == Answer.lineup_id)
            .join(Item, Item.id == Lineup.item_id).join(Run, Run.id == Answer.run_id)
            .where(Run.study_id == study.id).order_by(Answer.id)):
        answers.setdefault(hit_id, []).append({
            "item": item, "gold": gold, "choice": ABSENT_CHOICE if choice == ABSENT else choice + 1,
            "correct": correct, "confidence": confidence})
    tasks = dict(db.execute(select(Assignment.hit_id, func.count()).join(Hit, Hit.id == Assignment.hit_id)
                            .join(Run, Run.id == Hit.run_id).where(Run.study_id == study.id)
                            .group_by(Assignment.hit_id)).all())
    out = {}
    for hit, run in db.execute(select(Hit, Run.number).join(Run, Run.id == Hit.run_id)
                               .where(Run.study_id == study.id).order_by(Hit.worker_id, Hit.id)):
        worker = workers[hit.worker_id]
        given = answers.get(hit.id, [])
        suggestion, reason = suggest(hit.completion_code is not None, len(given), tasks.get(hit.id, 0), worker,
                                     chance)
        entry = out.setdefault(hit.worker_id, {
            "worker": worker["worker"], "answers": worker["tasks"], "gold_answers": worker["gold_answers"],
            "gold_correct": worker["gold_correct"], "skilled": worker["skilled"], "blocked": worker["blocked"],
            "hits": []})
        entry["hits"].append({
            "hit": hit.id, "run": run, "platform": hit.platform or "lab",
            "platform_assignment": hit.platform_assignment, "platform_hit": hit.platform_hit,
            "started_at": _iso(hit.created_at), "completed_at": _iso(hit.completed_at),
            "completion_code": hit.completion_code, "tasks": tasks.get(hit.id, 0), "answers": given,
            "suggestion": suggestion, "reason": reason})
    return list(out.values())


def payments_csv(workers: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=PAYMENT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for worker in workers:
        for hit in worker["hits"]:
            row = {**hit, "worker": worker["worker"], "answers": len(hit["answers"]),
                   "worker_answers": worker["answers"], "gold_answers": worker["gold_answers"],
                   "gold_correct": worker["gold_correct"], "skilled": worker["skilled"], "blocked": worker["blocked"]}
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in PAYMENT_COLUMNS})
    return buffer.getvalue()


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None
