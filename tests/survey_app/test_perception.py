"""The panel's perception on real AT&T lineups: blind where there is nothing a person could see, sighted on
photos, and unlike pixel correlation on a faint face buried in grain."""
import random

import numpy as np
import pytest
from scipy.stats import binomtest

from attack.faces import Split
from survey_app.perception import PIPELINE_EFFICIENCY, Observer, judge, noise_level
from survey_app.simulate import PROFILES, Persona, respond

KINDS = {name: Persona(name, name, float(np.mean(e)) if e else 0.0, float(np.mean(c)) if c else 0.0, 0)
         for name, (_, e, c, _, _) in PROFILES.items()}


def lineups(faces, count: int, seed: int = 0):
    """(subject, held-out photo, five training photos of five subjects, index of the subject's): target-present
    lineups, the target at a random place."""
    rng = random.Random(seed)
    split = Split.make(0)
    for _ in range(count):
        subjects = rng.sample(range(40), 5)
        probe = faces.images[faces.index_of(subjects[0], rng.choice(split.validation[subjects[0]]))]
        shown = [faces.images[faces.index_of(s, rng.choice(split.train[s]))] for s in subjects]
        order = list(range(5))
        rng.shuffle(order)
        yield subjects[0], probe, [shown[k] for k in order], order.index(0)


def pixel_choice(probe, shown) -> int:
    """The pixel judge's lineup answer: the face whose standardised pixels correlate best with the probe's."""
    z = [(x - x.mean()) / max(x.std(), 1e-12) for x in (probe, *shown)]
    return int(np.argmax([np.mean(z[0] * f) for f in z[1:]]))


def target_picks(persona, trials, can_say_absent, seed=1) -> tuple[int, int]:
    """(picks of the target, picks of any face) over ``trials`` (probe, faces, right)."""
    rng = random.Random(seed)
    choices = [(respond(persona, [probe], shown, can_say_absent, 0, rng)[0], right) for probe, shown, right in trials]
    picked = [(pick, right) for pick, right in choices if pick is not None]
    return sum(pick == right for pick, right in picked), len(picked)


@pytest.mark.parametrize("probe", ["blank", "noise"])
def test_every_kind_of_bot_is_at_chance_when_the_probe_shows_nothing(faces, probe):
    # 300 lineups: a bot right 30% of the time instead of 20% would be rejected (p < 0.001)
    noise = np.random.default_rng(7)
    trials = [(np.full_like(photo, 0.5) if probe == "blank" else np.clip(0.5 + 0.25 * noise.standard_normal(
        photo.shape), 0, 1), shown, right) for _, photo, shown, right in lineups(faces, 300)]
    for name, persona in KINDS.items():
        for can_say_absent in (False, True):
            hits, picks = target_picks(persona, trials, can_say_absent)
            assert picks >= 50, f"{name} picked a face in only {picks} of 300 lineups"
            p = binomtest(hits, picks, 0.2).pvalue
            assert p > 0.01, f"{name} picked the target {hits} times in {picks} on {probe} probes (p={p:.4f})"


def test_attentive_bots_recognise_held_out_photos_plain_and_lightly_noisy(faces):
    noise = np.random.default_rng(3)
    for level in (0.0, 0.05):
        trials = [(np.clip(photo + level * noise.standard_normal(photo.shape), 0, 1), shown, right)
                  for _, photo, shown, right in lineups(faces, 100, seed=2)]
        hits, picks = target_picks(KINDS["attentive"], trials, False)
        assert hits / picks >= 0.65 and binomtest(hits, picks, 0.2).pvalue < 1e-20, (level, hits, picks)


def test_a_faint_face_in_grain_that_pixel_correlation_finds_is_near_chance_for_attentive_bots(faces):
    """The subject's mean training photo at a fifth of its contrast on grey, under grain of standard deviation
    0.5 (clipped to the screen's range): pixel correlation integrates the noise away, the bots cannot."""
    split = Split.make(0)
    noise = np.random.default_rng(11)
    trials = []
    for subject, photo, shown, right in lineups(faces, 200, seed=4):
        mean = faces.images[[faces.index_of(subject, n) for n in split.train[subject]]].mean(axis=0)
        trials.append((np.clip(0.5 + 0.2 * (mean - mean.mean()) + 0.5 * noise.standard_normal(photo.shape), 0, 1),
                       shown, right))
    pixel = np.mean([pixel_choice(probe, shown) == right for probe, shown, right in trials])
    hits, picks = target_picks(KINDS["attentive"], trials, False)
    assert pixel >= 0.9, f"pixel correlation found the face in only {pixel:.0%}: the signal is too weak to test"
    assert hits / picks < 0.3, f"attentive bots found a face no person could see in {hits} of {picks} lineups"


def test_the_noise_estimate_sees_grain_not_faces(faces):
    photos = [noise_level(f) for f in faces.images[::10]]
    assert max(photos) < 0.03
    grain = faces.images[0] + 0.2 * np.random.default_rng(0).standard_normal(faces.images[0].shape)
    assert noise_level(grain) == pytest.approx(0.2, rel=0.15)
    assert noise_level(np.full((112, 92), 0.5)) == 0


def test_an_observer_cannot_be_more_efficient_than_its_computation():
    with pytest.raises(ValueError, match="efficiency"):
        Observer(PIPELINE_EFFICIENCY * 2, 0.0)
    assert Observer(PIPELINE_EFFICIENCY, 0.0).internal_noise(0.3) < Observer(0.001, 0.0).internal_noise(0.3)


def test_the_perception_is_as_efficient_as_its_constant_says(faces):
    """PIPELINE_EFFICIENCY is measured (bench/bench_panel.py --efficiency): the probe is one of the five lineup
    photos under white noise of sd 0.93, where the perception should be right about half the time and the ideal
    observer (template matching with the five photos) almost always; efficiency = (0.93 / 13.9)²."""
    split, pick, noise = Split.make(0), random.Random(5), np.random.default_rng(5)
    observer = Observer(PIPELINE_EFFICIENCY, 0.0)
    ideal = seen = 0
    for _ in range(150):
        shown = [faces.images[faces.index_of(s, pick.choice(split.train[s]))] for s in pick.sample(range(40), 5)]
        k = int(noise.integers(5))
        probe = shown[k] + 0.93 * noise.standard_normal(shown[k].shape)
        ideal += int(np.argmax([np.sum(probe * (f - f.mean())) for f in shown]) == k)
        seen += int(judge(observer, [probe], shown, False, noise).pick == k)
    assert ideal >= 140 and 50 <= seen <= 100, (ideal, seen)  # measured: 146 and 68


def test_confidence_follows_the_evidence_of_the_choice(faces):
    """On held-out photos an attentive bot's confident identifications are right more often than its guesses, and
    its ratings use the scale; on a blank probe it is not confident (its strength is the same margin, near nothing)."""
    persona = Persona("a", "attentive", PIPELINE_EFFICIENCY, 0.03, 0)
    rng = random.Random(2)
    rated = [(respond(persona, [probe], shown, True, 5, rng), right) for _, probe, shown, right in lineups(faces, 300)]
    picks = [(confidence, pick == right) for (pick, confidence), right in rated if pick is not None]
    assert len({c for c, _ in picks}) >= 4
    high = [ok for c, ok in picks if c >= 4]
    low = [ok for c, ok in picks if c <= 2]
    assert len(high) >= 20 and len(low) >= 20
    assert np.mean(high) > np.mean(low) + 0.2, (np.mean(high), np.mean(low))
    blank = [respond(persona, [np.full_like(probe, 0.5)], shown, True, 5, rng)
             for _, probe, shown, _ in lineups(faces, 60)]
    assert np.mean([c for pick, c in blank if pick is not None] or [1]) <= 2
    # a bot that answers without looking rates at random; a study without a scale gets no rating
    lapse = Persona("r", "random", 0.0, 0.0, 0)
    assert {respond(lapse, [probe], shown, True, 5, rng)[1] for _, probe, shown, _ in lineups(faces, 60)} == \
        {1, 2, 3, 4, 5}
    _, probe, shown, _ = next(lineups(faces, 1))
    assert respond(persona, [probe], shown, True, 0, rng)[1] is None
