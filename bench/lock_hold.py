"""How long the survey's writes hold SQLite's writer lock, during the worker cycle (BENCHMARKS.md, issue 14).

    .venv/bin/python bench/lock_hold.py                       # 64 workers, no think time (as bench_cycle.py)
    .venv/bin/python bench/lock_hold.py --people 1            # one worker: each write's own length, uncontended

A fresh SQLite study (as bench_cycle.py makes it) behind `mi-harness serve` with its defaults, whose processes load
bench/lock_hold/sitecustomize.py: it times every hold of the writer lock and every wait for it, by what took it (the
answers' group commit, a HIT's hand-out, a consent). The crowd runs --seconds after a warm-up; printed per kind, over
the measured window: holds a second, the median and 90th percentile hold, the lock's busy share (the sum of holds per
second), and the median wait. A lock busy most of the time caps every write of the study, whatever the CPUs do.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import bench_cycle

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    workdir, figures = Path(tempfile.mkdtemp()), Path(tempfile.mkdtemp())
    url, drop = bench_cycle.fresh_database("sqlite", workdir)
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE / "lock_hold"), os.environ.get("PYTHONPATH")]))
    os.environ["MI_LOCK_HOLD_DIR"] = str(figures)
    try:
        slug = bench_cycle.new_study(url, answers_per_item=10_000)
        port = bench_cycle.free_port()
        server = bench_cycle.start_server(url, port, args.workers, args.threads)
        try:
            result = bench_cycle.run_crowd(f"http://127.0.0.1:{port}", slug, f"L{secrets.token_hex(3)}", "cycle",
                                           args.people, 3, args.seconds, server.pid, warmup=2)
            offset = time.time() - time.monotonic()
            window = tuple(t + offset for t in result["window_monotonic"])  # the crowd's measured window
            time.sleep(1.5)  # every process writes its figures out once more
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        drop()
    holds: dict[str, list] = {}
    for path in figures.glob("*.jsonl"):
        for line in path.read_text().splitlines():
            kind, *entry = json.loads(line)
            if window[0] <= entry[0] <= window[1]:
                holds.setdefault(kind, []).append(entry)
    span = window[1] - window[0]
    cycles = result["counts"]["answers_in_window"] / args.seconds
    print(f"{args.people} workers: {cycles:.1f} cycles/s; lock held, by what took it, over {span:.1f} s:")
    busy = 0.0
    for kind, entries in sorted(holds.items()):
        hold = sorted(e[1] * 1000 for e in entries)
        if not hold:
            continue
        busy += sum(hold) / 1000 / span
        print(f"  {kind:15s} {len(hold) / span:7.1f}/s  hold median {statistics.median(hold):5.2f} ms, "
              f"p90 {hold[int(0.9 * (len(hold) - 1))]:5.2f} ms, busy {sum(hold) / 1000 / span:5.1%}; "
              f"wait median {statistics.median(e[2] * 1000 for e in entries):5.2f} ms")
    print(f"  the lock was held {busy:.0%} of the time")


if __name__ == "__main__":
    sys.exit(main())
