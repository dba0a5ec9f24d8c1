"""Differentially private training (DP-SGD) against white-box MI-Face (issue 13); results go into BENCHMARKS.md.

    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_dp.py --models softmax,mlp,dae --epsilons 1,3,8

For each model and ε: train with DP-SGD (δ = 1e-5, the DP defaults of attack/private_training.py) into
WORK/models/MODEL-dpE.pt unless it is there, then invert all 40 subjects white-box with the paper's MI-Face and
score them with every judge the evaluator has. The non-private rows are the default checkpoints (--baseline,
trained with `mi-harness train`), attacked the same way. Writes WORK/dp-MODELS.json, WORK/bundle (the reconstructions,
countermeasure none or dp:eps=E) and WORK/dp_faces-MODELS.png (the same subjects across ε), and prints the table.
Training seconds are single runs on this shared machine (the models are too slow to train repeatedly here).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import matplotlib
import torch

from attack.checkpoints import load_checkpoint, save_checkpoint
from attack.faces import Split, load_faces, subject_name
from attack.gallery import att_references
from attack.private_training import (
    PrivacyConfig,
    checkpoint_name,
    dp_train_config,
    privacy_summary,
    private_checkpoint_metadata,
    train_private_model,
)
from attack.reconstruct import AttackRequest, run_attack, save_to_bundle
from mi_harness.bundle import read_bundle
from mi_harness.evaluate import Recogniser, evaluate_bundle, groups_as_rows

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIGURE_SUBJECTS = (0, 4, 9, 14, 19, 24, 29, 34)


def train_all(archs: list[str], epsilons: list[float], models_dir: Path, faces, split: Split) -> None:
    for arch in archs:
        for eps in epsilons:
            privacy = PrivacyConfig(eps)
            path = models_dir / checkpoint_name(arch, privacy)
            if path.exists():
                print(f"{arch} ε={eps:g}: reusing {path}", flush=True)
                continue
            cfg = dp_train_config(arch)
            model, result, report = train_private_model(arch, faces, split, cfg, privacy)
            save_checkpoint(path, model, private_checkpoint_metadata(model, split, cfg, result, faces, report))
            print(f"{arch} ε={eps:g}: validation {result.validation_accuracy:.3f}, {result.seconds:.0f}s, "
                  f"{privacy_summary(report)}", flush=True)


def attack_all(checkpoints: list[Path], bundle_dir: Path, faces, preset: str) -> None:
    """White-box MI-Face (a reconstruct.PRESETS setting) on all 40 subjects of each checkpoint, unless the
    bundle already holds them. Each preset has a bundle of its own, so every item there is that preset's."""
    for path in checkpoints:
        _, meta = load_checkpoint(path)
        cm = (meta.get("privacy") or {}).get("spec", "none")
        if (bundle_dir / "manifest.json").is_file():
            done = [i for i in read_bundle(bundle_dir).items
                    if i.model == meta["model"]["architecture"] and i.countermeasure == cm]
            if len(done) == 40:
                print(f"{path} ({preset}): reusing its 40 reconstructions in {bundle_dir}", flush=True)
                continue
        started = time.perf_counter()
        output = run_attack(AttackRequest(path, list(range(40)), preset=preset, show_progress=False), faces)
        save_to_bundle(output, bundle_dir)
        print(f"attacked {path} ({preset}): {time.perf_counter() - started:.0f}s", flush=True)


def figure(bundle_dir: Path, rows: list[tuple[str, str]], out: Path) -> None:
    """One row per (model, countermeasure), one column per subject: the stored (contrast-stretched) images."""
    bundle = read_bundle(bundle_dir)
    by_key = {(i.model, i.countermeasure, i.subject): i for i in bundle.items}
    fig, axes = plt.subplots(len(rows) + 1, len(FIGURE_SUBJECTS), figsize=(1.3 * len(FIGURE_SUBJECTS),
                                                                             1.6 * (len(rows) + 1)))
    split = bundle.dataset["split"]
    for col, label in enumerate(FIGURE_SUBJECTS):
        subject = subject_name(label)
        photo = next(g for g in bundle.gallery if g.subject == subject and g.role == "train"
                     and g.image.endswith(f"/{split[subject]['train'][0]}.png"))
        axes[0, col].imshow(bundle.load_image(photo.image), cmap="gray", vmin=0, vmax=1)
        axes[0, col].set_title(subject, fontsize=8)
        for row, (model, cm) in enumerate(rows, start=1):
            item = by_key.get((model, cm, subject))
            if item is not None:
                axes[row, col].imshow(bundle.load_image(item.image), cmap="gray", vmin=0, vmax=1)
    for row, (model, cm) in enumerate([("training photo", "")] + rows):
        axes[row, 0].set_ylabel(f"{model}\n{cm}", fontsize=7)
    for axis in axes.flat:
        axis.set_xticks([])
        axis.set_yticks([])
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="softmax,mlp,dae")
    parser.add_argument("--epsilons", default="1,3,8")
    parser.add_argument("--baseline", type=Path, default=Path("runs/models"), help="non-private checkpoints")
    parser.add_argument("--work", type=Path, default=Path("runs/dp"))
    parser.add_argument("--presets", default="paper,smooth",
                        help="MI-Face settings (reconstruct.PRESETS): paper = Algorithm 1 as published; smooth = "
                             "-log f, the normalized step and a total-variation prior")
    args = parser.parse_args()
    archs, epsilons = args.models.split(","), [float(e) for e in args.epsilons.split(",")]
    faces = load_faces()
    split = Split.make(0)
    models_dir = args.work / "models"
    train_all(archs, epsilons, models_dir, faces, split)

    checkpoints = [args.baseline / f"{a}.pt" for a in archs if (args.baseline / f"{a}.pt").exists()]
    checkpoints += [models_dir / checkpoint_name(a, PrivacyConfig(e)) for a in archs for e in epsilons]
    tag = "-".join(archs)
    table = []
    # the deep judge's gallery descriptors take minutes: computed once
    recogniser = Recogniser(att_references(faces, Split.make(0)))
    for preset in args.presets.split(","):
        bundle_dir = args.work / ("bundle" if preset == "paper" else f"bundle-{preset}")
        attack_all(checkpoints, bundle_dir, faces, preset)
        bundle = read_bundle(bundle_dir)
        scores = {(r["model"], r["countermeasure"]): r for r in groups_as_rows(
            evaluate_bundle(bundle, recogniser, ("model", "countermeasure")))}
        rows = []
        for path in checkpoints:
            _, meta = load_checkpoint(path)
            privacy = meta.get("privacy")
            arch = meta["model"]["architecture"]
            cm = privacy["spec"] if privacy else "none"
            rows.append((arch, cm))
            table.append({"model": arch, "countermeasure": cm, "preset": preset, "checkpoint": str(path),
                          "validation_accuracy": meta["result"]["validation_accuracy"],
                          "train_accuracy": meta["result"]["train_accuracy"],
                          "train_seconds": meta["result"]["seconds"], "epochs": meta["result"]["epochs"],
                          "privacy": privacy,  # the batch of 40 finishes with its slowest label
                          "attack_seconds": max(i.seconds for i in bundle.items
                                                if i.model == arch and i.countermeasure == cm),
                          **{k: v for k, v in scores[(arch, cm)].items() if k not in ("model", "countermeasure")}})
        figure(bundle_dir, rows, args.work / f"dp_faces-{tag}-{preset}.png")
    machine = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": str(torch.__version__),
               "threads": torch.get_num_threads()}
    (args.work / f"dp-{tag}.json").write_text(json.dumps({"machine": machine, "rows": table}, indent=1))
    judges = [k for k in table[0] if k.startswith("top1_")] + ["unusable"]
    print("| model | ε | preset | spent ε | noise | train s | validation | " + " | ".join(judges) + " |")
    for r in table:
        p = r["privacy"] or {}
        print(f"| {r['model']} | {p.get('epsilon', '∞')} | {r['preset']} | "
              f"{p.get('spent_epsilon', float('nan')):.3f} | "
              f"{p.get('noise_multiplier', 0):.3f} | {r['train_seconds']:.0f} | {r['validation_accuracy']:.1%} | "
              + " | ".join(f"{r[j]:.1%}" if j != "unusable" else str(r.get(j)) for j in judges) + " |")
    print("saved", args.work / f"dp-{tag}.json", f"and the figures {args.work}/dp_faces-{tag}-PRESET.png")


if __name__ == "__main__":
    main()
