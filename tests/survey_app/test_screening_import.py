"""Screening at study creation: unusable items are left out by default, kept on request, and recorded."""
import io
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from sqlalchemy import select

from mi_harness.cli import main
from survey_app.models import Item, Study
from survey_app.studies import configure

from .conftest import csrf_of
from .test_admin import api_token, login, make_admin, zipped

UNUSABLE = {"mlp-mi-face-none-blank": ("constant", np.zeros((112, 92), np.uint8)),
            "mlp-mi-face-none-grain": ("grain", (np.random.default_rng(0).random((112, 92)) * 255).astype(np.uint8))}


@pytest.fixture(scope="module")
def bundle_with_unusable(bundle_dir, tmp_path_factory):
    """The survey's test bundle (42 usable items) plus a blank and a grain MLP reconstruction."""
    folder = tmp_path_factory.mktemp("unusable") / "bundle"
    shutil.copytree(bundle_dir, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    for item_id, (_, pixels) in UNUSABLE.items():
        Image.fromarray(pixels).save(folder / "items" / f"{item_id}.png")
        manifest["items"].append({"id": item_id, "subject": "s3", "model": "mlp", "attack": "mi-face",
                                  "countermeasure": "none", "image": f"items/{item_id}.png", "confidence": 0.99})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_bundle_check_lists_unusable_items_with_reasons(bundle_with_unusable, bundle_dir):
    result = run("bundle", "check", str(bundle_with_unusable))
    assert result.exit_code == 0, result.output
    assert "44 items" in result.output and "2 unusable items" in result.output
    for item_id, (reason, _) in UNUSABLE.items():
        line = next(line for line in result.output.splitlines() if item_id in line)
        assert ("near-constant" if reason == "constant" else "grain") in line
    assert "unusable" not in run("bundle", "check", str(bundle_dir)).output


def test_study_create_leaves_unusable_items_out_and_records_why(bundle_with_unusable, database, app):
    created = run("study", "create", "--database", database, "--name", "screened", "--bundle",
                  str(bundle_with_unusable))
    assert created.exit_code == 0, created.output
    info = json.loads(created.stdout)
    assert info["items"] == 42 and info["unusable"] == 2 and info["left_out"] == 2
    assert "left out mlp-mi-face-none-blank: near-constant" in created.output
    kept = run("study", "create", "--database", database, "--name", "kept", "--bundle", str(bundle_with_unusable),
               "--keep-unusable")
    assert json.loads(kept.stdout)["items"] == 44 and json.loads(kept.stdout)["left_out"] == 0
    with app.extensions["survey_db"]() as db:
        screened = db.scalar(select(Study).where(Study.name == "screened"))
        shown = set(db.scalars(select(Item.external_id).where(Item.study_id == screened.id)))
        assert not shown & set(UNUSABLE) and len(shown) == 42
        record = screened.settings["screening"]
        assert record["kept_unusable"] is False and record["left_out"] == 2
        mlp_none = next(r for r in record["by_condition"] if (r["model"], r["countermeasure"]) == ("mlp", "none"))
        assert mlp_none == {"model": "mlp", "attack": "mi-face", "countermeasure": "none", "blur": "", "items": 12,
                            "unusable": 2, "left_out": 2, "reasons": {"constant": 1, "grain": 1}}
        # changing the study's settings keeps the record of how it was made
        configure(db, screened, {"hit_size": 7})
        db.commit()
        db.refresh(screened)
        assert screened.settings["hit_size"] == 7 and screened.settings["screening"] == record
        kept_study = db.scalar(select(Study).where(Study.name == "kept"))
        assert kept_study.settings["screening"]["kept_unusable"] is True
        assert set(UNUSABLE) <= set(db.scalars(select(Item.external_id).where(Item.study_id == kept_study.id)))


def test_a_bundle_with_nothing_usable_is_refused(tmp_path, bundle_with_unusable, database):
    folder = tmp_path / "bundle"
    shutil.copytree(bundle_with_unusable, folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["items"] = [i for i in manifest["items"] if i["id"] in UNUSABLE]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    refused = run("study", "create", "--database", database, "--name", "empty", "--bundle", str(folder))
    assert refused.exit_code == 1 and "all 2 items of the bundle are unusable" in refused.output


def test_the_api_leaves_them_out_too_and_the_record_cannot_be_edited(app, client, bundle_with_unusable):
    make_admin(app)
    headers = api_token(client)
    made = client.post("/api/v1/studies", json={"name": "api", "bundle": str(bundle_with_unusable)}, headers=headers)
    assert made.status_code == 201 and made.json["items"] == 42
    assert made.json["settings"]["screening"]["left_out"] == 2
    kept = client.post("/api/v1/studies", json={"name": "api kept", "bundle": str(bundle_with_unusable),
                                               "keep_unusable": True}, headers=headers)
    assert kept.status_code == 201 and kept.json["items"] == 44
    bad = client.post("/api/v1/studies", json={"name": "api bad", "bundle": str(bundle_with_unusable),
                                              "keep_unusable": "yes"}, headers=headers)
    assert bad.status_code == 400
    edit = client.patch(f"/api/v1/studies/{made.json['id']}/settings", json={"screening": {}}, headers=headers)
    assert edit.status_code == 400


@pytest.mark.parametrize("value, status, items", [("yes", 201, 44), ("", 201, 42), ("maybe", 400, None)])
def test_a_multipart_upload_reads_keep_unusable_strictly(app, client, bundle_with_unusable, value, status, items):
    make_admin(app)
    headers = api_token(client)
    form = {"name": f"zip {value}", "keep_unusable": value,
            "bundle_zip": (io.BytesIO(zipped(bundle_with_unusable)), "b.zip")}
    made = client.post("/api/v1/studies", data=form, headers=headers, content_type="multipart/form-data")
    assert made.status_code == status, made.text
    if items is not None:
        assert made.json["items"] == items


@pytest.mark.parametrize("box, items", [(None, 42), ("on", 44)])
def test_the_admin_form_keeps_them_only_when_its_box_is_ticked(app, client, db, bundle_with_unusable, box, items):
    make_admin(app)
    login(client)
    form = {"csrf_token": csrf_of(client.get("/admin/").text), "name": "form", "bundle": str(bundle_with_unusable)}
    if box:
        form["keep_unusable"] = box
    assert client.post("/admin/studies", data=form).status_code == 303
    study = db.scalar(select(Study).where(Study.name == "form"))
    assert len(db.scalars(select(Item).where(Item.study_id == study.id, ~Item.is_gold)).all()) == items
    assert study.settings["screening"]["kept_unusable"] is bool(box)
