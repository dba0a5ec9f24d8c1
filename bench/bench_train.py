"""Time to train each of the paper's face models, with the accuracies reached (BENCHMARKS.md).

    .venv/bin/python bench/bench_train.py --repeats 3

Every run starts from scratch with the defaults of `mi-harness train` (seed 0, split seed 0); the table
reports the median seconds and the epochs and accuracies of each run (they are the same run to run, since
training is seeded).
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from attack.faces import Split, load_faces
from attack.models import ARCHITECTURES
from attack.training import TrainConfig, train_model

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=ARCHITECTURES, action="append")
    args = parser.parse_args()
    faces, split = load_faces(), Split.make(0)
    rows = []
    for arch in args.model or ARCHITECTURES:
        runs = [train_model(arch, faces, split, TrainConfig.for_architecture(arch))[1] for _ in range(args.repeats)]
        row = {"model": arch, "median_seconds": statistics.median(r.seconds for r in runs),
               "seconds": [r.seconds for r in runs], "epochs": [r.epochs for r in runs],
               "pretrain_epochs": runs[0].pretrain_epochs, "stopped_by": runs[0].stopped_by,
               "train_accuracy": runs[0].train_accuracy, "validation_accuracy": runs[0].validation_accuracy}
        rows.append(row)
        print(json.dumps(row), flush=True)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "train.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
