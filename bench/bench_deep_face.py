"""The deep face judge and screening, measured (issue 9); results go into BENCHMARKS.md.

    .venv/bin/python bench/bench_deep_face.py --paper runs/paper --out runs/bench/deep_face.json

Measures, on this machine: leave-one-out top-1 of dlib's descriptor over the 400 AT&T photos; the judge's
seconds per image (median of --repeats runs on 40 photos) against the pixel judge's in the same run; what the
judge makes of noise and constant images (top-1 over 40 subjects, distance to the nearest photo, answers on
five-face lineups whose target is present); and the two screening statistics on the photos, the paper authors'
reconstructions (a bundle made by `mi-harness bundle convert`, see README), noise and constants.
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

from attack.faces import Split, load_faces
from attack.gallery import att_references
from mi_harness.bundle import read_bundle
from mi_harness.deep_face import (
    ABSENT,
    SAME_PERSON_DISTANCE,
    DeepFaceJudge,
    distances,
    lineup_choice,
    subject_distances,
    true_subject_ranks,
)
from mi_harness.evaluate import Recogniser
from mi_harness.screening import screen_images


def noise_images(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    from PIL import Image

    smooth = [np.asarray(Image.fromarray((rng.random((28, 23)) * 255).astype(np.uint8)).resize((92, 112),
                                                                                                Image.BICUBIC))
              / 255.0 for _ in range(n)]
    return {"uniform noise": rng.random((n, 112, 92)),
            "Gaussian noise (0.5, 0.15)": np.clip(rng.normal(0.5, 0.15, (n, 112, 92)), 0, 1),
            "smooth noise (4x upsampled)": np.stack(smooth),
            "constant": np.repeat(np.linspace(0, 1, n)[:, None], 112 * 92, 1).reshape(n, 112, 92),
            "constant + quantisation noise": np.clip(np.linspace(0.05, 0.95, n)[:, None, None]
                                                     + rng.normal(0, 0.005, (n, 112, 92)), 0, 1)}


def lineup_hits(rng, probe: np.ndarray, gallery: np.ndarray, labels: np.ndarray, truth: np.ndarray) -> float:
    """Target-present five-face lineups (target at a random place, four other subjects): the judge's hit rate."""
    hits = 0
    for descriptor, subject in zip(probe, truth):
        others = rng.choice(np.setdiff1d(np.arange(40), [subject]), 4, replace=False)
        shown = [rng.choice(np.flatnonzero(labels == s)) for s in others]
        place = int(rng.integers(5))
        shown.insert(place, rng.choice(np.flatnonzero(labels == subject)))
        hits += lineup_choice(descriptor, gallery[shown], allow_absent=False) == place
    return hits / len(probe)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper", type=Path, help="The paper authors' reconstructions as a bundle.")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--noise", type=int, default=100, help="Images of each noise kind.")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/deep_face.json"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    faces = load_faces(None)
    judge = DeepFaceJudge()
    result: dict = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                    "threads": os.environ.get("OMP_NUM_THREADS", "default")}

    sample = faces.images[np.arange(0, 400, 10)]
    recogniser = Recogniser(att_references(faces, Split.make(0)))
    deep_t, pixel_t = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        judge.descriptors(sample, progress=False)
        deep_t.append((time.perf_counter() - start) / len(sample))
        start = time.perf_counter()
        recogniser.subject_ranks(sample, faces.labels[np.arange(0, 400, 10)])
        pixel_t.append((time.perf_counter() - start) / len(sample))
    result["seconds_per_image"] = {"deep": statistics.median(deep_t), "pixel_and_eigen": statistics.median(pixel_t),
                                   "ratio": statistics.median(deep_t) / statistics.median(pixel_t)}

    start = time.perf_counter()
    gallery = judge.descriptors(faces.images)
    result["gallery_seconds"] = time.perf_counter() - start
    dist = distances(gallery, gallery)
    np.fill_diagonal(dist, np.inf)
    same = faces.labels[:, None] == faces.labels[None]
    result["leave_one_out"] = {
        "top1": float((faces.labels[dist.argmin(1)] == faces.labels).mean()),
        "nearest_distance_quantiles": np.quantile(dist.min(1), [0, 0.5, 0.99, 1]).round(3).tolist(),
        "same_person_pairs_under_threshold": float((dist[same & np.isfinite(dist)] < SAME_PERSON_DISTANCE).mean()),
        "different_person_pairs_under_threshold": float((dist[~same] < SAME_PERSON_DISTANCE).mean())}

    kinds = noise_images(rng, args.noise)
    result["noise"] = {}
    for kind, images in kinds.items():
        descriptors = judge.descriptors(images, progress=False)
        truth = np.arange(len(images)) % 40
        per_subject = subject_distances(descriptors, gallery, faces.labels, 40)
        nearest = per_subject.min(1)
        verdicts = screen_images(images)
        result["noise"][kind] = {
            "n": len(images), "top1": float((true_subject_ranks(per_subject, truth) == 0).mean()),
            "distinct_subjects_named": int(len(set(per_subject.argmin(1)))),
            "nearest_distance_min_max": [round(float(nearest.min()), 3), round(float(nearest.max()), 3)],
            "under_same_person_threshold": float((nearest < SAME_PERSON_DISTANCE).mean()),
            "lineup_hit_rate": lineup_hits(rng, descriptors, gallery, faces.labels, truth),
            "lineup_absent_share": float(np.mean([lineup_choice(d, gallery[rng.choice(400, 5, replace=False)])
                                                  == ABSENT for d in descriptors])),
            "screening_flagged": {r: sum(v.reason == r for v in verdicts) for r in ("constant", "grain")},
            "structure_min_max": [round(min(v.structure for v in verdicts), 3),
                                  round(max(v.structure for v in verdicts), 3)],
            "spread_min_max": [round(min(v.spread for v in verdicts), 3), round(max(v.spread for v in verdicts), 3)]}

    sets = {"AT&T photos": faces.images}
    if args.paper:
        bundle = read_bundle(args.paper)
        sets["paper authors' reconstructions"] = np.stack([bundle.load_image(i.image) for i in bundle.items])
    result["screening"] = {}
    for name, images in sets.items():
        verdicts = screen_images(images)
        result["screening"][name] = {
            "n": len(images), "flagged": sum(not v.usable for v in verdicts),
            "structure_min_max": [round(min(v.structure for v in verdicts), 3),
                                  round(max(v.structure for v in verdicts), 3)],
            "spread_min_max": [round(min(v.spread for v in verdicts), 3), round(max(v.spread for v in verdicts), 3)]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
