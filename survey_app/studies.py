"""What admins do to a study, shared by the admin pages and the JSON API."""
from __future__ import annotations

import statistics

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from mi_harness.answers import is_skilled, skill_evidence, skill_measured_on_gold

from .hits import settings_of
from .models import Answer, Hit, Item, Lineup, Run, Study, Worker, utcnow
from .settings import SettingsError, StudySettings


class StudyActionError(ValueError):
    pass


def summary(db: Session, study: Study) -> dict:
    settings = settings_of(study)
    n_items = db.scalar(select(func.count()).select_from(Item).where(Item.study_id == study.id, ~Item.is_gold))
    n_gold = db.scalar(select(func.count()).select_from(Item).where(Item.study_id == study.id, Item.is_gold))
    per_run = dict(db.execute(select(Answer.run_id, func.count()).join(Run, Run.id == Answer.run_id)
                              .join(Lineup, Lineup.id == Answer.lineup_id).join(Item, Item.id == Lineup.item_id)
                              .where(Run.study_id == study.id, ~Item.is_gold).group_by(Answer.run_id)).all())
    runs = [{"number": r.number, "status": r.status, "answers": per_run.get(r.id, 0),
             "needed": n_items * settings.answers_per_item,
             "opened_at": _iso(r.opened_at), "closed_at": _iso(r.closed_at)} for r in study.runs]
    workers = db.scalar(select(func.count()).select_from(Worker).where(Worker.study_id == study.id))
    return {"id": study.id, "name": study.name, "link": f"/s/{study.slug}/", "source": study.source,
            "created_at": _iso(study.created_at), "items": n_items, "gold_items": n_gold, "workers": workers,
            "settings": study.settings, "runs": runs}


def item_progress(db: Session, study: Study) -> list[dict]:
    """Answers per item and run, least answered first."""
    counts = {}
    for item_id, number, n in db.execute(
            select(Item.id, Run.number, func.count()).join(Lineup, Lineup.item_id == Item.id)
            .join(Answer, Answer.lineup_id == Lineup.id).join(Run, Run.id == Answer.run_id)
            .where(Item.study_id == study.id).group_by(Item.id, Run.number)):
        counts.setdefault(item_id, {})[number] = n
    rows = []
    for item in db.scalars(select(Item).where(Item.study_id == study.id).order_by(Item.external_id)):
        by_run = counts.get(item.id, {})
        rows.append({"item": item.external_id, "model": item.model, "attack": item.attack,
                     "countermeasure": item.countermeasure, "gold": item.is_gold, "control": item.is_control,
                     "answers": {str(r.number): by_run.get(r.number, 0) for r in study.runs}})
    return sorted(rows, key=lambda r: (r["gold"], sum(r["answers"].values()), r["item"]))


def set_run_status(db: Session, study: Study, number: int, status: str) -> Run:
    run = db.scalar(select(Run).where(Run.study_id == study.id, Run.number == number))
    if run is None:
        raise StudyActionError(f"the study has no run {number} (it has {len(study.runs)})")
    if status not in ("open", "closed"):
        raise StudyActionError(f"a run can be opened or closed, not {status!r}")
    if status == "open" and run.status == "closed":
        run.closed_at = None
    run.status = status
    if status == "open":
        run.opened_at = run.opened_at or utcnow()
    else:
        run.closed_at = utcnow()
    return run


RECORDED_AT_CREATION = ("screening", "display", "fillers")
"""Keys of a study's settings that record how it was made (importer.py); no settings change touches them."""


def configure(db: Session, study: Study, changes: dict) -> StudySettings:
    try:
        settings = StudySettings.from_mapping(changes, base=settings_of(study), creating=False)
    except SettingsError as exc:
        raise StudyActionError(str(exc)) from None
    has_gold = db.scalar(select(func.count()).select_from(Item).where(Item.study_id == study.id, Item.is_gold)) > 0
    kept = {key: study.settings[key] for key in RECORDED_AT_CREATION if key in study.settings}
    study.settings = {**settings.as_dict(), "skilled_definition": settings.skilled_definition(has_gold), **kept}
    return settings


def worker_table(db: Session, study: Study) -> list[dict]:
    """Each worker's tasks, accuracy and skilled flag, by the study's recorded definition."""
    settings = settings_of(study)
    has_gold = db.scalar(select(func.count()).select_from(Item).where(Item.study_id == study.id, Item.is_gold)) > 0
    on_gold = skill_measured_on_gold(has_gold, settings.gold_per_hit)
    rows = db.execute(
        select(Worker, func.count(Answer.id),
               func.coalesce(func.sum(case((Answer.correct, 1), else_=0)), 0),
               func.coalesce(func.sum(case((Item.is_gold, 1), else_=0)), 0),
               func.coalesce(func.sum(case(((Item.is_gold & Answer.correct), 1), else_=0)), 0),
               func.count(func.distinct(Answer.run_id)))
        .outerjoin(Answer, Answer.worker_id == Worker.id).outerjoin(Lineup, Lineup.id == Answer.lineup_id)
        .outerjoin(Item, Item.id == Lineup.item_id)
        .where(Worker.study_id == study.id).group_by(Worker.id).order_by(Worker.id)).all()
    times: dict[int, list[float]] = {}
    answers: dict[int, list[tuple[bool, bool, bool]]] = {}  # (gold, correct, control) in the order answered
    for worker_id, shown, answered, gold, correct, control in db.execute(
            select(Answer.worker_id, Answer.shown_at, Answer.answered_at, Item.is_gold, Answer.correct,
                   Item.is_control)
            .join(Worker).join(Lineup, Lineup.id == Answer.lineup_id).join(Item, Item.id == Lineup.item_id)
            .where(Worker.study_id == study.id).order_by(Answer.id)):
        times.setdefault(worker_id, []).append((answered - shown).total_seconds())
        answers.setdefault(worker_id, []).append((gold, correct, control))
    table = []
    for worker, tasks, correct, gold, gold_correct, runs in rows:
        evidence = answers.get(worker.id, [])
        measured, right = skill_evidence([g for g, _, _ in evidence], [c for _, c, _ in evidence], on_gold,
                                         [k for _, _, k in evidence])
        accuracy = right / measured if measured else None
        table.append({"worker": worker.external_id, "worker_id": worker.id, "blocked": worker.blocked,
                      "tasks": tasks, "correct": correct, "gold_answers": gold, "gold_correct": gold_correct,
                      "accuracy": accuracy, "accuracy_on": "gold items" if on_gold else "every other answer",
                      "skilled": is_skilled(tasks, measured, right, settings.skilled_min_tasks,
                                            settings.skilled_min_accuracy),
                      "runs": runs,
                      "median_response_s": statistics.median(times[worker.id]) if worker.id in times else None})
    return table


def set_blocked(db: Session, study: Study, worker_id: int, blocked: bool) -> Worker:
    worker = db.get(Worker, worker_id)
    if worker is None or worker.study_id != study.id:
        raise StudyActionError(f"the study has no worker {worker_id}")
    worker.blocked = blocked
    if blocked:  # their unfinished lineups go back to the pool now
        for hit in db.scalars(select(Hit).where(Hit.worker_id == worker.id, Hit.completed_at.is_(None))):
            hit.expires_at = min(hit.expires_at, utcnow())
    return worker


def _iso(value) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value else None
