"""Answer submissions per second against `mi-harness serve`, on SQLite and PostgreSQL (BENCHMARKS.md).

    .venv/bin/python bench/bench_survey.py --repeats 3

Each repeat, for each database: a fresh database at the head migration; a study made from the paper authors'
reconstructions (../shared/data/paper_reconstructions, final images); `mi-harness serve` started as a user would;
64 workers join through the real pages (consent, then a HIT of --hit-size lineups each). Then wrk (Debian's
package) with 64 connections and no think time:

1. the same server's bare /hello endpoint for --seconds: the ceiling;
2. every one of the workers' tasks answered exactly once (POST /s/<study>/answer with the worker's cookie and
   CSRF token), as fast as the server takes them.

After each run the answers are counted in the database: every task must have exactly one, and every
submission must have been answered 303 (stored). Results: bench/results/survey.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import requests
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from survey_app.db import make_engine
from survey_app.importer import create_from_source
from survey_app.migrate import upgrade
from survey_app.models import Answer, Assignment, Hit, LineupFace, Worker
from survey_app.studies import set_run_status

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
PAPER = REPO.parent / "shared" / "data" / "paper_reconstructions"
POSTGRES = os.environ.get("MI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
CONNECTIONS = 64


def fresh_database(kind: str, workdir: Path) -> tuple[str, callable]:
    if kind == "sqlite":
        return f"sqlite:///{workdir / f'bench-{secrets.token_hex(4)}.db'}", lambda: None
    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))

    def drop():
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()
    return f"{POSTGRES}?options=-csearch_path%3D{schema}", drop


def start_server(url: str, port: int, workers: int, threads: int) -> subprocess.Popen:
    script = Path(sys.executable).with_name("mi-harness")
    process = subprocess.Popen([str(script), "serve", "--database", url, "--bind", f"127.0.0.1:{port}",
                                "--workers", str(workers), "--threads", str(threads)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        try:
            if requests.get(f"http://127.0.0.1:{port}/hello", timeout=1).ok:
                return process
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not start: {process.stderr.read()}")


def join_workers(base: str, slug: str, n: int) -> list[str]:
    """n workers through consent to their first task page; their cookies and CSRF tokens."""
    sessions = []
    for k in range(n):
        session = requests.Session()
        page = session.get(f"{base}/s/{slug}/?workerId=BENCH{k:03d}")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        session.post(f"{base}/s/{slug}/consent", data={"csrf_token": csrf, "worker_id": f"BENCH{k:03d}",
                                                       "consent": "yes"})
        task = session.get(f"{base}/s/{slug}/task")
        assert "Task 1 of" in task.text, task.text[:300]
        cookie = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
        sessions.append((f"BENCH{k:03d}", cookie, re.search(r'name="csrf_token" value="([^"]+)"', task.text).group(1)))
    return sessions


def request_lines(url: str, sessions, seed: int) -> list[str]:
    """One submission per task, interleaved across workers so concurrent requests come from different people."""
    rng = random.Random(seed)
    engine = make_engine(url)
    per_worker = []
    with Session(engine) as db:
        for external_id, cookie, csrf in sessions:
            rows = db.execute(select(Assignment.token, Assignment.lineup_id).join(Hit).join(Worker)
                              .where(Worker.external_id == external_id).order_by(Assignment.position)).all()
            faces = {}
            for lineup_id, token in db.execute(select(LineupFace.lineup_id, LineupFace.token)
                                               .where(LineupFace.lineup_id.in_([r.lineup_id for r in rows]))):
                faces.setdefault(lineup_id, []).append(token)
            per_worker.append([f"{cookie}\t" + urlencode({"csrf_token": csrf, "assignment": token,
                                                           "choice": rng.choice(faces[lineup] + ["absent"])})
                               for token, lineup in rows])
    engine.dispose()
    return [line for group in zip(*per_worker) for line in group]


def wrk(url: str, seconds: int, script: Path, env: dict | None = None, until=None) -> dict:
    """Run wrk; with ``until``, interrupt it (SIGINT: it still reports) as soon as ``until()`` is true."""
    process = subprocess.Popen(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "30s",
                                "-s", str(script), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, **(env or {})})
    if until is not None:
        while process.poll() is None and not until():
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=seconds + 60)
    if not out.strip():
        raise RuntimeError(f"wrk failed: {err}")
    return json.loads(out.strip().splitlines()[-1])


def answers_stored(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(Answer)).scalar_one()


def stalled_or_done(engine, expected: int):
    """True once every task has its answer, or nothing has been stored for 10 s (then the count tells)."""
    state = {"count": -1, "since": time.monotonic()}

    def check() -> bool:
        count = answers_stored(engine)
        if count != state["count"]:
            state.update(count=count, since=time.monotonic())
        return count >= expected or time.monotonic() - state["since"] > 10
    return check


def one_run(kind: str, args, workdir: Path, seed: int) -> dict:
    url, drop = fresh_database(kind, workdir)
    try:
        upgrade(url)
        engine = make_engine(url)
        with Session(engine, expire_on_commit=False) as db:
            study = create_from_source(db, "bench", {"hit_size": args.hit_size, "answers_per_item": CONNECTIONS},
                                       folder=str(PAPER), csv=str(PAPER / "manifest.csv"),
                                       where={"kind": "final_image"})
            set_run_status(db, study, 1, "open")
            db.commit()
        port = 20000 + random.randrange(20000)
        base = f"http://127.0.0.1:{port}"
        server = start_server(url, port, args.workers, args.threads)
        try:
            sessions = join_workers(base, study.slug, CONNECTIONS)
            lines = request_lines(url, sessions, seed)
            requests_file = workdir / "requests.tsv"
            requests_file.write_text("\n".join(lines) + "\n")
            hello = wrk(f"{base}/hello", args.seconds, HERE / "wrk" / "hello.lua")
            answers = wrk(f"{base}/s/{study.slug}/answer", 600, HERE / "wrk" / "answers.lua",
                          {"MI_BENCH_REQUESTS": str(requests_file), "MI_BENCH_THREADS": "2"},
                          until=stalled_or_done(engine, len(lines)))
        finally:
            server.terminate()
            server.wait(timeout=30)
        with Session(engine) as db:
            stored = db.scalar(select(func.count()).select_from(Answer))
            first, last = db.execute(select(func.min(Answer.answered_at), func.max(Answer.answered_at))).one()
            tasks = db.scalar(select(func.count()).select_from(Assignment))
            distinct = db.scalar(select(func.count(func.distinct(Answer.assignment_id))))
        engine.dispose()
    finally:
        drop()
    hello_rps = hello["requests"] / (hello["duration_us"] / 1e6)
    # The server's own clock: from the first stored answer to the last (wrk's clock also counts our polling).
    answer_rps = (stored - 1) / (last - first).total_seconds()
    return {"database": kind, "tasks": tasks, "sent": answers["lines"], "stored": stored,
            "acknowledged": answers["statuses"].get("303", 0), "lost": answers["lines"] - stored,
            "duplicated": stored - distinct, "statuses": answers["statuses"],
            "answers_per_s": answer_rps, "answer_p50_ms": answers["p50_us"] / 1000,
            "answer_p95_ms": answers["p95_us"] / 1000, "hello_per_s": hello_rps,
            "hello_p50_ms": hello["p50_us"] / 1000, "hello_p95_ms": hello["p95_us"] / 1000,
            "ratio": answer_rps / hello_rps, "socket_errors": answers["errors"] + hello["errors"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1,
                        help="gunicorn worker processes (serve's default: cores + 1)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (serve's default)")
    parser.add_argument("--hit-size", type=int, default=100, help="lineups per worker (64 workers)")
    parser.add_argument("--seconds", type=int, default=10, help="length of the /hello run")
    args = parser.parse_args()
    summary = {}
    with tempfile.TemporaryDirectory(prefix="mi-bench-") as tmp:
        for kind in args.database or ["sqlite", "postgresql"]:
            runs = []
            for repeat in range(args.repeats):
                run = one_run(kind, args, Path(tmp), repeat)
                runs.append(run)
                print(json.dumps(run), flush=True)
            summary[kind] = {key: statistics.median(r[key] for r in runs)
                             for key in ("answers_per_s", "answer_p50_ms", "answer_p95_ms", "hello_per_s", "ratio")}
            summary[kind].update(runs=runs, lost=sum(r["lost"] for r in runs),
                                 duplicated=sum(r["duplicated"] for r in runs))
            print(json.dumps({kind: {k: v for k, v in summary[kind].items() if k != "runs"}}), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "survey.json").write_text(json.dumps({"settings": vars(args), "results": summary}, indent=1))


if __name__ == "__main__":
    main()
