"""Benchmarks for the attack stage (issue 2); results go into BENCHMARKS.md.

    .venv/bin/python bench/bench_attack.py --models runs/models --section all --repeats 3

Each timing is the median of --repeats runs on this machine; every ratio is between two runs made in the
same invocation. Identification is the independent evaluator's top-1 (pixel-correlation nearest neighbour).
Results are printed as Markdown tables and saved as JSON under bench/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from attack.checkpoints import load_checkpoint
from attack.deblur import BlurConsistency, parse_blur
from attack.faces import Split, load_faces
from attack.gallery import att_references
from attack.gradient_estimators import build_estimator
from attack.mi_face import MIFace
from attack.prediction_api import PredictionAPI
from attack.process_dae import ProcessDAE
from attack.reconstruct import blurred_inputs, mi_face_config
from mi_harness.evaluate import Recogniser

RESULTS = Path(__file__).parent / "results"


def median_time(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


class Bench:
    def __init__(self, models_dir: Path, repeats: int, only: list[str]) -> None:
        self.archs = only
        self.models = {a: load_checkpoint(models_dir / f"{a}.pt") for a in ("softmax", "mlp", "dae")}
        self.faces = load_faces()
        self.recogniser = Recogniser(att_references(self.faces, Split.make(0)))
        self.repeats = repeats
        self.results: dict[str, list[dict]] = {}

    def invert(self, arch: str, labels: list[int], overrides: dict | None = None, countermeasure=None,
               estimator=None, start=None, aux=None):
        model, _ = self.models[arch]
        api = PredictionAPI(model, countermeasure)
        config = mi_face_config(arch, aux is not None, overrides or {})
        process = ProcessDAE(api.encode, api.decode) if arch == "dae" and config.process_every else None
        attack = MIFace(api, config, process=process, estimator=estimator, show_progress=False)
        return attack.invert(labels, start=start, aux=aux)

    def top1(self, results, labels, exclude=None) -> float:
        images = np.stack([r.image.reshape(112, 92).numpy() for r in results])
        return float((self.recogniser.subject_ranks(images, np.array(labels), exclude)["pixel"] < 1).mean())

    def record(self, section: str, row: dict) -> None:
        self.results.setdefault(section, []).append(row)
        print(section, json.dumps(row))

    # -- white-box at the paper's settings, batched and one label at a time ------------------------------
    def whitebox(self) -> None:
        labels = list(range(40))
        for arch in self.archs:
            seconds, results = median_time(lambda: self.invert(arch, labels), self.repeats)
            # the MLP's stuck labels run all 5000 steps: time four of them one at a time, once
            single_labels, reps = (labels[:4], 1) if arch == "mlp" else (labels, self.repeats)
            single, _ = median_time(lambda: [self.invert(arch, [label]) for label in single_labels], reps)
            self.record("whitebox", {
                "model": arch, "labels": 40, "batched_s": seconds, "batched_s_per_label": seconds / 40,
                "single_s_per_label": single / len(single_labels), "single_labels_timed": len(single_labels),
                "reached_0.99": sum(r.true_confidence >= 0.99 for r in results),
                "mean_iterations": float(np.mean([r.iterations for r in results])),
                "top1": self.top1(results, labels)})

    def stop_rules(self) -> None:
        labels = list(range(40))
        for arch in self.archs:
            for rule in ("confidence", "cost"):
                seconds, results = median_time(lambda: self.invert(arch, labels, {"stop_rule": rule}), 1)
                self.record("stop_rules", {"model": arch, "stop_rule": rule, "seconds": seconds,
                                           "mean_iterations": float(np.mean([r.iterations for r in results])),
                                           "mean_confidence": float(np.mean([r.true_confidence for r in results])),
                                           "top1": self.top1(results, labels)})

    def process_dae(self) -> None:
        labels = list(range(40))
        for every in (0, 1, 5, 20, 100):
            seconds, results = median_time(lambda: self.invert("dae", labels, {"process_every": every}), 1)
            self.record("process_dae", {"process_every": every, "seconds": seconds,
                                        "mean_iterations": float(np.mean([r.iterations for r in results])),
                                        "top1": self.top1(results, labels)})
        for lam in (0.1, 1.0, 10.0):
            seconds, results = median_time(lambda: self.invert("dae", labels, {"lam": lam}), 1)
            self.record("dae_lambda", {"lam": lam, "seconds": seconds, "top1": self.top1(results, labels)})

    def mlp_step(self) -> None:
        labels = list(range(40))
        for step, lam in (("normalized", 0.01),):
            seconds, results = median_time(lambda: self.invert("mlp", labels, {"step": step, "lam": lam}), 1)
            self.record("mlp_step", {"step": step, "lam": lam, "seconds": seconds,
                                     "reached_0.99": sum(r.true_confidence >= 0.99 for r in results),
                                     "top1": self.top1(results, labels)})

    # -- IBM ART's MIFace on the same softmax model, same iterations --------------------------------------
    def art(self, iterations: int = 1000, n_labels: int = 10) -> None:
        from art.attacks.inference.model_inversion import MIFace as ArtMIFace
        from art.estimators.classification import PyTorchClassifier

        model, _ = self.models["softmax"]
        probabilities = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
        classifier = PyTorchClassifier(probabilities, loss=torch.nn.CrossEntropyLoss(), input_shape=(10304,),
                                       nb_classes=40)
        labels = list(range(n_labels))
        fixed = {"alpha": iterations, "beta": iterations + 1, "stop_rule": "none"}
        art = ArtMIFace(classifier, max_iter=iterations, window_length=iterations + 1, threshold=1.0,
                        learning_rate=0.1, batch_size=1)
        art_s, _ = median_time(lambda: art.infer(None, np.array(labels)), self.repeats)
        ours_batched, res = median_time(lambda: self.invert("softmax", labels, fixed), self.repeats)
        ours_all, _ = median_time(lambda: self.invert("softmax", list(range(40)), fixed), self.repeats)
        ours_single, _ = median_time(lambda: [self.invert("softmax", [label], fixed) for label in labels],
                                     self.repeats)
        assert all(r.iterations == iterations for r in res)
        self.record("art", {"iterations": iterations, "labels": n_labels,
                            "art_s_per_label": art_s / n_labels, "ours_batched_s_per_label": ours_batched / n_labels,
                            "ours_single_s_per_label": ours_single / n_labels,
                            "ours_batched40_s_per_label": ours_all / 40,
                            "speedup_batched": art_s / ours_batched,
                            "speedup_batched40": art_s / n_labels / (ours_all / 40),
                            "speedup_single": art_s / ours_single})

    # -- black-box: queries, seconds and identification, against rounding ----------------------------------
    def blackbox(self, n_labels: int = 5) -> None:
        labels = list(range(0, 40, 40 // n_labels))[:n_labels]
        from attack.countermeasures import parse_countermeasure

        plans = [("softmax", "nes", {"sigma": 0.01, "samples": 50}, 20_000),
                 ("softmax", "fd", {"h": 0.01}, 10304 * 40),
                 ("dae", "nes", {"sigma": 0.01, "samples": 50}, 20_000),
                 ("dae", "fd", {"h": 0.01}, 301 * 200)]
        for arch, name, params, budget in [p for p in plans if p[0] in self.archs]:
            for cm in ("none", "round:0.001", "round:0.005", "round:0.01", "round:0.05"):
                extra = {"seed": 0} if name == "nes" else {}
                start = time.perf_counter()
                results = self.invert(arch, labels, {"query_budget": budget}, parse_countermeasure(cm),
                                      build_estimator(name, **params, **extra))
                seconds = time.perf_counter() - start
                self.record("blackbox", {
                    "model": arch, "estimator": name, "countermeasure": cm, "labels": len(labels), "budget": budget,
                    "queries_per_label": float(np.mean([r.queries for r in results])),
                    "seconds_per_label": seconds / len(labels),
                    "mean_confidence": float(np.mean([r.true_confidence for r in results])),
                    "top1": self.top1(results, labels)})
        for arch in [a for a in ("softmax", "dae") if a in self.archs]:
            white = self.invert(arch, labels)
            self.record("blackbox", {"model": arch, "estimator": "white-box", "countermeasure": "none",
                                     "queries_per_label": float(np.mean([r.queries for r in white])),
                                     "top1": self.top1(white, labels)})

    # -- deblurring: what the model adds over the blurred photo --------------------------------------------
    def deblur(self) -> None:
        labels = list(range(40))
        split = Split.from_json(self.models["softmax"][1]["split"])
        for arch in self.archs:
            for spec in ("gaussian:4", "gaussian:8", "pixelate:8", "pixelate:12", "pixelate:16"):
                blur = parse_blur(spec)
                blurred, numbers = blurred_inputs(self.faces, split, labels, blur)
                model, _ = self.models[arch]
                exclude = [self.faces.index_of(lab, n) for lab, n in zip(labels, numbers)]
                aux = BlurConsistency(blur, blurred, model.decode)
                start = time.perf_counter()
                results = self.invert(arch, labels, start=blurred, aux=aux)
                seconds = time.perf_counter() - start
                blurred_top1 = float((self.recogniser.subject_ranks(blurred.numpy().reshape(-1, 112, 92),
                                                                    np.array(labels), exclude)["pixel"] < 1).mean())
                self.record("deblur", {"model": arch, "blur": spec, "seconds": seconds,
                                       "blurred_top1": blurred_top1,
                                       "deblurred_top1": self.top1(results, labels, exclude)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("runs/models"))
    parser.add_argument("--section", default="all",
                        help="whitebox, stop_rules, process_dae, mlp_step, art, blackbox, deblur or all")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="softmax,mlp,dae", help="models to run the per-model sections on")
    args = parser.parse_args()
    bench = Bench(args.models, args.repeats, args.only.split(","))
    sections = ["whitebox", "art", "stop_rules", "process_dae", "mlp_step", "blackbox", "deblur"] \
        if args.section == "all" else args.section.split(",")
    for section in sections:
        getattr(bench, section)()
    RESULTS.mkdir(exist_ok=True)
    machine = {"cpu_count": os.cpu_count(), "platform": platform.platform(), "torch": str(torch.__version__),
               "threads": torch.get_num_threads()}
    out = RESULTS / f"attack-{'-'.join(sections)}-{args.only.replace(',', '-')}.json"
    out.write_text(json.dumps({"machine": machine, "repeats": args.repeats, **bench.results}, indent=1))
    print("saved", out)


if __name__ == "__main__":
    main()
