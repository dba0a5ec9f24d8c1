"""A 1,000-identity gallery (30 photos each) against the 40-subject AT&T one: conversion, study creation and the
worker cycle, on SQLite and PostgreSQL (BENCHMARKS.md, "A large gallery").

    .venv/bin/python bench/bench_large_gallery.py --repeats 3

The large dataset is synthetic (the scale test needs many identities, not real faces): each identity is a smooth
random colour pattern at 64x64, each of its 30 photos that pattern shifted, re-lit and with noise; one
reconstruction per identity (its mean photo, blurred) in a toolbox's class folders, with a class-index map. It is
made once into a temporary folder and converted (`mi_harness.convert`, timed). The baseline is the 40-subject study
the cycle benchmark uses, the paper authors' 198 reconstructions with the 400 AT&T photos, converted the same way and
created and driven in the same run.

Per database and repeat, for each study: the time `create_from_source` takes on a fresh database (reading and
checking the bundle, screening, lineups, storing the images), then the cycle of bench_cycle.py (task page, its
images, the answer, as --people workers with no think time) for --seconds against a fresh `mi-harness serve`, and
every acknowledged answer checked against the database. Medians over repeats; results in
bench/results/large_gallery.json.
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

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter
from sqlalchemy.orm import Session
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cycle import (  # noqa: E402
    PAPER,
    RESULTS,
    check_answers,
    free_port,
    fresh_database,
    percentiles,
    run_crowd,
    start_server,
)

from mi_harness.convert import convert  # noqa: E402
from mi_harness.galleries import default_gallery_dir, from_folder  # noqa: E402
from survey_app.db import make_engine  # noqa: E402
from survey_app.importer import create_from_source  # noqa: E402
from survey_app.migrate import upgrade  # noqa: E402
from survey_app.studies import set_run_status  # noqa: E402

SIZE = 64


def synthetic_dataset(root: Path, identities: int, photos: int, seed: int = 0) -> tuple[Path, Path, Path]:
    """gallery/<id>/<n>.png, recon/<class>/0.png and classes.json under ``root``."""
    rng = np.random.default_rng(seed)
    names = [f"id{k:04d}" for k in range(identities)]
    for k, name in enumerate(tqdm(names, desc="synthetic identities")):
        pattern = gaussian_filter(rng.random((SIZE, SIZE, 3)), (4, 4, 0))
        pattern = (pattern - pattern.min()) / np.ptp(pattern)
        (root / "gallery" / name).mkdir(parents=True)
        (root / "recon" / str(k)).mkdir(parents=True)
        shots = []
        for n in range(1, photos + 1):
            moved = np.roll(pattern, tuple(rng.integers(-2, 3, 2)), axis=(0, 1))
            shot = np.clip(moved * rng.uniform(0.8, 1.2) + rng.normal(0, 0.04, moved.shape), 0, 1)
            shots.append(shot)
            Image.fromarray((shot * 255).astype(np.uint8), "RGB").save(root / "gallery" / name / f"{n}.png")
        recon = gaussian_filter(np.mean(shots, axis=0), (1.5, 1.5, 0))
        Image.fromarray((recon * 255).astype(np.uint8), "RGB").save(root / "recon" / str(k) / "0.png")
    (root / "classes.json").write_text(json.dumps(names))
    return root / "gallery", root / "recon", root / "classes.json"


def create(url: str, source: dict, answers_per_item: int) -> tuple[str, float]:
    upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as db:
            start = time.perf_counter()
            study = create_from_source(db, "bench", {"answers_per_item": answers_per_item}, **source)
            set_run_status(db, study, 1, "open")
            db.commit()
            seconds = time.perf_counter() - start
    finally:
        engine.dispose()
    return study.slug, seconds


def measure(kind: str, label: str, source: dict, args, workdir: Path) -> dict:
    url, drop = fresh_database(kind, workdir)
    try:
        slug, seconds = create(url, source, answers_per_item=10_000)
        port = free_port()
        server = start_server(url, port, args.workers, args.threads)
        try:
            prefix = f"L{secrets.token_hex(3)}"
            cycle = run_crowd(f"http://127.0.0.1:{port}", slug, prefix, "cycle", args.people, 3, args.seconds,
                              server.pid, warmup=args.warmup)
        finally:
            server.terminate()
            server.wait(timeout=30)
        answers = check_answers(url, cycle["acks"], prefix)
    finally:
        drop()
    result = {"database": kind, "study": label, "create_s": round(seconds, 2),
              "cycles_per_s": round(cycle["counts"]["answers_in_window"] / args.seconds, 1),
              "answer_p95_ms": percentiles(cycle["latency_us"].get("answer", [])).get("p95_ms"),
              "page_p95_ms": percentiles(cycle["latency_us"].get("page", [])).get("p95_ms"),
              "lost": answers["lost"] + answers["changed"], "duplicated": answers["duplicated"],
              "load_average": os.getloadavg()}
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], action="append")
    parser.add_argument("--identities", type=int, default=1000)
    parser.add_argument("--photos", type=int, default=30)
    parser.add_argument("--people", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) + 1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", help="a folder that keeps the synthetic dataset and the bundles between runs")
    parser.add_argument("--out", default=str(RESULTS / "large_gallery.json"))
    args = parser.parse_args()
    databases = args.database or ["sqlite", "postgresql"]
    output = {"settings": vars(args), "load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="mi-bench-large-") as scratch:
        tmp = Path(args.keep or scratch)
        data = tmp / "data"
        if (data / "classes.json").is_file():  # --keep: the dataset of an earlier run
            gallery_dir, recon, classes = data / "gallery", data / "recon", data / "classes.json"
        else:
            gallery_dir, recon, classes = synthetic_dataset(tmp / "data", args.identities, args.photos)
        large = f"large_{args.identities}"
        conversions = {
            "att_40": lambda: convert(tmp / "att_40", from_folder(default_gallery_dir()), folder=PAPER,
                                      csv_path=PAPER / "manifest.csv", where={"kind": "final_image"}),
            large: lambda: convert(tmp / large, from_folder(gallery_dir), folder=recon, class_map=classes,
                                   model="synthetic")}
        output["bundles"] = {}
        for label, make in conversions.items():
            start = time.perf_counter()
            bundle = make()
            output["bundles"][label] = {"convert_s": round(time.perf_counter() - start, 1),
                                        "items": len(bundle.items), "gallery": len(bundle.gallery)}
        print(json.dumps(output["bundles"]), flush=True)
        sources = {label: {"bundle": str(tmp / label)} for label in conversions}
        runs = [measure(kind, label, source, args, tmp) for _ in range(args.repeats) for kind in databases
                for label, source in sources.items()]
    medians = {}
    for kind in databases:
        for label in sources:
            mine = [r for r in runs if r["database"] == kind and r["study"] == label]
            medians[f"{kind}/{label}"] = {key: statistics.median(r[key] for r in mine)
                                         for key in ("create_s", "cycles_per_s", "answer_p95_ms", "page_p95_ms")}
            medians[f"{kind}/{label}"].update(lost=sum(r["lost"] for r in mine),
                                              duplicated=sum(r["duplicated"] for r in mine))
    output.update(runs=runs, medians=medians, load_average_after=os.getloadavg())
    print(json.dumps(medians, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(output, indent=1))


if __name__ == "__main__":
    main()
