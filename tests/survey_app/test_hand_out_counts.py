"""A hand-out weighs each lineup by the tasks of it that a run has handed out (run_lineup, kept by triggers) less the
unanswered ones of expired HITs. After any mix of hand-outs, answers, expiries, closings and deletions, on both
databases, that must equal what it replaced: the run's answers of the lineup plus its tasks still open."""
from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.orm import Session

from survey_app import create_app
from survey_app.db import make_engine
from survey_app.hits import RunState, start_hit
from survey_app.migrate import downgrade, upgrade
from survey_app.models import Answer, Assignment, Hit, Run, RunLineup, Worker, utcnow

from .conftest import new_study

OPERATIONS = st.lists(st.tuples(st.sampled_from(["hand_out", "answer", "expire", "close", "delete_task",
                                                 "delete_hit", "delete_worker"]),
                                st.integers(0, 10 ** 6)), min_size=1, max_size=12)


STUDIES, WORKERS = itertools.count(), itertools.count()  # names never reused: every example shares the database


def counted(db, run_id: int, now) -> dict[int, int]:
    """What a hand-out reads: handed out less gone back to the pool, per lineup (lineups at 0 left out)."""
    state = RunState.read(db.connection(), {"run_id": run_id, "worker_id": 0, "study_id": 0, "now": now}, twins=False)
    return {lineup_id: n for lineup_id, n in state.load.items() if n}


def by_definition(db, run_id: int, now) -> dict[int, int]:
    """The lineup's answers in the run, and its unanswered tasks in HITs neither finished nor expired."""
    answered = exists().where(Answer.assignment_id == Assignment.id)
    load: dict[int, int] = dict(db.execute(select(Answer.lineup_id, func.count()).where(Answer.run_id == run_id)
                                           .group_by(Answer.lineup_id)).all())
    for lineup_id, n in db.execute(select(Assignment.lineup_id, func.count()).join(Hit, Hit.id == Assignment.hit_id)
                                   .where(Hit.run_id == run_id, Hit.completed_at.is_(None), Hit.expires_at > now,
                                          ~answered).group_by(Assignment.lineup_id)):
        load[lineup_id] = load.get(lineup_id, 0) + n
    return {lineup_id: n for lineup_id, n in load.items() if n}


def handed_rows(db) -> dict[tuple[int, int], int]:
    return {(r.run_id, r.lineup_id): r.handed for r in db.execute(select(RunLineup)).scalars() if r.handed}


def assignments_by_run(db) -> dict[tuple[int, int], int]:
    return {(run_id, lineup_id): n for run_id, lineup_id, n in db.execute(
        select(Hit.run_id, Assignment.lineup_id, func.count()).join(Hit, Hit.id == Assignment.hit_id)
        .group_by(Hit.run_id, Assignment.lineup_id))}


def apply(db, study, operation: str, pick: int, now) -> None:
    hits = db.scalars(select(Hit).order_by(Hit.id)).all()
    hit = hits[pick % len(hits)] if hits else None
    if operation == "hand_out" or hit is None:
        worker = Worker(study_id=study.id, external_id=f"w{next(WORKERS)}")
        db.add(worker)
        db.commit()
        start_hit(db, study, worker, now)
        db.commit()
    elif operation == "answer":
        task = db.execute(select(Assignment).where(Assignment.hit_id == hit.id,
                                                   ~exists().where(Answer.assignment_id == Assignment.id))
                          .order_by(Assignment.position).limit(1)).scalar()
        if task is not None:
            db.add(Answer(assignment_id=task.id, run_id=hit.run_id, worker_id=hit.worker_id, lineup_id=task.lineup_id,
                          choice=0, correct=False, shown_at=now, answered_at=now))
    elif operation == "expire":
        db.execute(update(Hit).where(Hit.id == hit.id).values(expires_at=now - timedelta(seconds=1)))
    elif operation == "close":  # as CLOSE_HIT: only a HIT with every task answered
        unanswered = select(Assignment.id).where(Assignment.hit_id == Hit.id,
                                                 ~exists().where(Answer.assignment_id == Assignment.id))
        db.execute(update(Hit).where(Hit.id == hit.id, ~unanswered.exists()).values(completed_at=now))
    elif operation == "delete_task":
        db.execute(delete(Assignment).where(Assignment.id == select(func.min(Assignment.id))
                                            .where(Assignment.hit_id == hit.id).scalar_subquery()))
    elif operation == "delete_hit":
        db.execute(delete(Hit).where(Hit.id == hit.id))
    else:
        db.execute(delete(Worker).where(Worker.id == hit.worker_id))
    db.commit()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_the_counts_a_hand_out_reads_equal_answers_plus_open_tasks(app, bundle_dir, db, operations):
    study = db.merge(new_study(app, bundle_dir, name=f"s{next(STUDIES)}", hit_size=3,
                               gold_per_hit=0, open_runs=(1, 2), multiple_runs_per_worker=True))
    now = utcnow()
    for operation, pick in operations:
        apply(db, study, operation, pick, now)
        assert handed_rows(db) == assignments_by_run(db)
        for run_id in db.scalars(select(Run.id).where(Run.study_id == study.id)):
            assert counted(db, run_id, now) == by_definition(db, run_id, now), operation


def test_a_study_migrated_with_hits_counts_them(empty_database, bundle_dir):
    """Upgrading fills run_lineup from the HITs already there (here: made at 0005, then upgraded)."""
    upgrade(empty_database)
    app = create_app({"DATABASE_URL": empty_database, "TESTING": True, "SECRET_KEY": "k"})
    study = new_study(app, bundle_dir, hit_size=4, gold_per_hit=0)
    engine = make_engine(empty_database)
    with Session(engine) as db:
        for n in range(3):
            worker = Worker(study_id=study.id, external_id=f"w{n}")
            db.add(worker)
            db.flush()
            start_hit(db, db.merge(study), worker, utcnow())
        db.commit()
        expected = assignments_by_run(db)
    engine.dispose()
    assert sum(expected.values()) == 12
    downgrade(empty_database, "0005")
    upgrade(empty_database)
    engine = make_engine(empty_database)
    with Session(engine) as db:
        assert handed_rows(db) == expected
    engine.dispose()
