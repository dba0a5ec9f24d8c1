"""Fixtures for the survey: a bundle made from the real AT&T faces, a migrated database on SQLite and on
the machine's PostgreSQL (a schema of its own in database ``test`` for every test), the app, its client."""
from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from attack.faces import Split, subject_name
from attack.gallery import dataset_section, gallery_images
from mi_harness.bundle import Bundle, Item, write_bundle

POSTGRES = os.environ.get("MI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MODELS = ("softmax", "mlp")
COUNTERMEASURES = ("none", "round:0.01")
SUBJECTS = 10  # 10 subjects x 2 models x 2 countermeasures = 40 items, plus 2 deblurring items


def make_bundle(faces, destination: Path) -> Path:
    """Reconstructions stand-ins: each subject's mean training photo, in four model/countermeasure groups,
    and two deblurring items whose blurred input is a real photo (which their lineups must not show)."""
    split = Split.make(0)
    gallery, images = gallery_images(faces, split)
    items = []
    for label in range(SUBJECTS):
        mean = faces.images[[faces.index_of(label, n) for n in split.train[label]]].mean(axis=0)
        for model in MODELS:
            for cm in COUNTERMEASURES:
                name = f"items/{model}-{cm.replace(':', '_')}-{subject_name(label)}.png"
                images[name] = (np.clip(mean, 0, 1) * 255).astype(np.uint8)
                items.append(Item(id=f"{model}-mi-face-{cm}-{subject_name(label)}", subject=subject_name(label),
                                  model=model, attack="mi-face", countermeasure=cm, image=name, confidence=0.99))
    for label in (0, 1):
        number = split.train[label][0]
        photo = faces.images[faces.index_of(label, number)]
        blurred = photo.reshape(28, 4, 23, 4).mean(axis=(1, 3)).repeat(4, axis=0).repeat(4, axis=1)
        name, aux = f"items/deblur-{subject_name(label)}.png", f"items/deblur-{subject_name(label)}-input.png"
        images[name] = (photo * 255).astype(np.uint8)
        images[aux] = (blurred * 255).astype(np.uint8)
        items.append(Item(id=f"softmax-deblur-none-{subject_name(label)}", subject=subject_name(label),
                          model="softmax", attack="deblur", countermeasure="none", image=name, aux_image=aux,
                          blur="pixelate:4", source_photo=f"gallery/{subject_name(label)}/{number}.png"))
    bundle = Bundle(dataset=dataset_section(split), gallery=gallery, items=items)
    return write_bundle(bundle, destination, images)


@pytest.fixture(scope="session")
def bundle_dir(faces, tmp_path_factory) -> Path:
    return make_bundle(faces, tmp_path_factory.mktemp("bundle") / "bundle")


def postgres_schema_url(schema: str) -> str:
    return f"{POSTGRES}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """The URL of an empty database: a new SQLite file, or a new schema in PostgreSQL's ``test``."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'survey.db'}"
        return
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield postgres_schema_url(schema)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def database(empty_database) -> str:
    from survey_app.migrate import upgrade

    upgrade(empty_database)
    return empty_database


@pytest.fixture
def app(database):
    from survey_app import create_app

    return create_app({"DATABASE_URL": database, "TESTING": True, "SECRET_KEY": "test-" + secrets.token_hex(8)})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    """The test's own view of the database: every statement commits at once, so it neither holds SQLite's
    write lock between requests nor reads a stale snapshot."""
    engine = app.extensions["survey_engine"].execution_options(isolation_level="AUTOCOMMIT")
    with Session(engine, expire_on_commit=False) as session:
        yield session


def new_study(app, bundle_dir, name="study", open_runs=(1,), **settings):
    from survey_app.importer import create_study, load_bundle, settings_from
    from survey_app.studies import set_run_status

    with app.extensions["survey_db"]() as session:
        study = create_study(session, load_bundle(bundle_dir), name, settings_from(settings), "test bundle")
        for number in open_runs:
            set_run_status(session, study, number, "open")
        session.commit()
        return study


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ASSIGNMENT = re.compile(r'name="assignment" value="([^"]+)"')
CHOICES = re.compile(r'name="choice" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def task_form(html: str) -> tuple[str, str, list[str]]:
    """(csrf token, assignment token, choice values) of a task page."""
    return csrf_of(html), ASSIGNMENT.search(html).group(1), CHOICES.findall(html)


IMAGE_SRC = re.compile(r'<img src="([^"]*)"')


def page_images(html: str) -> list[bytes]:
    """The bytes of every image a page shows, in order; each must be an inline PNG (the app names no image by URL)."""
    found = []
    for src in IMAGE_SRC.findall(html):
        assert src.startswith("data:image/png;base64,"), f"an image that is not inline: {src[:60]!r}"
        found.append(base64.b64decode(src.split(",", 1)[1], validate=True))
    return found


def join(client, study, worker_id: str):
    page = client.get(f"/s/{study.slug}/?workerId={worker_id}")
    assert page.status_code == 200, page.text
    response = client.post(f"/s/{study.slug}/consent",
                           data={"csrf_token": csrf_of(page.text), "worker_id": worker_id, "consent": "yes"})
    assert response.status_code == 303
    return response


def answer_lineups(app, study, worker_id: str, n: int, pick=lambda k, choices: choices[0]):
    """A worker joins and answers up to ``n`` lineups, taking new HITs as they finish them; ``pick(k, choices)``
    chooses among the five face tokens (or returns "absent"). Returns the worker's client."""
    client = app.test_client()
    join(client, study, worker_id)
    for k in range(n):
        page = client.get(f"/s/{study.slug}/task?more=1", follow_redirects=True)
        if "Task " not in page.text:
            break
        csrf, token, choices = task_form(page.text)
        client.post(f"/s/{study.slug}/answer",
                    data={"csrf_token": csrf, "assignment": token, "choice": pick(k, choices)})
    return client


def count(session: Session, table: str) -> int:
    return session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
