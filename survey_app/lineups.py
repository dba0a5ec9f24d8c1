"""Planning the five-face lineups of a study: exact target share, balanced positions, the target's photo of the
study's role, fillers by the study's policy (``fillers``), seeded.

Pure functions over plain values, so the invariants (the share, the balance over places and photo roles within
every group the analysis reports, five distinct subjects, the target's own photo never the one the item was made
from) are tested without a database.
"""
from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field

from .fillers import FillerError, RandomFillers

LINEUP_SIZE = 5
PHOTO_ROLES = ("validation", "train", "either")
"""Which of the target's photos a lineup shows: one the model never saw (validation, the default: people meet a
stranger in a new photo), one it trained on, or either (balanced between the two within each group)."""


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
    photo: str | None = None
    """The target's photo shown (present lineups)."""
    photo_role: str | None = None
    """Its role in the gallery (train or validation)."""
    fillers: dict = field(default_factory=dict)
    """What the filler policy did for this lineup (its name, how many fillers matched, their distances)."""


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
                 size: int = LINEUP_SIZE, roles: dict[str, str] | None = None, photo_role: str = "either",
                 fillers=None) -> dict[str, Plan]:
    """One lineup per target. ``gallery`` maps each subject to the photos lineups may show, ``roles`` each photo
    to its role (train / validation; all one role when not given), ``photo_role`` says which the target's photo
    must have, and ``fillers`` is the filler policy (``fillers.RandomFillers`` when not given). Target-present
    lineups are balanced within each ``Target.group`` (share, places, and, for ``either``, photo roles)."""
    if not 0.0 <= share <= 1.0:
        raise LineupError(f"the share of lineups containing the target must be in [0, 1], got {share}")
    if photo_role not in PHOTO_ROLES:
        raise LineupError(f"photo_role must be one of {', '.join(PHOTO_ROLES)}, got {photo_role!r}")
    subjects = sorted(s for s, photos in gallery.items() if photos)
    if len(subjects) < size + 1:
        raise LineupError(f"a {size}-face lineup needs photos of at least {size + 1} subjects in the gallery; "
                          f"it has {len(subjects)}")
    roles = roles or {}
    fillers = fillers or RandomFillers()
    rng = random.Random(seed)
    by_group: dict[tuple, list[Target]] = defaultdict(list)
    for t in sorted(targets, key=lambda t: t.key):
        by_group[t.group].append(t)
    counts = present_counts({g: len(ts) for g, ts in by_group.items()}, share, rng)

    present: list[Target] = []
    wanted_role: dict[str, str] = {}
    plans: dict[str, Plan] = {}
    for group in sorted(by_group):
        members = by_group[group][:]
        rng.shuffle(members)
        present += members[: counts[group]]
        # "either": train and validation photos alternate along the group's present lineups (to within one)
        first = rng.randrange(2)
        for i, t in enumerate(members[: counts[group]]):
            wanted_role[t.key] = photo_role if photo_role != "either" else ("train", "validation")[(first + i) % 2]
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
        try:
            foils, plan.fillers = fillers.choose(t.subject, others, size - 1 if plan.present else size, rng)
        except FillerError as exc:
            raise LineupError(f"item {t.key!r}: {exc}") from None
        foils = list(foils)
        rng.shuffle(foils)
        if plan.present:
            plan.photo = _target_photo(t, gallery, roles, wanted_role[t.key], photo_role, rng)
            plan.photo_role = roles.get(plan.photo)
        # fillers' photos of the target's photo's role where they have one, so the target's does not stand out
        like = plan.photo_role or (photo_role if photo_role != "either" else None)
        faces = [(s, rng.choice([p for p in gallery[s] if roles.get(p) == like] or gallery[s])) for s in foils]
        if plan.present:
            faces.insert(plan.target_position, (t.subject, plan.photo))
        plan.faces = faces
    return plans


def _target_photo(t: Target, gallery: dict[str, list[str]], roles: dict[str, str], wanted: str, setting: str,
                  rng: random.Random) -> str:
    own = [p for p in gallery.get(t.subject, []) if p not in t.exclude]
    if not own:
        raise LineupError(f"item {t.key!r}: the gallery has no photo of {t.subject!r} "
                          "other than the one the item was made from")
    if not roles:
        return rng.choice(own)
    of_role = [p for p in own if roles.get(p) == wanted]
    if of_role:
        return rng.choice(of_role)
    if setting == "either":  # the subject has photos of one role only: balance is kept where it can be
        return rng.choice(own)
    raise LineupError(f"item {t.key!r}: the gallery has no {wanted} photo of {t.subject!r} (other than the one "
                      f"the item was made from); choose another photo_role (train, validation or either)")
