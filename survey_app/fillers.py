"""Who stands beside the target in a lineup: the study's filler policy.

Eyewitness research judges a lineup by whether someone who never saw the culprit can pick them out (mock witnesses):
fillers that differ from the target on a visible trait make that easy. With random fillers a woman's AT&T lineup is
usually one woman among four men, and a worker can pick the target from the reconstruction's apparent sex alone.

* ``random``: any other subjects, as in the paper (the default, for reproducing it).
* ``matched``: subjects with the target's values of the named attribute columns (``matched_on``, e.g. ``sex``);
  where the gallery has too few, the rest are those matching on the most columns, and the lineup records how many
  fillers matched on all of them (with 4 women among the 40 AT&T subjects, a woman's lineup can hold at most 3
  other women).
* ``similar``: subjects close to the target in the deep face judge's descriptor space (dlib's 128-d face
  descriptor, ``mi_harness.deep_face``), excluding near-duplicates. Subjects are compared by the mean descriptor of
  their gallery photos. Bounds, measured on the 400 AT&T photos (``bench/measure_filler_bounds.py``; README):

  - different subjects' mean descriptors lie 0.442 to 0.957 apart (median 0.678, 25th percentile 0.628);
  - the same person under two names (the means of two disjoint halves of a subject's 10 photos, all 126 splits
    that keep photo 1 on one side, 40 subjects) lies 0.137 apart at the median, 0.313 at the 99th percentile
    (0.549 at most).

  ``NEAR_DUPLICATE`` (0.35) sits above the 99th percentile of the same person (it catches 99.3% of the half-splits)
  and below every pair of distinct AT&T subjects (none is left out): a filler closer than it is likely the target's
  own face under another name and is never used.
  ``SIMILAR_WITHIN`` (0.63, about the nearest quarter of pairs; a subject has 9 others within it at the median) bounds
  the pool a lineup's fillers are drawn from at random, so that lineups of one subject do not always repeat the same
  four faces; where fewer than the fillers needed lie within it, the nearest beyond it complete the pool, and the
  lineup records how many did.
"""
from __future__ import annotations

import csv
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

POLICIES = ("random", "similar", "matched")
NEAR_DUPLICATE = 0.35
"""Mean-descriptor distance under which two subjects are taken for one person (see the module's docstring)."""
SIMILAR_WITHIN = 0.63
"""Mean-descriptor distance within which another subject counts as similar (see the module's docstring)."""


class FillerError(ValueError):
    pass


@dataclass
class RandomFillers:
    name = "random"

    def choose(self, target: str, candidates: list[str], count: int, rng: random.Random) -> tuple[list[str], dict]:
        return rng.sample(candidates, count), {"policy": self.name}


@dataclass
class MatchedFillers:
    """Fillers with the target's values of ``columns``; ``attributes`` maps each subject to its values."""
    columns: tuple[str, ...]
    attributes: dict[str, dict[str, str]]
    name = "matched"

    def __post_init__(self) -> None:
        missing = sorted(s for s, values in self.attributes.items() if any(c not in values for c in self.columns))
        if not self.attributes or missing:
            raise FillerError(f"matched fillers on {', '.join(self.columns)} need those attributes for every subject "
                              f"of the gallery; {', '.join(missing[:5]) or 'all subjects'}"
                              f"{' and more' if len(missing) > 5 else ''} lack them")

    def agreement(self, a: str, b: str) -> int:
        return sum(self.attributes[a][c] == self.attributes[b][c] for c in self.columns)

    def choose(self, target: str, candidates: list[str], count: int, rng: random.Random) -> tuple[list[str], dict]:
        if target not in self.attributes:
            raise FillerError(f"subject {target!r} has no attributes: matched fillers need its "
                              f"{', '.join(self.columns)}")
        # the most matching columns first, at random within a tie
        ranked = sorted(candidates, key=lambda c: (-self.agreement(target, c), rng.random()))
        chosen = ranked[:count]
        full = sum(self.agreement(target, c) == len(self.columns) for c in chosen)
        return chosen, {"policy": self.name, "matched_on": list(self.columns), "matched": full}


@dataclass
class SimilarFillers:
    """Fillers drawn from the subjects nearest the target in descriptor space, never a near-duplicate."""
    distance: dict[str, dict[str, float]]
    """Subject -> subject -> distance between their mean descriptors."""
    near_duplicate: float = NEAR_DUPLICATE
    within: float = SIMILAR_WITHIN
    name = "similar"

    def choose(self, target: str, candidates: list[str], count: int, rng: random.Random) -> tuple[list[str], dict]:
        row = self.distance[target]
        eligible = sorted((c for c in candidates if row[c] >= self.near_duplicate), key=lambda c: (row[c], c))
        if len(eligible) < count:
            raise FillerError(f"subject {target!r}: only {len(eligible)} other subjects are farther than the "
                              f"near-duplicate bound {self.near_duplicate} in face-descriptor space; a lineup "
                              f"needs {count} fillers")
        pool = [c for c in eligible if row[c] <= self.within]
        beyond = max(0, count - len(pool))
        pool = eligible[: len(pool) + beyond]
        chosen = rng.sample(pool, count)
        return chosen, {"policy": self.name, "distances": [round(row[c], 4) for c in chosen],
                        "beyond_similar": sum(row[c] > self.within for c in chosen),
                        "near_duplicates_left_out": sum(row[c] < self.near_duplicate for c in candidates)}


@dataclass
class GalleryFacts:
    """What the filler policies need to know of a gallery beyond its photo names."""
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)
    """Subject -> its photos' pixels (for ``similar``); read only when that policy is chosen."""


def subject_attributes(photo_attributes: list[tuple[str, dict]]) -> dict[str, dict[str, str]]:
    """One set of attribute values per subject from its photos' attributes; photos of one subject that disagree on a
    value are refused, naming them (a subject cannot be matched on a trait it both has and lacks)."""
    out: dict[str, dict[str, str]] = {}
    problems = []
    for subject, attributes in photo_attributes:
        known = out.setdefault(subject, {})
        for column, value in (attributes or {}).items():
            if known.setdefault(column, value) != value:
                problems.append(f"subject {subject!r}: its photos give {column} as both {known[column]!r} and "
                                f"{value!r}")
    if problems:
        raise FillerError("; ".join(sorted(set(problems))[:5]))
    return out


def read_attributes_csv(path: str | Path) -> dict[str, dict[str, str]]:
    """A CSV with a ``subject`` (or ``identity``) column and one column per attribute, e.g. the AT&T faces'
    ``att_faces_attributes.csv`` (``subject,sex``)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            key = next((c for c in ("subject", "identity") if c in header), None)
            if key is None:
                raise FillerError(f"{path}: an attributes CSV needs a subject (or identity) column; it has "
                                  f"{', '.join(header) or 'no header'}")
            if len(header) < 2:
                raise FillerError(f"{path}: no attribute columns beside {key}")
            out: dict[str, dict[str, str]] = {}
            for line, row in enumerate(reader, start=2):
                subject = (row.get(key) or "").strip()
                if not subject:
                    raise FillerError(f"{path}, line {line}: no {key}")
                if subject in out:
                    raise FillerError(f"{path}, line {line}: {subject!r} appears twice")
                out[subject] = {c: (row.get(c) or "").strip() for c in header if c != key}
    except OSError as exc:
        raise FillerError(f"cannot read the attributes CSV {path}: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise FillerError(f"{path} is not a readable CSV: {exc}") from None
    return out


def subject_distances(images: dict[str, list[np.ndarray]]) -> dict[str, dict[str, float]]:
    """Distances between subjects' mean deep-face descriptors (cached per photo by ``mi_harness.deep_face``)."""
    from mi_harness.deep_face import DeepFaceJudge, DeepJudgeUnavailable, distances

    subjects = sorted(images)
    try:
        judge = DeepFaceJudge()
    except DeepJudgeUnavailable as exc:
        raise FillerError(f"similar fillers need the deep face judge: {exc}") from None
    flat = [_as_rgb(photo) for s in subjects for photo in images[s]]
    descriptors = np.zeros((len(flat), 128))
    for shape in {p.shape for p in flat}:  # photos of one size at a time (a gallery may mix sizes)
        index = [k for k, p in enumerate(flat) if p.shape == shape]
        descriptors[index] = judge.gallery_descriptors(np.stack([flat[k] for k in index]))
    means, start = [], 0
    for s in subjects:
        means.append(descriptors[start:start + len(images[s])].mean(axis=0))
        start += len(images[s])
    matrix = distances(np.stack(means), np.stack(means))
    return {a: {b: float(matrix[i, j]) for j, b in enumerate(subjects)} for i, a in enumerate(subjects)}


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """Grey photos as colour, so grey and colour photos of one gallery are described alike (as the judge would)."""
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image


def policy_for(name: str, matched_on: tuple[str, ...], facts: GalleryFacts):
    """The policy object a study's settings name, built from the gallery's facts."""
    if name == "random":
        return RandomFillers()
    if name == "matched":
        return MatchedFillers(matched_on, facts.attributes)
    if name == "similar":
        return SimilarFillers(subject_distances(facts.images))
    raise FillerError(f"unknown filler policy {name!r} (known: {', '.join(POLICIES)})")
