"""The statements of every task page, every answer and every hand-out read the rows of the worker's own HITs, not
rows that grow with the study: PostgreSQL's plans at a prepared statement's first run and at its seventh (by then it
may have settled on a generic plan; a statement planned each run is never prepared), on tables with statistics and
without (a new study's, or a server without autovacuum), with thousands of other workers' HITs in the same run, a
tenth of them open. Each plan is run (EXPLAIN ANALYZE, rolled back) and every row it touched in ``hit`` is counted,
kept or filtered out. Before migration 0007, the answer's look-up of its HIT by its task (hits._HIT_OF_TOKEN) and the
hand-out's statement planned each run, such plans read every HIT of the run, or every open one."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from psycopg import sql
from sqlalchemy import insert, select

from survey_app import hits
from survey_app.db import make_engine
from survey_app.models import Assignment, Hit, Worker, utcnow

from .conftest import join, new_study, task_form

OTHERS = 3000
STATEMENTS = ("TASK_PAGE", "ACTIVE_HIT", "STORE_FACE", "STORE_FACE_THEN_PAGE", "STORE_FACE_THEN_CLOSE",
              "CLOSE_FINISHED", "OPEN_RUNS", "RUN_STATE", "RUN_STATE_WITH_TWINS")


def hit_rows_read(plan: dict) -> int:
    """Rows of ``hit`` a plan node and the nodes under it (subplans included) returned or filtered out."""
    read = 0
    if plan.get("Relation Name") == "hit":
        read += (plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
                 + plan.get("Rows Removed by Index Recheck", 0)) * plan.get("Actual Loops", 1)
    return read + sum(hit_rows_read(child) for child in plan.get("Plans", []))


def explained(connection, statement, params: dict, runs_before: int) -> dict:
    """The plan PostgreSQL runs for ``statement`` (a Core statement) with ``params`` once it has run ``runs_before``
    times as a prepared statement, as psycopg runs one (PREPARE, then EXECUTE): planned for its values at first,
    then, from the sixth run, with the generic plan if PostgreSQL finds that no dearer. Every run is rolled back."""
    compiled = statement.compile(dialect=connection.dialect)
    names: list[str] = []

    def placeholder(match) -> str:
        names.append(match.group(1))
        return f"${len(names)}"

    text = re.sub(r"%\((\w+)\)s", placeholder, str(compiled))
    values = compiled.construct_params(params)
    arguments = sql.SQL(", ").join(sql.Literal(values[name]) for name in names)
    driver = connection.connection.driver_connection
    driver.prepare_threshold = None  # psycopg's own prepared statements: a rollback would DEALLOCATE ALL, ours too
    with driver.cursor() as cursor:
        cursor.execute(f"PREPARE probe AS {text}")
        for _ in range(runs_before):
            cursor.execute(sql.SQL("EXECUTE probe ({})").format(arguments))
            driver.rollback()
        cursor.execute(sql.SQL("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probe ({})").format(arguments))
        plan = cursor.fetchone()[0][0]["Plan"]
        driver.rollback()  # the statement's writes
        cursor.execute("DEALLOCATE probe")  # a prepared statement outlives its transaction
        driver.rollback()
    return plan


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
@pytest.mark.parametrize("analyzed", [False, True], ids=["no statistics", "analyzed"])
@pytest.mark.parametrize("runs_before", [0, 6], ids=["first run", "seventh run"])
def test_a_page_and_an_answer_read_the_workers_own_hits_however_many_the_run_has(app, bundle_dir, db, runs_before,
                                                                                  analyzed):
    study = new_study(app, bundle_dir)
    client = app.test_client()
    join(client, study, "W1")
    _, token, _ = task_form(client.get(f"/s/{study.slug}/task").text)
    worker_id, run_id = db.execute(select(Hit.worker_id, Hit.run_id).join(Assignment, Assignment.hit_id == Hit.id)
                                   .where(Assignment.token == token)).one()
    now = utcnow()
    others = db.scalars(insert(Worker).returning(Worker.id), [
        {"study_id": study.id, "external_id": f"other-{n}", "consented_at": now, "blocked": False}
        for n in range(OTHERS)]).all()
    # As in a study under way: most HITs finished, the others open (a tenth here, hundreds of workers at work).
    db.execute(insert(Hit), [{"run_id": run_id, "worker_id": other, "created_at": now - timedelta(minutes=30),
                              "expires_at": now + timedelta(minutes=30),
                              "completed_at": None if n % 10 == 0 else now - timedelta(minutes=n % 29),
                              "completion_code": None if n % 10 == 0 else f"MI-{n}"}
                             for n, other in enumerate(others)])
    db.commit()
    engine = app.extensions["survey_engine"]
    if analyzed:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
    params = {"token": token, "position": 0, "worker_id": worker_id, "by_worker": worker_id, "slug": study.slug,
              "now": now, "shown": now - timedelta(seconds=5), "confidence": None, "code": "MI-TEST",
              "run_id": run_id, "study_id": study.id}
    read = {}
    probing = make_engine(app.config["DATABASE_URL"])  # a new connection: none of psycopg's own prepared statements
    try:
        with probing.connect() as connection:
            for name in STATEMENTS:
                statement = getattr(hits, name)
                core = getattr(statement, "statement", statement)  # a Prepared one's Core statement
                runs = 0 if getattr(statement, "planned_each_run", False) else runs_before  # never prepared
                read[name] = hit_rows_read(explained(connection, core, params, runs))
    finally:
        probing.dispose()
    # The worker has one HIT; a statement may touch it a few times (the check, the page, the close).
    assert max(read.values()) <= 5, f"rows of hit read with {OTHERS} other HITs in the run: {read}"
    assert read["STORE_FACE_THEN_PAGE"] >= 1  # the plans were read: the answer does look at its HIT
