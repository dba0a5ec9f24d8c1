"""Planning the five-face lineups of a study: exact target share, balanced positions, seeded.

Pure functions over plain values, so the invariants (the share, the balance over places, five distinct
subjects, the target's own photo never the one the item was made from) are tested without a database.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field

LINEUP_SIZE = 5


class LineupError(ValueError):
    pass


@dataclass(frozen=True)
class Target:
    """What a lineup is built around: an item's subject, its group, and photos that must not appear."""
    key: str
    subject: str
    group: tuple[str, ...]
    exclude: frozenset[str] = frozenset()


@dataclass
class Plan:
    present: bool
    target_position: int | None
    faces: list[tuple[str, str]] = field(default_factory=list)
    """(subject, photo) at each place."""


def present_counts(groups: dict[tuple, int], share: float, rng: random.Random) -> dict[tuple, int]:
    """How many lineups of each group contain the target: exactly round(share * total) in all, each group
    as near its own share as whole numbers allow (largest remainder, ties broken at random)."""
    total = sum(groups.values())
    wanted = math.floor(share * total + 0.5)
    exact = {g: share * n for g, n in groups.items()}
    counts = {g: math.floor(v) for g, v in exact.items()}
    order = sorted(groups, key=lambda g: (-(exact[g] - counts[g]), rng.random()))
    for g in order[: wanted - sum(counts.values())]:
        counts[g] += 1
    return counts


def plan_lineups(targets: list[Target], gallery: dict[str, list[str]], share: float, seed: int,
                 size: int = LINEUP_SIZE) -> dict[str, Plan]:
    """One lineup per target. ``gallery`` maps each subject to the photos lineups may show."""
    if not 0.0 <= share <= 1.0:
        raise LineupError(f"the share of lineups containing the target must be in [0, 1], got {share}")
    subjects = sorted(s for s, photos in gallery.items() if photos)
    if len(subjects) < size + 1:
        raise LineupError(f"a {size}-face lineup needs photos of at least {size + 1} subjects in the gallery; "
                          f"it has {len(subjects)}")
    rng = random.Random(seed)
    by_group: dict[tuple, list[Target]] = defaultdict(list)
    for t in sorted(targets, key=lambda t: t.key):
        by_group[t.group].append(t)
    counts = present_counts({g: len(ts) for g, ts in by_group.items()}, share, rng)

    present: list[Target] = []
    plans: dict[str, Plan] = {}
    for group in sorted(by_group):
        members = by_group[group][:]
        rng.shuffle(members)
        present += members[: counts[group]]
        for t in members[counts[group]:]:
            plans[t.key] = Plan(False, None)
    # Consecutive places along the groups' present lineups: every place is used equally often overall and
    # within each group, to within one.
    offset = rng.randrange(size)
    for i, t in enumerate(present):
        plans[t.key] = Plan(True, (offset + i) % size)

    for t in sorted(targets, key=lambda t: t.key):
        plan = plans[t.key]
        others = [s for s in subjects if s != t.subject]
        foils = rng.sample(others, size - 1 if plan.present else size)
        faces = [(s, rng.choice(gallery[s])) for s in foils]
        if plan.present:
            own = [p for p in gallery.get(t.subject, []) if p not in t.exclude]
            if not own:
                raise LineupError(f"item {t.key!r}: the gallery has no photo of {t.subject!r} "
                                  "other than the one the item was made from")
            faces.insert(plan.target_position, (t.subject, rng.choice(own)))
        plan.faces = faces
    return plans
