"""Handing out HITs and taking answers: least-answered lineups first, never twice to one worker in a run,
unfinished work back to the pool at expiry, and one stored answer however often a form is submitted."""
from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .models import ABSENT, Answer, Assignment, Hit, Item, Lineup, LineupFace, Run, Study, Worker
from .settings import StudySettings


class AnswerRejected(Exception):
    """A submission that stores nothing; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Stored:
    duplicate: bool
    hit_completed: bool


def settings_of(study: Study) -> StudySettings:
    known = {k: v for k, v in study.settings.items() if k in StudySettings.__dataclass_fields__}
    return StudySettings(**known)


def active_hit(db: Session, worker: Worker, now: datetime) -> Hit | None:
    return db.scalars(select(Hit).where(Hit.worker_id == worker.id, Hit.completed_at.is_(None),
                                        Hit.expires_at > now).order_by(Hit.id.desc()).limit(1)).first()


def unanswered(db: Session, hit: Hit) -> list[Assignment]:
    answered = exists().where(Answer.assignment_id == Assignment.id)
    return list(db.scalars(select(Assignment).where(Assignment.hit_id == hit.id, ~answered)
                           .order_by(Assignment.position)))


def complete_if_done(db: Session, hit: Hit, now: datetime) -> bool:
    if hit.completed_at is None and not unanswered(db, hit):
        hit.completed_at = now
        hit.completion_code = f"MI-{secrets.token_hex(3).upper()}-{secrets.token_hex(3).upper()}"
    return hit.completed_at is not None


def _runs_for(db: Session, study: Study, worker: Worker, settings: StudySettings) -> list[Run]:
    open_runs = list(db.scalars(select(Run).where(Run.study_id == study.id, Run.status == "open")
                                .order_by(Run.number)))
    if settings.multiple_runs_per_worker:
        return open_runs
    taken = set(db.scalars(select(Hit.run_id).where(Hit.worker_id == worker.id)))
    if taken:
        return [r for r in open_runs if r.id in taken]
    return open_runs


def start_hit(db: Session, study: Study, worker: Worker, now: datetime) -> Hit | None:
    """A new HIT in the first open run with work for this worker, or None when there is none."""
    settings = settings_of(study)
    for run in _runs_for(db, study, worker, settings):
        # Serialise HIT creation per run: PostgreSQL locks the run's row; on SQLite the transaction
        # already holds the write lock (BEGIN IMMEDIATE).
        db.execute(select(Run.id).where(Run.id == run.id).with_for_update())
        picked = _pick_lineups(db, study, run, worker, settings, now)
        if not picked:
            continue
        hit = Hit(run_id=run.id, worker_id=worker.id, created_at=now,
                  expires_at=now + timedelta(minutes=settings.hit_minutes))
        db.add(hit)
        db.flush()
        for position, lineup_id in enumerate(picked):
            db.add(Assignment(hit_id=hit.id, lineup_id=lineup_id, position=position, token=secrets.token_urlsafe(16)))
        db.flush()
        return hit
    return None


def _pick_lineups(db: Session, study: Study, run: Run, worker: Worker, settings: StudySettings,
                  now: datetime) -> list[int]:
    lineups = db.execute(select(Lineup.id, Item.is_gold).join(Item, Item.id == Lineup.item_id)
                         .where(Lineup.study_id == study.id)).all()
    seen = set(db.scalars(select(Assignment.lineup_id).join(Hit, Hit.id == Assignment.hit_id)
                          .where(Hit.run_id == run.id, Hit.worker_id == worker.id)))
    answered = dict(db.execute(select(Answer.lineup_id, func.count()).where(Answer.run_id == run.id)
                               .group_by(Answer.lineup_id)).all())
    pending = dict(db.execute(
        select(Assignment.lineup_id, func.count()).join(Hit, Hit.id == Assignment.hit_id)
        .where(Hit.run_id == run.id, Hit.completed_at.is_(None), Hit.expires_at > now,
               ~exists().where(Answer.assignment_id == Assignment.id))
        .group_by(Assignment.lineup_id)).all())
    rng = random.Random()
    load = {lid: answered.get(lid, 0) + pending.get(lid, 0) for lid, _ in lineups}
    free = sorted((lid for lid, gold in lineups if not gold and lid not in seen
                   and load[lid] < settings.answers_per_item), key=lambda lid: (load[lid], rng.random()))
    picked = free[: settings.hit_size]
    if not picked:
        return []
    gold = [lid for lid, is_gold in lineups if is_gold and lid not in seen]
    rng.shuffle(gold)
    picked += gold[: settings.gold_per_hit]
    rng.shuffle(picked)
    return picked


def show(assignment: Assignment, now: datetime) -> None:
    """Start the server-side clock the first time a lineup is shown; a reload keeps the first time."""
    if assignment.shown_at is None:
        assignment.shown_at = now


def record_answer(db: Session, worker: Worker, assignment_token: str, choice: str, now: datetime) -> Stored:
    row = db.execute(select(Assignment, Hit, Run, Lineup)
                     .join(Hit, Hit.id == Assignment.hit_id).join(Run, Run.id == Hit.run_id)
                     .join(Lineup, Lineup.id == Assignment.lineup_id)
                     .where(Assignment.token == assignment_token)).first()
    if row is None or row.Hit.worker_id != worker.id:
        raise AnswerRejected(404, "no such task for this worker")
    assignment, hit, run, lineup = row
    if worker.blocked:
        raise AnswerRejected(403, "this worker has been blocked from the study")
    if db.scalar(select(Answer.id).where(Answer.assignment_id == assignment.id)) is not None:
        return Stored(duplicate=True, hit_completed=hit.completed_at is not None)
    if run.status != "open":
        raise AnswerRejected(409, f"run {run.number} is closed; answers are no longer taken")
    if hit.expires_at <= now:
        raise AnswerRejected(409, "this HIT expired before the answer arrived; its lineups went back to the pool")
    if choice == "absent":
        if not settings_of(run.study).allow_absent:
            raise AnswerRejected(400, '"not in this lineup" is not an answer this study offers')
        position = ABSENT
    else:
        position = db.scalar(select(LineupFace.position).where(LineupFace.lineup_id == lineup.id,
                                                               LineupFace.token == choice))
        if position is None:
            raise AnswerRejected(400, "unknown choice: pick one of the five faces shown")
    correct = position == (lineup.target_position if lineup.target_present else ABSENT)
    shown_at = assignment.shown_at or hit.created_at
    answer = Answer(assignment_id=assignment.id, run_id=run.id, worker_id=worker.id, lineup_id=lineup.id,
                    choice=position, correct=correct, shown_at=shown_at, answered_at=now,
                    response_ms=max(0, int((now - shown_at).total_seconds() * 1000)))
    try:
        with db.begin_nested():
            db.add(answer)
    except IntegrityError:  # the same form, submitted twice at once: the other request stored it
        return Stored(duplicate=True, hit_completed=False)
    return Stored(duplicate=False, hit_completed=complete_if_done(db, hit, now))
