"""The bounds of the ``similar`` filler policy (survey_app/fillers.py), measured on a gallery's face descriptors.

    .venv/bin/python bench/measure_filler_bounds.py [--gallery ../shared/data/att_faces] [--attributes CSV]

Subjects are compared as the policy compares them: by the distance between the means of their photos' dlib face
descriptors (mi_harness.deep_face, cached per photo). Printed:

- the distances between different subjects (min, percentiles, max), and each subject's nearest others;
- the distances between two halves of one subject's photos (the means of two disjoint halves, every split that keeps
  the first photo in the first half): how far apart the same person lies under two names, which is what the
  near-duplicate bound must catch;
- with ``--attributes``, each subject of the rarest value's nearest others (on AT&T: does "similar" give a woman
  other women? It does not, which is why the matched policy exists).

A measurement, not a speed benchmark: the numbers are quoted in survey_app/fillers.py and the README. Results are
saved under bench/results/filler_bounds.json.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

import numpy as np

from mi_harness.deep_face import DeepFaceJudge, distances
from mi_harness.galleries import default_gallery_dir, load_photo, open_gallery
from survey_app.fillers import NEAR_DUPLICATE, SIMILAR_WITHIN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", help="A gallery folder or CSV [the AT&T faces]")
    parser.add_argument("--attributes", help="A subject,COLUMN CSV, to see whom 'similar' puts beside each value")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "filler_bounds.json"))
    args = parser.parse_args()

    gallery = open_gallery(args.gallery or default_gallery_dir())
    subjects = gallery.identities
    photos = {s: [load_photo(p.path, colour=gallery.colour) for p in gallery.photos_of(s)] for s in subjects}
    judge = DeepFaceJudge()
    descriptors = {s: judge.gallery_descriptors(np.stack(photos[s]), progress=False) for s in subjects}
    means = np.stack([descriptors[s].mean(axis=0) for s in subjects])
    between = distances(means, means)
    pairs = between[np.triu_indices(len(subjects), 1)]
    same = []
    for s in subjects:
        d = descriptors[s]
        n = len(d)
        for half in itertools.combinations(range(1, n), n // 2 - 1):
            first = [0, *half]
            second = [k for k in range(n) if k not in first]
            same.append(float(np.linalg.norm(d[first].mean(axis=0) - d[second].mean(axis=0))))
    same = np.array(same)
    np.fill_diagonal(between, np.inf)
    nearest = np.sort(between, axis=1)
    result = {
        "gallery": str(gallery.source), "subjects": len(subjects), "photos": sum(len(v) for v in photos.values()),
        "different_subjects": {"min": pairs.min(), "p1": np.percentile(pairs, 1), "p5": np.percentile(pairs, 5),
                               "p25": np.percentile(pairs, 25), "median": np.median(pairs), "max": pairs.max()},
        "same_subject_halves": {"splits": len(same), "median": np.median(same), "p95": np.percentile(same, 95),
                                "p99": np.percentile(same, 99), "max": same.max()},
        "nearest_other": {"min": nearest[:, 0].min(), "median": np.median(nearest[:, 0]), "max": nearest[:, 0].max()},
        "others_within_similar_bound_median": float(np.median((nearest <= SIMILAR_WITHIN).sum(axis=1))),
        "near_duplicate_pairs": int((pairs < NEAR_DUPLICATE).sum()),
        "same_subject_halves_caught": float((same < NEAR_DUPLICATE).mean()),
        "bounds": {"near_duplicate": NEAR_DUPLICATE, "similar_within": SIMILAR_WITHIN},
    }
    if args.attributes:
        with open(args.attributes, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.DictReader(handle))
        column = [c for c in rows[0] if c not in ("subject", "identity")][0]
        value = {r.get("subject") or r.get("identity"): r[column] for r in rows}
        rare = min(set(value.values()), key=lambda v: sum(x == v for x in value.values()))
        result[f"nearest_four_of_each_{column}_{rare}"] = {
            s: [(subjects[j], value.get(subjects[j]), round(float(between[i, j]), 3))
                for j in np.argsort(between[i])[:4]]
            for i, s in enumerate(subjects) if value.get(s) == rare}
    result = json.loads(json.dumps(result, default=float))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
