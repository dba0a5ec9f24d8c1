"""Coverage of the report's 95% intervals on panels simulated with known worker and item variance (issue 12).

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_intervals.py [--simulations 1000] [--bootstrap 500]

Each simulated study has two conditions whose population accuracy (a new worker on a new item) is known, worker
and item effects drawn from normal distributions of known sd (``analysis.plan.simulate_answers``, the survey's way of
serving HITs), and is analysed exactly as a real export is (``analysis.clustered.clustered_accuracy``). An interval
covers when it holds the known accuracy. Printed as a Markdown table; the slow test
tests/analysis/test_clustered.py runs the first design with 200 simulations.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import pandas as pd

from analysis.clustered import clustered_accuracy
from analysis.load import COLUMNS, tidy
from analysis.plan import Design, simulate_answers
from mi_harness.answers import ADDED_COLUMNS

DESIGNS = {
    "15 items/condition, 5 answers/item, 3 runs": Design(0.5, 0.7, items_per_condition=15),
    "8 items/condition, 5 answers/item, 3 runs": Design(0.5, 0.7, items_per_condition=8),
    "40 items/condition, 2 answers/item, 3 runs": Design(0.6, 0.8, items_per_condition=40, answers_per_item=2),
    "15 items/condition, no worker or item effects": Design(0.5, 0.7, items_per_condition=15, sd_worker=0, sd_item=0),
}


def as_frame(answers: pd.DataFrame) -> pd.DataFrame:
    """A simulated study as the analysis reads an export: condition 0 is countermeasure none, 1 round:0.01."""
    n = len(answers)
    rows = pd.DataFrame({"study": "sim", "run": 1, "worker": "w" + answers["worker"].astype(str), "hit": 1,
                         "item": "i" + answers["item"].astype(str), "subject": "s1", "model": "softmax",
                         "attack": "mi-face",
                         "countermeasure": np.where(answers["condition"] == 0, "none", "round:0.01"), "blur": "",
                         "gold": False, "target_present": True, "target_position": 1,
                         "choice": np.where(answers["correct"], "1", "2"), "correct": answers["correct"],
                         "skilled": False, "response_ms": 1000, "shown_at": None, "answered_at": None,
                         **ADDED_COLUMNS}, index=range(n))
    return tidy(rows[list(COLUMNS)])


def coverage(design: Design, simulations: int, bootstrap: int, seed: int = 0) -> dict:
    """Share of intervals (two per study) holding the true accuracy, per method; and seconds per analysis."""
    rng = np.random.default_rng(seed)
    truth = {"none": design.accuracy_a, "round:0.01": design.accuracy_b}
    hits = {"mixed model": 0, "cluster bootstrap": 0, "naive Wilson": 0}
    seconds, widths = [], {k: [] for k in hits}
    for k in range(simulations):
        frame = as_frame(simulate_answers(design, rng))
        start = time.perf_counter()
        table, _ = clustered_accuracy(frame, bootstrap=bootstrap, seed=k)
        seconds.append(time.perf_counter() - start)
        for row in table.itertuples():
            true = truth[row.countermeasure]
            for method, (low, high) in {"mixed model": (row.ci_low, row.ci_high),
                                        "cluster bootstrap": (row.boot_low, row.boot_high),
                                        "naive Wilson": (row.naive_low, row.naive_high)}.items():
                hits[method] += low <= true <= high
                widths[method].append(high - low)
    return {"intervals": 2 * simulations, **{m: h / (2 * simulations) for m, h in hits.items()},
            **{f"width {m}": statistics.mean(w) for m, w in widths.items()},
            "seconds": statistics.median(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulations", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=500)
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {args.simulations} simulations per design, "
          f"{args.bootstrap} bootstrap draws")
    print("| design | intervals | mixed model | cluster bootstrap | naive Wilson | mean width (model / boot / naive) "
          "| s per analysis (median) |")
    print("|---|---|---|---|---|---|---|")
    for name, design in DESIGNS.items():
        result = coverage(design, args.simulations, args.bootstrap)
        print(f"| {name}; accuracy {design.accuracy_a:.0%} vs {design.accuracy_b:.0%}, worker sd "
              f"{design.sd_worker}, item sd {design.sd_item} | {result['intervals']} "
              f"| {result['mixed model']:.1%} | {result['cluster bootstrap']:.1%} | {result['naive Wilson']:.1%} "
              f"| {result['width mixed model']:.3f} / {result['width cluster bootstrap']:.3f} / "
              f"{result['width naive Wilson']:.3f} | {result['seconds']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
