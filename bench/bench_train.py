"""Time to train each of the paper's face models, with the accuracies reached (BENCHMARKS.md).

    .venv/bin/python bench/bench_train.py --repeats 3
    .venv/bin/python bench/bench_train.py --model mlp --recipe faces --max-epochs 30 --compare-plain --repeats 3

Every run starts from scratch with the defaults of `mi-harness train` (seed 0, split seed 0, `--recipe`); the
table reports the median seconds and the epochs and accuracies of each run (they are the same run to run, since
training is seeded). ``--compare-plain`` also trains each span-trained model (the MLP: attack.training.
SpanTrainedLayer) with plain SGD on its pixel layer, alternating with the span-trained runs, and reports the
ratio of the medians and how far apart the two paths' weights end.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import attack.training as training
from attack.faces import Split, load_faces
from attack.models import ARCHITECTURES
from attack.training import RECIPES, TrainConfig, train_model

RESULTS = Path(__file__).parent / "results"


def train(arch, faces, split, cfg, plain: bool):
    """One training run, with the pixel layer span-trained (the default) or updated by plain SGD."""
    kept = training.SPAN_TRAINED
    training.SPAN_TRAINED = () if plain else kept
    try:
        return train_model(arch, faces, split, cfg)
    finally:
        training.SPAN_TRAINED = kept


def summary(arch: str, recipe: str, path: str, runs: list) -> dict:
    results = [result for _, result in runs]
    return {"model": arch, "recipe": recipe, "sgd": path,
            "median_seconds": statistics.median(r.seconds for r in results),
            "seconds": [round(r.seconds, 2) for r in results], "epochs": [r.epochs for r in results],
            "pretrain_epochs": results[0].pretrain_epochs, "stopped_by": results[0].stopped_by,
            "train_accuracy": results[0].train_accuracy, "validation_accuracy": results[0].validation_accuracy}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", choices=ARCHITECTURES, action="append")
    parser.add_argument("--recipe", choices=list(RECIPES), default="paper")
    parser.add_argument("--max-epochs", type=int, help="Cap on epochs (the recipe's or model's default).")
    parser.add_argument("--compare-plain", action="store_true",
                        help="Also train span-trained models with plain SGD on the pixel layer, alternating.")
    args = parser.parse_args()
    faces, split = load_faces(), Split.make(0)
    rows = []
    for arch in args.model or list(RECIPES[args.recipe]):
        cfg = TrainConfig.for_architecture(arch, args.recipe, max_epochs=args.max_epochs)
        paths = ["span", "plain"] if args.compare_plain and arch in training.SPAN_TRAINED else ["default"]
        runs: dict[str, list] = {path: [] for path in paths}
        for _ in range(args.repeats):
            for path in paths:
                runs[path].append(train(arch, faces, split, cfg, plain=path == "plain"))
        for path in paths:
            rows.append(summary(arch, args.recipe, path, runs[path]))
            print(json.dumps(rows[-1]), flush=True)
        if len(paths) == 2:
            span_model, plain_model = runs["span"][0][0], runs["plain"][0][0]
            difference = max(float((a - b).abs().max() / b.abs().max()) for a, b in
                             zip(span_model.state_dict().values(), plain_model.state_dict().values()))
            rows[-2]["plain_over_span"] = rows[-1]["median_seconds"] / rows[-2]["median_seconds"]
            rows[-2]["largest_relative_weight_difference"] = difference
            print(json.dumps({k: rows[-2][k] for k in ("plain_over_span", "largest_relative_weight_difference")}))
    RESULTS.mkdir(exist_ok=True)
    name = "train" if args.recipe == "paper" and not args.compare_plain else f"train-{args.recipe}-compare"
    (RESULTS / f"{name}.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
