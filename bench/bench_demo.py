"""Wall time of `mi-harness demo`, step by step (BENCHMARKS.md).

    .venv/bin/python bench/bench_demo.py --repeats 3              # with the checkpoints in runs/models
    .venv/bin/python bench/bench_demo.py --repeats 1 --cold       # training the three models too

Each run starts from an empty work folder (and, with --cold, an empty models folder), runs the full demo as a
user would, in a child process, and reads the seconds of every step from the demo's state.json. The target of
issue 4 is under 15 minutes on the 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from survey_app.server import mi_harness_command

RESULTS = Path(__file__).parent / "results"


def one_run(models_dir: Path, cold: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="mi-demo-bench-") as tmp:
        work = Path(tmp) / "work"
        models = Path(tmp) / "models" if cold else models_dir
        start = time.perf_counter()
        with open(RESULTS / "demo_stderr.log", "w") as log:  # progress bars; the last run's stays for a look
            done = subprocess.run([*mi_harness_command(), "demo", "--work", str(work), "--models-dir", str(models)],
                                  stderr=log)
        total = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"the demo failed (exit {done.returncode}); see {RESULTS / 'demo_stderr.log'}")
        state = json.loads((work / "state.json").read_text())
        shutil.copy(work / "report" / "tables" / "accuracy_all.csv", RESULTS / f"demo_accuracy_{int(cold)}.csv")
    steps = {key: value["seconds"] for key, value in state["done"].items()}
    return {"total_seconds": total, "steps": steps, "answers": state["done"]["report"]["answers"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="Train the models in every run.")
    parser.add_argument("--models-dir", type=Path, default=Path("runs/models"))
    args = parser.parse_args()
    if not args.cold and not all((args.models_dir / f"{m}.pt").exists() for m in ("softmax", "mlp", "dae")):
        parser.error(f"no checkpoints in {args.models_dir}: run `mi-harness train` first, or pass --cold")
    RESULTS.mkdir(exist_ok=True)
    runs = []
    for _ in range(args.repeats):
        runs.append(one_run(args.models_dir, args.cold))
        print(json.dumps(runs[-1]), flush=True)
    summary = {"cold": args.cold, "median_total_seconds": statistics.median(r["total_seconds"] for r in runs),
               "totals": [r["total_seconds"] for r in runs],
               "median_step_seconds": {key: statistics.median(r["steps"].get(key, 0) for r in runs)
                                       for key in runs[0]["steps"]}, "runs": runs}
    (RESULTS / f"demo_{'cold' if args.cold else 'warm'}.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: summary[k] for k in ("median_total_seconds", "totals")}))


if __name__ == "__main__":
    main()
