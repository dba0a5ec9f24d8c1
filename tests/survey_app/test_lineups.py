"""The lineup planner's invariants, on a realistic gallery (40 subjects, 10 photos each)."""
import re
from collections import Counter

import pytest

from survey_app.lineups import LineupError, Target, plan_lineups, present_counts

GALLERY = {f"s{n}": [f"s{n}/{k}" for k in range(1, 11)] for n in range(1, 41)}


def targets(groups=(("softmax", "none"), ("mlp", "none"), ("dae", "round:0.01")), subjects=40):
    return [Target(f"{g[0]}-{g[1]}-s{n}", f"s{n}", g) for g in groups for n in range(1, subjects + 1)]


@pytest.mark.parametrize("share", [0.8, 0.5, 0.0, 1.0, 0.37])
def test_exactly_the_share_contains_the_target_and_each_group_gets_its_part(share):
    ts = targets()
    plans = plan_lineups(ts, GALLERY, share, seed=1)
    assert sum(p.present for p in plans.values()) == round(share * len(ts))
    for group in {t.group for t in ts}:
        members = [plans[t.key] for t in ts if t.group == group]
        assert abs(sum(p.present for p in members) - share * len(members)) < 1


def test_target_positions_are_balanced_overall_and_within_groups():
    ts = targets()
    plans = plan_lineups(ts, GALLERY, 0.8, seed=3)
    overall = Counter(p.target_position for p in plans.values() if p.present)
    assert set(overall) == set(range(5)) and max(overall.values()) - min(overall.values()) <= 1
    for group in {t.group for t in ts}:
        within = Counter(plans[t.key].target_position for t in ts if t.group == group and plans[t.key].present)
        assert max(within.values()) - min(within.values()) <= 1


def test_five_distinct_subjects_with_the_target_exactly_where_recorded():
    ts = targets()
    plans = plan_lineups(ts, GALLERY, 0.8, seed=5)
    for t in ts:
        plan = plans[t.key]
        subjects = [s for s, _ in plan.faces]
        assert len(plan.faces) == 5 and len(set(subjects)) == 5
        assert (t.subject in subjects) == plan.present
        if plan.present:
            assert subjects[plan.target_position] == t.subject
        assert all(photo in GALLERY[s] for s, photo in plan.faces)


def test_the_photo_an_item_was_made_from_is_never_its_lineup_photo():
    ts = [Target(f"deblur-{k}", "s1", ("deblur",), frozenset({f"s1/{k}"})) for k in range(1, 10)]
    plans = plan_lineups(ts, {**GALLERY, "s1": ["s1/1", "s1/2"]}, 1.0, seed=0)
    for t in ts:
        assert plans[t.key].faces[plans[t.key].target_position][1] not in t.exclude


def test_seeded_and_reproducible():
    ts = targets()
    assert plan_lineups(ts, GALLERY, 0.8, seed=7) == plan_lineups(list(reversed(ts)), GALLERY, 0.8, seed=7)
    assert plan_lineups(ts, GALLERY, 0.8, seed=7) != plan_lineups(ts, GALLERY, 0.8, seed=8)


def test_largest_remainder_allocation_is_exact():
    import random

    counts = present_counts({("a",): 3, ("b",): 3, ("c",): 3}, 0.5, random.Random(0))
    assert sum(counts.values()) == 5 and sorted(counts.values()) == [1, 2, 2]


@pytest.mark.parametrize("gallery, share, message", [
    ({f"s{n}": ["x"] for n in range(1, 6)}, 0.8, "at least 6 subjects"),
    (GALLERY, 1.5, re.escape("must be in [0, 1]")),
])
def test_impossible_requests_are_refused_with_the_reason(gallery, share, message):
    with pytest.raises(LineupError, match=message):
        plan_lineups(targets(subjects=3), gallery, share, seed=0)


def test_a_target_with_no_other_photo_is_refused():
    only = Target("d", "s1", ("deblur",), frozenset({"s1/1"}))
    with pytest.raises(LineupError, match="no photo of 's1' other than"):
        plan_lineups([only], {**GALLERY, "s1": ["s1/1"]}, 1.0, seed=0)
