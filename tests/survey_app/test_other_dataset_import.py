"""A study of another dataset through the API: class folders, a class map and a gallery of colour JPEGs, shown at
their own aspect and in colour, on SQLite and PostgreSQL."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image
from sqlalchemy import select

from survey_app.models import Image as StoredImage
from survey_app.models import Item, Study

from .conftest import count, join
from .test_admin import api_token, make_admin


def test_the_api_imports_class_folders_of_another_gallery(app, client, db, other_dataset):
    make_admin(app)
    headers = api_token(client)
    body = {"name": "other", "folder": str(other_dataset / "recon"), "class_map": str(other_dataset / "classes.json"),
            "gallery": str(other_dataset / "gallery"), "settings": {"hit_size": 3}, "open_runs": [1]}
    bad_map = client.post("/api/v1/studies", headers=headers, json={**body, "class_map": str(other_dataset)})
    assert bad_map.status_code == 400 and "class map" in bad_map.json["error"]
    wrong_type = client.post("/api/v1/studies", headers=headers, json={**body, "gallery": ["x"]})
    assert wrong_type.status_code == 400 and count(db, "study") == 0
    created = client.post("/api/v1/studies", headers=headers, json=body)
    assert created.status_code == 201, created.text
    study = db.get(Study, created.json["id"])
    assert study.settings["display"] == [224, 224]
    assert sorted(db.scalars(select(Item.subject).where(Item.study_id == study.id, ~Item.is_gold))) == \
        sorted(f"person-{n}" for n in ("ada", "bo", "cy", "di", "ed", "flo", "gus", "hal", "ivy", "jo", "kim", "lu"))
    stored = db.scalars(select(StoredImage.png).where(StoredImage.study_id == study.id)).all()
    rgb = [np.asarray(Image.open(io.BytesIO(png))) for png in stored]
    assert all(img.shape == (64, 64, 3) for img in rgb)
    assert np.mean([img[..., 0].mean() - img[..., 2].mean() for img in rgb]) > 10  # the sepia kept
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task").text
    assert page.count('width="224" height="224"') == 1 and page.count('width="168" height="168"') == 5
