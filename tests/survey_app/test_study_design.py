"""Issue 12's study design on a real database (SQLite and PostgreSQL) and the real AT&T faces: filler policies,
the target photo's role, mock-witness (control) items, and confidence after each choice."""
import io
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import select

from survey_app.export import answer_rows, to_csv
from survey_app.fillers import NEAR_DUPLICATE, SIMILAR_WITHIN
from survey_app.importer import ImportProblem, create_from_source
from survey_app.models import Answer, Image, Item, Lineup, LineupFace, Study
from survey_app.studies import StudyActionError, configure

from .conftest import count, csrf_of, join, new_study, task_form
from .test_admin import api_token, login, make_admin

ATTRIBUTES = Path(__file__).resolve().parents[3] / "shared" / "data" / "att_faces_attributes.csv"
WOMEN = {"s8", "s10", "s32", "s35"}


def lineups_of(db, study, **where):
    query = select(Item, Lineup).join(Lineup, Lineup.item_id == Item.id).where(Item.study_id == study.id)
    for key, value in where.items():
        query = query.where(getattr(Item, key) == value)
    return db.execute(query.order_by(Item.external_id)).all()


def face_subjects(db, lineup):
    return [f.subject for f in db.scalars(select(LineupFace).where(LineupFace.lineup_id == lineup.id)
                                          .order_by(LineupFace.position))]


def matched_study(app, bundle_dir, name="matched", **settings):
    with app.extensions["survey_db"]() as session:
        study = create_from_source(session, name, {"filler_policy": "matched", "matched_on": "sex", **settings},
                                   bundle=str(bundle_dir), attributes=str(ATTRIBUTES))
        session.commit()
        return study


def test_matched_fillers_from_the_att_attributes_csv(app, db, bundle_dir):
    """The bundle's items are of s1..s10, two of them women: their lineups hold every other woman (3) and one or
    two men; a man's lineup holds only men."""
    study = matched_study(app, bundle_dir)
    assert db.get(Study, study.id).settings["fillers"] == {"policy": "matched", "matched_on": ["sex"],
                                                           "attributes_given": True}
    seen = set()
    for item, lineup in lineups_of(db, study):
        fillers = [s for s in face_subjects(db, lineup) if s != item.subject]
        if item.subject in WOMEN:
            assert set(fillers) >= WOMEN - {item.subject} and lineup.fillers["matched"] == 3
        else:
            assert not set(fillers) & WOMEN and lineup.fillers["matched"] == len(fillers)
        seen.add(item.subject)
    assert {"s8", "s10"} <= seen


@pytest.mark.parametrize("settings, attributes, message", [
    ({"filler_policy": "matched"}, None, "needs matched_on"),
    ({"filler_policy": "matched", "matched_on": "sex"}, None, "need those attributes for every subject"),
    ({"filler_policy": "matched", "matched_on": "hair"}, ATTRIBUTES, "need those attributes"),
    ({"filler_policy": "random", "matched_on": "sex"}, None, "matched_on is used by the matched filler policy"),
    ({"filler_policy": "nearest"}, None, "filler_policy must be one of random, similar, matched"),
    ({"photo_role": "test"}, None, "photo_role must be one of validation, train, either"),
    ({"control_items": 500}, None, "control_items is 500 but the study has 34 target-present lineups"),
    ({"confidence_scale": 1}, None, "confidence_scale must be 0 \\(not asked\\) or between 2 and 11"),
    ({"control_probe": "mirror"}, None, "control_probe must be one of other, silhouette"),
])
def test_bad_design_settings_are_refused_and_store_nothing(app, db, bundle_dir, settings, attributes, message):
    with app.extensions["survey_db"]() as session, pytest.raises(ImportProblem, match=message):
        create_from_source(session, "bad", settings, bundle=str(bundle_dir),
                           attributes=str(attributes) if attributes else None)
    assert count(db, "study") == 0 and count(db, "image") == 0


def test_a_bad_attributes_csv_is_named(app, db, bundle_dir, tmp_path):
    (tmp_path / "a.csv").write_text("person,sex\ns1,male\n")
    (tmp_path / "b.csv").write_text("subject,sex\ns1,male\ns1,female\n")
    for name, message in (("a.csv", "needs a subject \\(or identity\\) column"),
                          ("b.csv", "line 3: 's1' appears twice"), ("missing.csv", "cannot read the attributes CSV")):
        with app.extensions["survey_db"]() as session, pytest.raises(ImportProblem, match=message):
            create_from_source(session, "bad", {"filler_policy": "matched", "matched_on": "sex"},
                               bundle=str(bundle_dir), attributes=str(tmp_path / name))
    assert count(db, "study") == 0


def test_similar_fillers_are_nearer_than_random_ones_in_descriptor_space(app, db, bundle_dir):
    """The real dlib descriptors of the 400 AT&T photos: every filler lies beyond the near-duplicate bound, and the
    fillers are nearer the target than random ones."""
    study = new_study(app, bundle_dir, name="similar", filler_policy="similar", open_runs=())
    plain = new_study(app, bundle_dir, name="random", open_runs=())
    recorded = db.get(Study, study.id).settings["fillers"]
    assert recorded["policy"] == "similar" and recorded["near_duplicate"] == NEAR_DUPLICATE
    assert recorded["within"] == SIMILAR_WITHIN and recorded["descriptor"].startswith("dlib-resnet")
    distances = [d for _, lineup in lineups_of(db, study) for d in lineup.fillers["distances"]]
    assert min(distances) >= NEAR_DUPLICATE
    assert np.median(distances) < SIMILAR_WITHIN + 0.02
    # random fillers of the same targets, measured with the same descriptors: farther on the whole
    from mi_harness.bundle import read_bundle
    from survey_app.fillers import subject_distances

    bundle = read_bundle(bundle_dir)
    images = {}
    for g in bundle.gallery:
        images.setdefault(g.subject, []).append(bundle.load_image(g.image))
    table = subject_distances(images)
    random_distances = [table[item.subject][s] for item, lineup in lineups_of(db, plain)
                        for s in face_subjects(db, lineup) if s != item.subject]
    assert np.median(distances) < np.median(random_distances) - 0.05
    assert all(lineup.fillers == {"policy": "random"} for _, lineup in lineups_of(db, plain))


@pytest.mark.parametrize("role", ["validation", "train"])
def test_each_lineup_records_the_target_photo_it_shows_and_its_role(app, db, bundle_dir, role):
    study = new_study(app, bundle_dir, name=role, photo_role=role, open_runs=())
    from mi_harness.bundle import read_bundle

    roles = {g.image: g.role for g in read_bundle(bundle_dir).gallery}
    present = 0
    for item, lineup in lineups_of(db, study):
        if not lineup.target_present:
            assert lineup.photo is None and lineup.photo_role is None
            continue
        present += 1
        assert lineup.photo_role == roles[lineup.photo] == role
        assert lineup.photo.startswith(f"gallery/{item.subject}/")
        assert face_subjects(db, lineup)[lineup.target_position] == item.subject
        assert lineup.photo != (item.params or {}).get("source_photo")
    assert present == round(0.8 * 42)


def test_the_default_role_is_validation_and_either_balances_roles(app, db, bundle_dir):
    default = new_study(app, bundle_dir, name="default", open_runs=())
    assert {lu.photo_role for _, lu in lineups_of(db, default) if lu.target_present} == {"validation"}
    either = new_study(app, bundle_dir, name="either", photo_role="either", open_runs=())
    roles = Counter(lu.photo_role for _, lu in lineups_of(db, either) if lu.target_present)
    assert abs(roles["train"] - roles["validation"]) <= 5  # balanced within each of the 5 conditions


@pytest.mark.parametrize("probe", ["other", "silhouette"])
def test_control_items_show_a_real_lineup_with_a_probe_that_tells_nothing(app, db, bundle_dir, probe):
    study = new_study(app, bundle_dir, name=probe, control_items=5, control_probe=probe, open_runs=())
    controls = lineups_of(db, study, is_control=True)
    assert len(controls) == 5
    real = {item.external_id: (item, lineup) for item, lineup in lineups_of(db, study, is_control=False)}
    conditions = Counter()
    for control, lineup in controls:
        twin_item, twin = real[control.params["control_of"]]
        assert twin.target_present and lineup.target_present
        assert (lineup.target_position, lineup.photo, lineup.photo_role) == (twin.target_position, twin.photo,
                                                                             twin.photo_role)
        faces = db.execute(select(LineupFace.subject, LineupFace.image_id).where(LineupFace.lineup_id == lineup.id)
                           .order_by(LineupFace.position)).all()
        twin_faces = db.execute(select(LineupFace.subject, LineupFace.image_id)
                                .where(LineupFace.lineup_id == twin.id).order_by(LineupFace.position)).all()
        assert faces == twin_faces
        assert (control.subject, control.model, control.attack, control.countermeasure) == (
            twin_item.subject, twin_item.model, twin_item.attack, twin_item.countermeasure)
        if probe == "other":
            other_id = control.params["probe"].removeprefix("other:")
            other, _ = real[other_id]
            assert control.image_id == other.image_id and other.subject not in {s for s, _ in faces}
            assert (other.model, other.attack, other.countermeasure) == (twin_item.model, twin_item.attack,
                                                                         twin_item.countermeasure)
        else:
            assert control.params["probe"] == "silhouette" and control.aux_image_id is None
            pixels = np.asarray(PILImage.open(io.BytesIO(db.get(Image, control.image_id).png)))
            assert pixels.shape == (112, 92) and set(np.unique(pixels)) == {110, 190}
        conditions[(twin_item.model, twin_item.attack, twin_item.countermeasure)] += 1
    assert max(conditions.values()) - min(conditions.values()) <= 1 and len(conditions) == 5


def test_a_worker_never_answers_a_control_and_its_real_lineup(app, db, bundle_dir):
    study = new_study(app, bundle_dir, control_items=10, hit_size=60, answers_per_item=3)
    client = app.test_client()
    join(client, study, "W1")
    while True:
        page = client.get(f"/s/{study.slug}/task?more=1", follow_redirects=True)
        if "Task " not in page.text:
            break
        csrf, token, choices = task_form(page.text)
        client.post(f"/s/{study.slug}/answer", data={"csrf_token": csrf, "assignment": token, "choice": choices[0]})
    answered = set(db.scalars(select(Item.external_id).join(Lineup, Lineup.item_id == Item.id)
                              .join(Answer, Answer.lineup_id == Lineup.id)))
    controls = {item.external_id: item.params["control_of"] for item, _ in lineups_of(db, study, is_control=True)}
    assert len(answered) == 52 - 10  # one of each pair
    assert not any(c in answered and real in answered for c, real in controls.items())
    rows = answer_rows(db, db.get(Study, study.id))
    flagged = {r["item"]: (r["control"], r["control_of"]) for r in rows}
    for item_id, (control, twin) in flagged.items():
        assert control == (item_id in controls) and twin == controls.get(item_id, "")


def confidence_study(app, bundle_dir, **settings):
    study = new_study(app, bundle_dir, hit_size=3, confidence_scale=5, **settings)
    client = app.test_client()
    assert "say how sure you are, from 1 (guessing) to 5 (certain)" in " ".join(client.get(f"/s/{study.slug}/").text
                                                                                  .split())
    join(client, study, "W1")
    return study, client


def test_confidence_is_asked_after_the_choice_stored_and_exported(app, db, bundle_dir):
    study, client = confidence_study(app, bundle_dir)
    page = client.get(f"/s/{study.slug}/task").text
    assert 'type="radio" name="choice"' in page and page.count('name="confidence"') == 5
    assert page.index('name="choice"') < page.index('name="confidence"') < page.index('class="send"')
    csrf, token, choices = task_form(page)
    send = {"csrf_token": csrf, "assignment": token, "choice": choices[1]}
    for extra, message in (({}, "say how sure you are of your choice \\(1 to 5\\)"),
                           ({"confidence": "9"}, "confidence must be between 1 and 5, got 9"),
                           ({"confidence": "0"}, "confidence must be between 1 and 5, got 0"),
                           ({"confidence": "sure"}, "confidence must be a whole number")):
        refused = client.post(f"/s/{study.slug}/answer", data={**send, **extra})
        assert refused.status_code == 400 and re.search(message, refused.text), refused.text
    assert count(db, "answer") == 0
    assert client.post(f"/s/{study.slug}/answer", data={**send, "confidence": "4"}).status_code == 303
    stored = db.scalars(select(Answer)).one()
    assert stored.confidence == 4
    [row] = answer_rows(db, db.get(Study, study.id))
    assert (row["confidence"], row["confidence_scale"]) == (4, 5)
    assert row["photo_role"] in ("validation", "") and row["filler_policy"] == "random"
    header = to_csv([row]).splitlines()[0].split(",")
    assert {"confidence", "confidence_scale", "control", "control_of", "photo", "photo_role",
            "filler_policy"} <= set(header)


def test_a_study_that_asks_no_confidence_refuses_one(app, db, bundle_dir, client):
    study = new_study(app, bundle_dir, hit_size=3)
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task").text
    assert 'name="confidence"' not in page and 'type="radio" name="choice"' in page  # choose, then confirm
    csrf, token, choices = task_form(page)
    refused = client.post(f"/s/{study.slug}/answer",
                          data={"csrf_token": csrf, "assignment": token, "choice": choices[0], "confidence": "3"})
    assert refused.status_code == 400 and "does not ask how sure" in refused.text
    assert count(db, "answer") == 0


def test_design_settings_are_fixed_at_creation(app, db, bundle_dir):
    study = new_study(app, bundle_dir, open_runs=())
    for key, value in (("filler_policy", "similar"), ("photo_role", "train"), ("control_items", 3),
                       ("confidence_scale", 5), ("control_probe", "silhouette")):
        with pytest.raises(StudyActionError, match=f"{key} decides .* and cannot change after the study is created"):
            configure(db, db.get(Study, study.id), {key: value})
    configure(db, db.get(Study, study.id), {"hit_size": 7})
    assert db.get(Study, study.id).settings["fillers"] == {"policy": "random"}  # the record survives a change


def test_matched_studies_from_the_command_line_the_api_and_the_admin_form(app, db, database, bundle_dir, client):
    from click.testing import CliRunner

    from mi_harness.cli import main

    created = CliRunner().invoke(main, ["study", "create", "--database", database, "--name", "cli",
                                        "--bundle", str(bundle_dir), "--set", "filler_policy=matched",
                                        "--set", "matched_on=sex", "--attributes", str(ATTRIBUTES)])
    assert created.exit_code == 0, created.output
    make_admin(app)
    headers = api_token(client)
    made = client.post("/api/v1/studies", headers=headers,
                       json={"name": "api", "bundle": str(bundle_dir), "attributes": str(ATTRIBUTES),
                             "settings": {"filler_policy": "matched", "matched_on": "sex", "control_items": 2}})
    assert made.status_code == 201, made.text
    for name in ("cli", "api"):
        study = db.scalars(select(Study).where(Study.name == name)).one()
        assert study.settings["fillers"]["matched_on"] == ["sex"]
        for item, lineup in lineups_of(db, study):
            if item.subject == "s8" and not item.is_control:
                assert set(face_subjects(db, lineup)) >= {"s10", "s32", "s35"}
    refused = client.post("/api/v1/studies", headers=headers,
                          json={"name": "x", "bundle": str(bundle_dir), "attributes": 3})
    assert refused.status_code == 400 and "attributes" in refused.text
    login(client)
    form = client.get("/admin/")
    assert '<select id="f-filler_policy" name="filler_policy">' in form.text and 'name="attributes"' in form.text
    made = client.post("/admin/studies", data={"csrf_token": csrf_of(form.text), "name": "form",
                                               "bundle": str(bundle_dir), "attributes": str(ATTRIBUTES),
                                               "filler_policy": "matched", "matched_on": "sex", "photo_role": "either",
                                               "confidence_scale": "5", "control_items": "3"})
    assert made.status_code == 303, made.text
    study = db.scalars(select(Study).where(Study.name == "form")).one()
    assert (study.settings["photo_role"], study.settings["confidence_scale"]) == ("either", 5)
    page = client.get(f"/admin/studies/{study.id}")
    assert "Fillers: matched" in page.text and 'name="screening"' not in page.text
    assert page.text.count("(control)") == 3
    # the settings form as the page renders it saves (the recorded keys are not fields of it)
    fields = dict(re.findall(r'<input name="([a-z_]+)" value="([^"]*)"', page.text))
    saved = client.post(f"/admin/studies/{study.id}/settings", data={"csrf_token": csrf_of(page.text), **fields})
    assert saved.status_code == 303, saved.text


def test_migration_0003_keeps_a_study_made_before_it(empty_database, bundle_dir):
    """A database at 0002 holding a study: after upgrading, its items are not controls and its lineups have no recorded
    photo; downgrading drops the columns again."""
    from sqlalchemy import inspect, text

    from survey_app.db import make_engine
    from survey_app.migrate import downgrade, upgrade

    upgrade(empty_database, "0002")
    engine = make_engine(empty_database)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO study (id, name, slug, source, settings, created_at) VALUES "
                                "(1, 'old', 'oldslug', 'test', '{\"runs\": 1}', '2026-01-01 00:00:00')"))
        connection.execute(text("INSERT INTO image (id, study_id, png, sha256) VALUES (1, 1, :png, 'x')"),
                           {"png": b"\x89PNG"})
        connection.execute(text("INSERT INTO item (id, study_id, external_id, subject, model, attack, countermeasure, "
                                "is_gold, image_id, params) VALUES (1, 1, 'i1', 's1', 'm', 'mi-face', 'none', "
                                "false, 1, '{}')"))
        connection.execute(text("INSERT INTO lineup (id, study_id, item_id, token, aux_token, target_present, "
                                "target_position) VALUES (1, 1, 1, 't', 'a', true, 2)"))
    upgrade(empty_database)
    with engine.connect() as connection:
        row = connection.execute(text("SELECT i.is_control, l.photo, l.photo_role, l.fillers FROM item i "
                                      "JOIN lineup l ON l.item_id = i.id")).one()
    assert not row[0] and row[1:] == (None, None, None)
    downgrade(empty_database, "0002")
    assert "is_control" not in {c["name"] for c in inspect(engine).get_columns("item")}
    assert "confidence" not in {c["name"] for c in inspect(engine).get_columns("answer")}
    engine.dispose()
