"""Two revisions of the survey side by side, on the same machine at the same moments (BENCHMARKS.md, issue 14).

    .venv/bin/python bench/bench_cycle_ab.py --before /tmp/before --database postgresql --rounds 3
    .venv/bin/python bench/bench_cycle_ab.py --before /tmp/before --after /tmp/after --mode reload

On a shared VM the machine's speed drifts by a fifth within minutes, more than most single changes to the cycle
save, so runs of bench_cycle.py taken one after the other compare poorly. Here both revisions serve at once: each
its own `mi-harness serve` (the revision's code first on PYTHONPATH, e.g. a `git archive` of it; "." or nothing is
this checkout) with its own fresh database and study, as bench_cycle.py makes them, and its own crowd of --people
simulated workers (bench_cycle.Crowd, in one client process), measured over one window. Both then meet the same
machine; what differs is what each costs. Per revision: cycles (or page views) a second, and the CPU each costs: its
server's processes and, on PostgreSQL, its own backends (found by application_name; the shared background processes
are left out), over the units it completed. The rounds alternate which server starts first: each revision gets
about half of the machine, the one started first tends to get more and to cost less a unit, and the summary's pair
ratios (each the geometric mean of two rounds started either way round) cancel that. Rates here are not those of
bench_cycle.py and are not compared with `/hello`: the targets are bench_cycle.py's. --after-sql changes the after
side's schema alone (both sides may then run the same code). Each study is made by this checkout's migrations and
importer, so the two revisions must share a schema.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from bench_cycle import (
    Crowd,
    check_answers,
    children_of,
    free_port,
    fresh_database,
    machine_busy,
    new_study,
    process_cpu,
    start_server,
)
from sqlalchemy import create_engine, text

POSTGRES = os.environ.get("MI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Side:
    """One revision: its database, study, server and crowd."""

    def __init__(self, name: str, code: str, kind: str, workdir: Path, args, sql: str | None = None) -> None:
        self.name, self.kind, self.server = name, kind, None
        self.url, self.drop = fresh_database(kind, workdir)
        try:
            self._start(name, code, kind, args, sql)
        except BaseException:
            self.close()
            raise

    def _start(self, name: str, code: str, kind: str, args, sql: str | None) -> None:
        if kind == "postgresql":
            self.app_name = f"mi_ab_{name}_{secrets.token_hex(3)}"
            self.url += f"&application_name={self.app_name}"
        self.slug = new_study(self.url, answers_per_item=10_000)
        if sql:  # a schema experiment on this side's database alone
            engine = create_engine(self.url)
            with engine.begin() as connection:
                connection.exec_driver_sql(sql)
            engine.dispose()
        environment = dict(os.environ)
        if code not in ("", "."):
            environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(code).resolve()),
                                                                       environment.get("PYTHONPATH")]))
        self.port = free_port()
        self.server = start_server(self.url, self.port, args.workers, args.threads, env=environment)
        self.prefix = f"AB{secrets.token_hex(3)}"
        self.crowd = Crowd(f"http://127.0.0.1:{self.port}", self.slug, self.prefix, args.mode, args.people,
                           args.hits, (0.0, 0.0), 0.0, args.seconds)

    def backends(self) -> list[int]:
        if self.kind != "postgresql":
            return []
        engine = create_engine(POSTGRES)
        with engine.connect() as connection:
            pids = connection.execute(text("SELECT pid FROM pg_stat_activity WHERE application_name = :name"),
                                      {"name": self.app_name}).scalars().all()
        engine.dispose()
        return list(pids)

    def units(self) -> int:
        return (self.crowd.counts["answers_in_window"] if self.crowd.mode == "cycle"
                else len(self.crowd.latency["page"]))

    def close(self) -> dict:
        try:
            if self.server is not None:
                self.server.terminate()
                self.server.wait(timeout=30)
            crowd = getattr(self, "crowd", None)
            return check_answers(self.url, crowd.acks, self.prefix) if crowd and crowd.mode == "cycle" else {}
        finally:
            self.drop()


async def measure(sides: list[Side], args) -> dict:
    places = [asyncio.create_task(side.crowd.place(slot)) for side in sides for slot in range(args.people)]
    deadline = time.monotonic() + 90
    while any(len(s.crowd.places_working) < args.people for s in sides) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    start = time.monotonic() + args.warmup
    for side in sides:  # one window for both
        side.crowd.keep_from, side.crowd.stop_at = start, start + args.seconds
    await asyncio.sleep(start - time.monotonic())
    servers = {side.name: children_of(side.server.pid) for side in sides}
    backends = {side.name: side.backends() for side in sides}

    def used() -> dict:  # (server, own backends) CPU seconds so far, per side
        return {name: (process_cpu(servers[name]), process_cpu(backends[name])) for name in servers}
    before, busy, client = used(), machine_busy(), time.process_time()
    await asyncio.sleep(args.seconds)
    after = used()
    server_cpu = {name: after[name][0] - before[name][0] for name in servers}
    cpu = {name: server_cpu[name] + after[name][1] - before[name][1] for name in servers}
    machine, client = (machine_busy() - busy) / args.seconds, (time.process_time() - client) / args.seconds
    await asyncio.gather(*places, return_exceptions=True)
    result = {"machine_cores": machine, "client_cores": client}
    for side in sides:
        n = side.units()
        result[side.name] = {"per_s": n / args.seconds, "cpu_ms": 1000 * cpu[side.name] / max(n, 1),
                             "server_cpu_ms": 1000 * server_cpu[side.name] / max(n, 1),
                             "backends": len(backends[side.name]), "problems": side.crowd.problems[:3]}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, help="folder of the revision to compare against")
    parser.add_argument("--after", default=".", help="folder of the revision measured (default: this checkout)")
    parser.add_argument("--after-sql", default=None,
                        help="SQL run on the after side's database once its study is made (a schema experiment)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--mode", choices=["cycle", "reload"], default="cycle")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--people", type=int, default=32, help="simulated workers on each server")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--hits", type=int, default=3)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    for code in (args.before, args.after):
        if code not in ("", ".") and not (Path(code) / "survey_app" / "__init__.py").is_file():
            parser.error(f"{code} holds no survey_app package (a revision's tree, e.g. from git archive)")
    rounds = []
    with tempfile.TemporaryDirectory(prefix="mi-bench-ab-") as tmp:
        for number in range(args.rounds):
            order = [("before", args.before), ("after", args.after)]
            sides = []
            try:
                for name, code in order if number % 2 == 0 else order[::-1]:
                    sides.append(Side(name, code, args.database, Path(tmp), args,
                                      args.after_sql if name == "after" else None))
                result = asyncio.run(measure(sides, args))
            finally:
                answers = {side.name: side.close() for side in sides}
            result["answers"] = answers
            result["cost_ratio"] = result["after"]["cpu_ms"] / result["before"]["cpu_ms"]
            rounds.append(result)
            print(json.dumps({"round": number + 1, "first": sides[0].name,
                              "machine_cores": round(result["machine_cores"], 2),
                              **{name: {k: round(v, 3) if isinstance(v, float) else v for k, v in result[name].items()}
                                 for name in ("before", "after")},
                              "cost_ratio": round(result["cost_ratio"], 3),
                              "lost_or_duplicated": sum(a.get("lost", 0) + a.get("changed", 0) + a.get("duplicated", 0)
                                                        for a in answers.values())}), flush=True)
    ratios = [r["cost_ratio"] for r in rounds]
    # The side started first tends to take more of the machine and to cost less a unit: each pair of rounds (one
    # each way round) is summed up by its geometric mean, which that order effect cancels out of.
    pairs = [math.sqrt(ratios[k] * ratios[k + 1]) for k in range(0, len(ratios) - 1, 2)]
    summary = {"median_cost_ratio": statistics.median(ratios), "cost_ratios": [round(r, 3) for r in ratios],
               "pair_ratios": [round(r, 3) for r in pairs],
               "median_pair_ratio": statistics.median(pairs) if pairs else None}
    print(json.dumps(summary))
    if args.out:
        Path(args.out).write_text(json.dumps({"settings": vars(args), "rounds": rounds, **summary}, indent=1))


if __name__ == "__main__":
    main()
