"""Black-box MI-Face against rounding, every query an image (issue 13); results go into BENCHMARKS.md.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_blackbox.py --plans softmax-nes,dae-nes,dae-nes-latent,dae-fd

Five subjects (s1, s9, s17, s25, s33), the paper's rounding levels, one run each, through `run_attack` as the CLI
runs it: the API counts one query per image it is sent (the DAE's code z goes out as the image decode(z)); the
``-latent`` plans send codes straight to the DAE's head instead (the latent-space oracle the earlier table
measured). Each plan's reconstructions go into a bundle of their own under WORK and are scored with every
judge the evaluator has. Writes WORK/blackbox.json and prints the table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from attack.countermeasures import PAPER_ROUNDING_LEVELS
from attack.faces import Split, load_faces
from attack.gallery import att_references
from attack.reconstruct import AttackRequest, run_attack, save_to_bundle
from mi_harness.bundle import read_bundle
from mi_harness.evaluate import Recogniser, evaluate_bundle, groups_as_rows

LABELS = [0, 8, 16, 24, 32]
LEVELS = ["none"] + [f"round:{r:g}" for r in PAPER_ROUNDING_LEVELS]
# plan -> (model, estimator, its parameters, per-label query budget, door)
PLANS = {
    "softmax-nes": ("softmax", "nes", {"sigma": 0.01, "samples": 50}, 20_000, "image"),
    "softmax-fd": ("softmax", "fd", {"h": 0.01}, 10304 * 40, "image"),
    "dae-nes": ("dae", "nes", {"sigma": 0.01, "samples": 50}, 20_000, "image"),
    "dae-nes-latent": ("dae", "nes", {"sigma": 0.01, "samples": 50}, 20_000, "latent"),
    "dae-fd": ("dae", "fd", {"h": 0.01}, 301 * 200, "image"),
    "dae-fd-latent": ("dae", "fd", {"h": 0.01}, 301 * 200, "latent"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plans", default="softmax-nes,dae-nes,dae-nes-latent,dae-fd")
    parser.add_argument("--levels", default=",".join(LEVELS))
    parser.add_argument("--models", type=Path, default=Path("runs/models"))
    parser.add_argument("--work", type=Path, default=Path("runs/blackbox"))
    parser.add_argument("--reuse", action="store_true", help="score the levels already in WORK/PLAN again")
    args = parser.parse_args()
    faces = load_faces()
    recogniser = Recogniser(att_references(faces, Split.make(0)))
    rows = []
    for plan in args.plans.split(","):
        arch, estimator, params, budget, door = PLANS[plan]
        bundle_dir = args.work / plan
        for level in args.levels.split(","):
            if args.reuse and (bundle_dir / "manifest.json").is_file() and sum(
                    i.countermeasure == level for i in read_bundle(bundle_dir).items) == len(LABELS):
                print(f"{plan} {level}: reusing {bundle_dir}", flush=True)
                continue
            request = AttackRequest(args.models / f"{arch}.pt", LABELS, access="blackbox", countermeasure=level,
                                    mi_face={"query_budget": budget}, estimator=estimator, estimator_params=params,
                                    door=door, show_progress=False)
            started = time.perf_counter()
            output = run_attack(request, faces)
            save_to_bundle(output, bundle_dir)
            print(f"{plan} {level}: {(time.perf_counter() - started) / len(LABELS):.2f} s/label", flush=True)
        bundle = read_bundle(bundle_dir)
        for score in groups_as_rows(evaluate_bundle(bundle, recogniser, ("model", "countermeasure"))):
            items = [i for i in bundle.items if i.countermeasure == score["countermeasure"]]
            rows.append({"plan": plan, "estimator": estimator, "door": door, "budget": budget,
                         "queries_per_label": float(np.mean([i.queries for i in items])),
                         # the five labels run as one batch; it ends with its slowest label
                         "seconds_per_label": max(i.seconds for i in items) / len(LABELS), **score})
    machine = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": str(torch.__version__),
               "threads": torch.get_num_threads()}
    args.work.mkdir(parents=True, exist_ok=True)
    out = args.work / f"blackbox-{args.plans.replace(',', '-')}.json"
    out.write_text(json.dumps({"machine": machine, "labels": LABELS, "rows": rows}, indent=1))
    judges = [k for k in rows[0] if k.startswith("top1_")]
    print("| model | estimator | door | rounding | budget | queries / label | s / label | mean confidence | "
          + " | ".join(judges) + " |")
    for r in rows:
        print(f"| {r['model']} | {r['estimator']} | {r['door']} | {r['countermeasure']} | {r['budget']:,} | "
              f"{r['queries_per_label']:,.0f} | {r['seconds_per_label']:.2f} | {r['confidence']:.3f} | "
              + " | ".join(f"{100 * r[j]:.0f}%" for j in judges) + " |")
    print("saved", out)


if __name__ == "__main__":
    main()
