"""The simulated panel: bot profiles, their choices on real faces, and a panel through the real server."""
import random
from collections import Counter

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text
from statsmodels.stats.proportion import proportions_ztest

from analysis.load import from_database
from attack.faces import Split
from mi_harness.cli import main
from survey_app.perception import local_energy
from survey_app.server import ServerProcess
from survey_app.simulate import Persona, personas, respond, run_panel

from .conftest import new_study


def test_a_panel_has_every_profile_in_its_share_and_is_reproducible():
    panel = personas(20, seed=3)
    assert Counter(p.profile for p in panel) == {"attentive": 11, "casual": 5, "careless": 2, "random": 2}
    assert len({p.worker_id for p in panel}) == 20
    assert [(p.profile, p.efficiency) for p in personas(20, seed=3)] == [(p.profile, p.efficiency) for p in panel]
    assert [p.profile for p in personas(20, seed=4)] != [p.profile for p in panel]
    attentive = [p.efficiency for p in panel if p.profile == "attentive"]
    assert min(attentive) >= 0.003 and max(p.efficiency for p in panel if p.profile == "casual") < min(attentive)
    assert all(p.efficiency == 0 and p.observer is None for p in panel if p.profile == "random")
    assert Counter(p.profile for p in personas(1)) == {"attentive": 1}
    with pytest.raises(ValueError, match="at least one"):
        personas(0)


def lineups(faces, count: int, seed: int = 0):
    """(probe, five faces, index of the probe's subject): the probe a validation photo, the faces training
    photos of five different subjects, the right one at a random place."""
    rng = random.Random(seed)
    split = Split.make(0)
    for _ in range(count):
        subjects = rng.sample(range(40), 5)
        probe = faces.images[faces.index_of(subjects[0], split.validation[subjects[0]][0])]
        shown = [faces.images[faces.index_of(s, rng.choice(split.train[s]))] for s in subjects]
        order = list(range(5))
        rng.shuffle(order)
        yield probe, [shown[k] for k in order], order.index(0)


def picks(faces, persona: Persona, can_say_absent: bool = False, count: int = 60) -> list[tuple[int | None, int]]:
    rng = random.Random(1)
    return [(respond(persona, [probe], shown, can_say_absent, 0, rng)[0], right)
            for probe, shown, right in lineups(faces, count)]


def test_attentive_bots_recognise_real_faces_and_random_ones_do_not(faces):
    attentive = picks(faces, Persona("a", "attentive", 0.004, 0.04, 0))
    rate = sum(pick == right for pick, right in attentive) / len(attentive)
    assert rate >= 0.7, f"an attentive bot picked the right person in only {rate:.0%} of lineups"
    casual = picks(faces, Persona("c", "casual", 0.0015, 0.02, 0))  # a third of its answers without looking
    assert sum(pick == right for pick, right in casual) / len(casual) < rate
    random_bot = picks(faces, Persona("r", "random", 0.0, 0.0, 0), can_say_absent=True, count=300)
    choices = Counter(pick for pick, _ in random_bot)
    assert set(choices) == {0, 1, 2, 3, 4, None} and max(choices.values()) < 80  # about 50 each
    careless = picks(faces, Persona("x", "careless", 0.0008, 0.01, 0), count=300)
    assert Counter(pick for pick, _ in careless)[0] > 130  # half its answers are face 1 unseen: ~ 60%


def test_a_flat_image_looks_like_no_one(faces):
    flat = faces.images[0] * 0 + 0.5
    assert not local_energy(flat).any()
    bot = Persona("a", "attentive", 0.004, 0.04, 0)
    shown = [faces.images[faces.index_of(s, 1)] for s in range(5)]
    assert respond(bot, [flat], shown, False, 0, random.Random(0))[0] in range(5)  # no NaN weights


def test_a_panel_takes_a_study_through_the_real_server(app, database, bundle_dir):
    study = new_study(app, bundle_dir, runs=3, open_runs=(1, 2, 3), answers_per_item=2, hit_size=10)
    # The four bots that do not look go first, by themselves, so that at least three take their full 20 answers in
    # run 1 (42 lineups, two answers each): sent together with attentive bots, whichever finished a HIT first took
    # the run's last lineups, and a few dozen answers are too few to tell them from the attentive ones.
    panel = personas(18, seed=0)
    looks = [p.profile not in ("random", "careless") for p in panel]
    first = [p for p, looking in zip(panel, looks) if not looking]
    with ServerProcess(database, workers=2, threads=8) as server:
        results = run_panel(server.base, study.slug, first, hits_per_worker=2, concurrency=len(first), progress=False)
        results += run_panel(server.base, study.slug, [p for p, looking in zip(panel, looks) if looking],
                             hits_per_worker=2, concurrency=6, progress=False)
        log = server.stop()
    assert "Traceback" not in log
    assert not [r.error for r in results if r.error]
    engine = create_engine(database)
    with engine.connect() as connection:
        stored = dict(connection.execute(text(
            "SELECT w.external_id, count(*) FROM answer a JOIN worker w ON w.id = a.worker_id GROUP BY 1")).all())
        codes = {c for (c,) in connection.execute(text("SELECT completion_code FROM hit WHERE completion_code "
                                                       "IS NOT NULL"))}
        duplicates = connection.execute(text("SELECT count(*) FROM (SELECT run_id, worker_id, lineup_id FROM answer "
                                             "GROUP BY 1, 2, 3 HAVING count(*) > 1) d")).scalar()
    engine.dispose()
    assert stored == {r.persona.worker_id: r.answers for r in results if r.answers}
    assert sum(stored.values()) == 42 * 2 * 3  # every lineup answered twice in each of the three runs
    assert {c for r in results for c in r.codes} == codes and duplicates == 0
    assert all(len(r.codes) <= 2 and r.answers <= 20 for r in results)
    frame = from_database(database, "study")
    by_worker = frame.groupby("worker").agg(correct=("correct", "mean"), skilled=("skilled", "first"))
    profile = {p.worker_id: p.profile for p in panel}
    attentive = [w for w in by_worker.index if profile[w] == "attentive"]
    careless = [w for w in by_worker.index if profile[w] in ("random", "careless")]
    # Attentive bots are right about two thirds of the time here (the items are each subject's mean training photo, a
    # fifth of the lineups lack the target), random and careless ones about a quarter (careless ones click the first
    # face unseen for half their answers). The hand-outs are not seeded, so both checks are sized to what these
    # counts can show: the attentive rate (some 140 answers) about 5 standard errors above 0.45, and the gap to the
    # others (60 to 80 answers) a one-sided two-proportion z-test at 1%, which gave p of 1e-7 to 1e-11 in eight runs
    # (equal rates fail it).
    assert by_worker.loc[attentive, "correct"].mean() > 0.45
    groups = [frame[frame["worker"].isin(who)]["correct"] for who in (attentive, careless)]
    assert len(groups[1]) >= 60
    _, p_value = proportions_ztest([g.sum() for g in groups], [len(g) for g in groups], alternative="larger")
    assert p_value < 0.01, f"attentive {groups[0].mean():.2f} against careless and random {groups[1].mean():.2f}"
    assert not any(by_worker.loc[w, "skilled"] for w in by_worker.index if profile[w] in ("random", "careless"))


def test_simulate_command_names_what_is_wrong(database, bundle_dir, app):
    runner = CliRunner()
    result = runner.invoke(main, ["simulate", "nosuch", "--database", database])
    assert result.exit_code == 1 and "no study 'nosuch'" in result.output
    new_study(app, bundle_dir, name="closed", open_runs=())
    result = runner.invoke(main, ["simulate", "closed", "--database", database])
    assert result.exit_code == 1 and "no run of study 'closed' is open" in result.output
    result = runner.invoke(main, ["simulate", "closed", "--database", database, "--workers", "0"])
    assert result.exit_code == 2 and "at least 1" in result.output


def test_simulate_command_answers_a_study_and_writes_its_panel(database, bundle_dir, app, tmp_path):
    study = new_study(app, bundle_dir, name="rehearsal", answers_per_item=1)
    result = CliRunner().invoke(main, ["simulate", f"/s/{study.slug}/", "--database", database, "--workers", "6",
                                       "--hits-per-worker", "1", "--csv", str(tmp_path / "panel.csv")])
    assert result.exit_code == 0, result.output
    rows = (tmp_path / "panel.csv").read_text().splitlines()
    assert rows[0].startswith("worker,profile,efficiency") and len(rows) == 7
    answered = sum(int(line.split(",")[4]) for line in rows[1:])
    assert answered == len(from_database(database, "rehearsal")) == 42  # 6 bots x 1 HIT of 10 > 42 lineups
    assert "attentive: " in result.output


def test_the_panel_answers_control_items_and_rates_its_confidence(app, database, bundle_dir):
    """Through the real server: the radio-button page of a study that asks for confidence, and control items."""
    study = new_study(app, bundle_dir, name="rated", answers_per_item=1, hit_size=12, confidence_scale=4,
                      control_items=6, control_probe="silhouette")
    with ServerProcess(database, workers=1, threads=4) as server:
        results = run_panel(server.base, study.slug, personas(6, seed=3), hits_per_worker=1, concurrency=3,
                            progress=False)
        assert "Traceback" not in server.stop()
    assert not [r.error for r in results if r.error]
    frame = from_database(database, "rated")
    assert len(frame) == 42 + 6  # 6 bots x 1 HIT of 12 > 48 lineups, each answered once
    assert frame["control"].sum() == 6 and set(frame.loc[frame["control"], "control_of"]) <= set(frame["item"])
    assert frame["confidence"].between(1, 4).all() and (frame["confidence_scale"] == 4).all()
