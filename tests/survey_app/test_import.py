"""Creating studies: from a bundle, a zipped bundle, a folder of images plus a CSV (the paper authors' own
reconstructions); bad input stores nothing."""
import io
import json
import shutil
import zipfile

import pytest
from sqlalchemy import func, select

from survey_app.importer import ImportProblem, create_from_source
from survey_app.models import Image, Item, Lineup, LineupFace, Run, Study

from .conftest import count, new_study

TABLES = ("study", "image", "item", "lineup", "lineup_face", "run")


def test_a_bundle_becomes_a_study_with_one_lineup_per_item_and_its_runs(app, db, bundle_dir):
    study = new_study(app, bundle_dir, name="bundle study", gold_items=3, open_runs=())
    items = db.scalars(select(Item).where(Item.study_id == study.id)).all()
    assert len(items) == 42 + 3 and sum(i.is_gold for i in items) == 3
    lineups = db.scalars(select(Lineup)).all()
    assert len(lineups) == 45 and count(db, "lineup_face") == 5 * 45
    reconstructions = [lu for lu in lineups if not db.get(Item, lu.item_id).is_gold]
    assert sum(lu.target_present for lu in reconstructions) == round(0.8 * 42)
    assert all(lu.target_present for lu in lineups if db.get(Item, lu.item_id).is_gold)
    assert [r.number for r in db.scalars(select(Run).order_by(Run.number))] == [1, 2, 3]
    assert all(r.status == "pending" for r in db.scalars(select(Run)))
    for gold in (i for i in items if i.is_gold):  # the probe is a real photo, never the one in the lineup
        lineup = db.scalars(select(Lineup).where(Lineup.item_id == gold.id)).one()
        shown = db.scalars(select(Image.sha256).join(LineupFace, LineupFace.image_id == Image.id)
                           .where(LineupFace.lineup_id == lineup.id)).all()
        assert db.get(Image, gold.image_id).sha256 not in shown
    settings = db.get(Study, study.id).settings
    assert settings["target_share"] == 0.8 and "gold items" in settings["skilled_definition"]
    # images were copied in: the study outlives the bundle folder
    assert db.scalar(select(func.count()).select_from(Image)) > 0


def test_the_same_seed_gives_the_same_lineups(app, db, bundle_dir):
    def layout(name):
        study = new_study(app, bundle_dir, name=name, seed=4)
        rows = db.execute(select(Item.external_id, Lineup.target_present, Lineup.target_position, LineupFace.position,
                                 LineupFace.subject).join(Lineup, Lineup.item_id == Item.id)
                          .join(LineupFace, LineupFace.lineup_id == Lineup.id).where(Item.study_id == study.id)
                          .order_by(Item.external_id, LineupFace.position)).all()
        return [tuple(r) for r in rows]

    assert layout("a") == layout("b")


@pytest.mark.parametrize("breakage, message", [
    (lambda root: (root / "manifest.json").unlink(), "manifest.json is missing"),
    (lambda root: next((root / "items").iterdir()).unlink(), "missing"),
    (lambda root: (root / "manifest.json").write_text("{not json"), "not valid JSON"),
    (lambda root: _edit(root, lambda m: m["items"].append(dict(m["items"][0]))), "duplicate id"),
    (lambda root: _edit(root, lambda m: m.update(version=9)), "unknown version"),
    (lambda root: _edit(root, lambda m: m.update(gallery=[g for g in m["gallery"] if g["subject"] in ("s1", "s2")])),
     "has no image in the gallery"),
])
def test_a_bad_bundle_is_refused_with_the_reason_and_nothing_is_stored(app, db, bundle_dir, tmp_path, breakage,
                                                                          message):
    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    breakage(broken)
    with pytest.raises(ImportProblem, match=message):
        new_study(app, broken)
    assert all(count(db, table) == 0 for table in TABLES)


def _edit(root, change):
    manifest = json.loads((root / "manifest.json").read_text())
    change(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_a_gallery_too_small_for_lineups_stores_nothing(app, db, bundle_dir, tmp_path):
    small = tmp_path / "small"
    shutil.copytree(bundle_dir, small)
    _edit(small, lambda m: m.update(
        gallery=[g for g in m["gallery"] if int(g["subject"][1:]) <= 5],
        items=[i for i in m["items"] if int(i["subject"][1:]) <= 5]))
    with pytest.raises(ImportProblem, match="at least 6 subjects"):
        new_study(app, small)
    assert all(count(db, table) == 0 for table in TABLES)


@pytest.mark.parametrize("settings, message", [
    ({"target_share": 1.2}, "target_share must be between 0 and 1"),
    ({"runs": "three"}, "runs must be an int"),
    ({"colour": "blue"}, "unknown setting 'colour'"),
    ({"allow_absent": "maybe"}, "allow_absent must be true or false"),
])
def test_bad_settings_are_named_and_store_nothing(app, db, bundle_dir, settings, message):
    with pytest.raises(ImportProblem, match=message):
        new_study(app, bundle_dir, **settings)
    assert all(count(db, table) == 0 for table in TABLES)


def test_study_names_are_unique(app, db, bundle_dir):
    new_study(app, bundle_dir, name="once")
    with pytest.raises(ImportProblem, match="already exists"):
        new_study(app, bundle_dir, name="once")
    assert count(db, "study") == 1


def test_the_paper_authors_reconstructions_become_a_study(app, db, paper_reconstructions, faces_dir):
    with app.extensions["survey_db"]() as session:
        study = create_from_source(session, "paper", {}, folder=str(paper_reconstructions),
                                   csv=str(paper_reconstructions / "manifest.csv"), faces_dir=str(faces_dir),
                                   where={"kind": "final_image"})
        session.commit()
    items = db.scalars(select(Item).where(Item.study_id == study.id)).all()
    assert len(items) > 40 and {i.attack for i in items} == {"external"}
    assert {i.model for i in items} == {"softmax", "dae"}  # the authors released no MLP images
    assert all(i.params.get("kind") == "final_image" for i in items)
    assert count(db, "lineup") == len(items)


def test_a_zipped_bundle_is_unpacked_safely(app, db, bundle_dir):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in bundle_dir.rglob("*"):
            archive.write(path, "bundle/" + str(path.relative_to(bundle_dir)))
    with app.extensions["survey_db"]() as session:
        study = create_from_source(session, "zipped", {}, zip_bytes=buffer.getvalue())
        session.commit()
    assert db.scalar(select(func.count()).select_from(Item).where(Item.study_id == study.id)) == 42
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as archive:
        archive.writestr("../../escape.txt", "x")
    with app.extensions["survey_db"]() as session, pytest.raises(ImportProblem, match="outside its folder"):
        create_from_source(session, "evil", {}, zip_bytes=evil.getvalue())
    with app.extensions["survey_db"]() as session, pytest.raises(ImportProblem, match="not a zip"):
        create_from_source(session, "junk", {}, zip_bytes=b"PK not really")
    assert count(db, "study") == 1
