"""The task page's one statement, against the same statement of another revision (BENCHMARKS.md, issue 14).

    .venv/bin/python bench/bench_task_page.py --database sqlite --against af60802
    .venv/bin/python bench/bench_task_page.py --database postgresql --against af60802

A study of the paper authors' 198 reconstructions (as bench_cycle.py makes it), 300 workers who each answered 5
lineups through the Flask test client, then the worker in the middle's task page: both statements must return the
same rows; each runs --executions times on one connection, alternated for --rounds rounds, and the CPU time of this
process per execution is printed (on SQLite the database's own work included, on PostgreSQL the driver's only).
"""
from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import time
from pathlib import Path

import bench_cycle

import survey_app.hits as hits
from survey_app import create_app
from survey_app import db as database
from survey_app.models import utcnow

CSRF = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')
HIDDEN = re.compile(rb'<input type="hidden" name="([^"]+)" value="([^"]*)"')
ROOT = Path(__file__).resolve().parent.parent


def statement_of(revision: str):
    """TASK_PAGE as ``revision``'s survey_app/hits.py builds it (its _task_page, run with today's models)."""
    source = subprocess.run(["git", "show", f"{revision}:survey_app/hits.py"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    function = source[source.index("def _task_page("):source.index("TASK_PAGE = _task_page()")]
    namespace = dict(vars(hits))
    exec(function, namespace)  # noqa: S102 (our own code, from our own history)
    return namespace["_task_page"]()


def answered_study(url: str, workers: int) -> str:
    slug = bench_cycle.new_study(url, 10_000)
    app = create_app({"DATABASE_URL": url})
    for i in range(workers):
        client = app.test_client()
        page = client.get(f"/s/{slug}/?workerId=w{i}").data
        client.post(f"/s/{slug}/consent", data={"csrf_token": CSRF.search(page).group(1).decode(),
                                                "worker_id": f"w{i}", "consent": "yes"})
        for _ in range(5):
            form = {k.decode(): v.decode() for k, v in HIDDEN.findall(client.get(f"/s/{slug}/task").data)}
            client.post(f"/s/{slug}/answer", data={**form, "choice": "1"})
    return slug


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--against", default="af60802", help="the revision whose statement to compare with")
    parser.add_argument("--workers", type=int, default=300)
    parser.add_argument("--executions", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url, drop = bench_cycle.fresh_database(args.database, Path(tempfile.mkdtemp()))
    try:
        slug = answered_study(url, args.workers)
        statements = {args.against: statement_of(args.against), "this tree": hits.TASK_PAGE}
        app = create_app({"DATABASE_URL": url})
        with app.app_context(), database.reader().connect() as connection:
            params = {"worker_id": args.workers // 2, "slug": slug, "now": utcnow()}
            results = [[tuple(row) for row in connection.execute(s, params)] for s in statements.values()]
            assert results[0] == results[1] and results[0], "the two statements disagree"
            for round_ in range(1, args.rounds + 1):
                for name, statement in statements.items():
                    started = time.process_time()
                    for _ in range(args.executions):
                        connection.execute(statement, params).all()
                    spent = (time.process_time() - started) / args.executions
                    print(f"{args.database} round {round_} {name}: {spent * 1e6:.0f} us CPU per execution")
    finally:
        drop()


if __name__ == "__main__":
    main()
