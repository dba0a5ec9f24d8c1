"""The worker cycle in one process, through the Flask test client: CPU and requests a cycle, and the statements'
plans (BENCHMARKS.md, issue 14). No server, no network: what the code costs, apart from gunicorn and the machine.

    .venv/bin/python bench/bench_cycle_inprocess.py --database sqlite
    PYTHONPATH=/tmp/before .venv/bin/python bench/bench_cycle_inprocess.py      # another revision's survey_app
    .venv/bin/python bench/bench_cycle_inprocess.py --database postgresql --explain --workers 300

A study of the paper authors' 198 reconstructions (as bench_cycle.py makes it) where --workers workers have each
answered 5 lineups; then people arrive one after another and answer as task.js does (the answer asking for the next
page in its response; a server that redirects instead is followed), 3 HITs each, with the done page and "take another
batch" between HITs. Prints this process's CPU time a cycle (the least and the median of --chunks chunks of 150
cycles, after 50 not counted) and the requests a cycle. --explain (PostgreSQL): EXPLAIN ANALYZE of the task page's,
the answer's and the hand-out's statements on that study, with the nodes that read a whole table or hash one.
"""
from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from pathlib import Path

import bench_cycle
from bench_task_page import CSRF, HIDDEN, answered_study
from sqlalchemy import exists, select

import survey_app.hits as hits
from survey_app import create_app
from survey_app.models import Answer, Assignment, Hit, utcnow

CHOICE = b'name="choice"'
EXPLAINED = ("TASK_PAGE", "STORE_FACE", "STORE_FACE_THEN_PAGE", "STORE_FACE_THEN_CLOSE", "CLOSE_FINISHED",
             "ACTIVE_HIT", "RUN_STATE")


class Person:
    """One simulated worker with their own session, answering as task.js does; ``Person.requests`` counts every
    request the people send."""

    names = itertools.count()
    requests = 0

    def __init__(self, app, slug: str) -> None:
        self.client, self.slug, self.hits = app.test_client(), slug, 0
        name = f"p{next(self.names)}"
        page = self.send("GET", f"/s/{slug}/?workerId={name}").data
        self.send("POST", f"/s/{slug}/consent", data={"csrf_token": CSRF.search(page).group(1).decode(),
                                                      "worker_id": name, "consent": "yes"})
        self.page = self.send("GET", f"/s/{slug}/task").data

    def send(self, method: str, path: str, **kwargs):
        Person.requests += 1
        return self.client.open(path, method=method, **kwargs)

    def cycle(self) -> bool:
        """Answer the task shown; False once the person has done their 3 HITs."""
        form = {k.decode(): v.decode() for k, v in HIDDEN.findall(self.page)}
        response = self.send("POST", f"/s/{self.slug}/answer", data={**form, "choice": "1"},
                             headers={"X-Survey-Next": "task"})
        if response.status_code == 303 and not response.headers["Location"].endswith("/done"):
            response = self.send("GET", response.headers["Location"])  # an older server's redirect to the task
        if response.status_code == 200 and CHOICE in response.data:
            self.page = response.data
            return True
        if response.status_code == 303:  # an older server's redirect to the done page
            self.send("GET", response.headers["Location"])
        self.hits += 1
        if self.hits == 3:
            return False
        self.page = self.send("GET", f"/s/{self.slug}/task?more=1").data
        return True


def explain(app, slug: str) -> None:
    engine = app.extensions["survey_engine"]
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.commit()
        token, run_id, worker_id = connection.execute(
            select(Assignment.token, Hit.run_id, Hit.worker_id).join(Hit, Hit.id == Assignment.hit_id)
            .where(~exists().where(Answer.assignment_id == Assignment.id)).limit(1)).first()
        study_id = connection.exec_driver_sql("SELECT id FROM study").scalar()
        now = utcnow()
        params = {"token": token, "position": 0, "worker_id": worker_id, "by_worker": worker_id, "slug": slug,
                  "now": now, "shown": now, "confidence": None, "code": "X", "run_id": run_id, "study_id": study_id}
        for name in EXPLAINED:
            statement = getattr(hits, name)
            compiled = getattr(statement, "statement", statement).compile(dialect=connection.dialect)  # Prepared
            plan = [row[0] for row in connection.exec_driver_sql("EXPLAIN ANALYZE " + str(compiled),
                                                                 compiled.construct_params(params))]
            connection.rollback()  # EXPLAIN ANALYZE runs the statement: store and close nothing
            whole = [line.strip().split("  (")[0] for line in plan if "Seq Scan" in line or "Hash" in line]
            print(f"{name:18s} {plan[-1].strip():28s} {', '.join(whole)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--workers", type=int, default=50, help="workers who answered 5 lineups each beforehand")
    parser.add_argument("--chunks", type=int, default=8)
    parser.add_argument("--explain", action="store_true", help="PostgreSQL: the statements' plans, then stop")
    args = parser.parse_args()
    url, drop = bench_cycle.fresh_database(args.database, Path(tempfile.mkdtemp()))
    try:
        slug = answered_study(url, args.workers)
        app = create_app({"DATABASE_URL": url})
        if args.explain:
            return explain(app, slug)
        person = Person(app, slug)

        def cycle():
            nonlocal person
            if not person.cycle():
                person = Person(app, slug)

        for _ in range(50):
            cycle()
        Person.requests, chunks = 0, []
        for _ in range(args.chunks):
            started = time.process_time()
            for _ in range(150):
                cycle()
            chunks.append((time.process_time() - started) / 150 * 1e6)
        print(f"{args.database}: CPU a cycle {min(chunks):.0f} us least, {statistics.median(chunks):.0f} us median; "
              f"{Person.requests / (150 * args.chunks):.2f} requests a cycle")
    finally:
        drop()


if __name__ == "__main__":
    main()
