"""Admin pages and the JSON API: login, studies, runs, progress, workers, blocking, export."""
import csv
import io
import json

from sqlalchemy import select

from survey_app.auth import create_admin
from survey_app.models import Answer, Lineup, Study, Worker

from .conftest import answer_lineups, count, csrf_of, join, new_study, task_form

PASSWORD = "correct horse battery"


def make_admin(app, name="ada"):
    with app.extensions["survey_db"]() as session:
        create_admin(session, name, PASSWORD)
        session.commit()


def login(client, name="ada", password=PASSWORD):
    page = client.get("/admin/login")
    return client.post("/admin/login", data={"csrf_token": csrf_of(page.text), "username": name,
                                             "password": password})


def api_token(client, name="ada"):
    import base64

    basic = base64.b64encode(f"{name}:{PASSWORD}".encode()).decode()
    response = client.post("/api/v1/token", headers={"Authorization": f"Basic {basic}"})
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json['token']}"}


def test_admin_pages_need_a_login_and_a_right_password(app, client, bundle_dir):
    make_admin(app)
    study = new_study(app, bundle_dir)
    for path in ("/admin/", f"/admin/studies/{study.id}", f"/admin/studies/{study.id}/workers",
                 f"/admin/studies/{study.id}/answers.csv"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert login(client, password="wrong password").status_code == 401
    assert login(client, name="nobody").status_code == 401
    response = login(client)
    assert response.status_code == 303
    assert all("HttpOnly" in c and "SameSite=Lax" in c for c in response.headers.getlist("Set-Cookie"))
    assert study.name in client.get("/admin/").text
    with app.extensions["survey_db"]() as session:
        assert not session.scalars(select(Study)).one().settings.get("password")
    # the stored password is a hash, never the password
    with app.extensions["survey_db"]() as session:
        from survey_app.models import Admin
        assert PASSWORD not in session.scalars(select(Admin)).one().password_hash


def test_admin_forms_carry_csrf_tokens(app, client, bundle_dir):
    make_admin(app)
    study = new_study(app, bundle_dir)
    login(client)
    assert client.post(f"/admin/studies/{study.id}/runs/2/open").status_code == 400
    page = client.get(f"/admin/studies/{study.id}")
    assert client.post(f"/admin/studies/{study.id}/runs/2/open",
                       data={"csrf_token": csrf_of(page.text)}).status_code == 303
    assert "open" in client.get(f"/admin/studies/{study.id}").text


def test_create_configure_and_run_a_study_from_the_pages(app, client, db, bundle_dir):
    make_admin(app)
    login(client)
    csrf = csrf_of(client.get("/admin/").text)
    form = {"csrf_token": csrf, "name": "from the form", "bundle": str(bundle_dir), "runs": "2",
            "target_share": "0.5", "allow_absent": "on", "hit_size": "5"}
    response = client.post("/admin/studies", data=form)
    assert response.status_code == 303
    study = db.scalars(select(Study)).one()
    assert study.settings["runs"] == 2 and study.settings["target_share"] == 0.5
    assert study.settings["multiple_runs_per_worker"] is False
    assert sum(lineup.target_present for lineup in db.scalars(select(Lineup))) == 21
    bad = client.post("/admin/studies", data={**form, "name": "second", "bundle": "/no/such/bundle"})
    assert bad.status_code == 400 and "manifest.json is missing" in bad.text and count(db, "study") == 1
    page = client.get(f"/admin/studies/{study.id}")
    changed = client.post(f"/admin/studies/{study.id}/settings",
                          data={"csrf_token": csrf_of(page.text), "hit_size": "7", "skilled_min_accuracy": "0.9"})
    assert changed.status_code == 303
    db.expire_all()
    assert db.get(Study, study.id).settings["hit_size"] == 7
    assert "90%" in db.get(Study, study.id).settings["skilled_definition"]
    refused = client.post(f"/admin/studies/{study.id}/settings",
                          data={"csrf_token": csrf_of(page.text), "hit_size": "-3"})
    assert refused.status_code == 400 and "hit_size must be between" in refused.text
    assert client.post(f"/admin/studies/{study.id}/runs/9/open",
                       data={"csrf_token": csrf_of(page.text)}).status_code == 400


def test_live_progress_workers_block_and_export(app, client, db, bundle_dir):
    make_admin(app)
    study = new_study(app, bundle_dir, hit_size=6, skilled_min_tasks=5)
    answer_lineups(app, study, "good", 6)
    blocked_client = answer_lineups(app, study, "bad", 2)
    login(client)
    page = client.get(f"/admin/studies/{study.id}")
    assert ">8<" in page.text.replace(" ", "")  # answers in run 1
    workers = client.get(f"/admin/studies/{study.id}/workers").text
    assert "good" in workers and "bad" in workers
    bad = db.scalars(select(Worker).where(Worker.external_id == "bad")).one()
    client.post(f"/admin/studies/{study.id}/workers/{bad.id}/block", data={"csrf_token": csrf_of(workers)})
    db.expire_all()
    assert db.get(Worker, bad.id).blocked
    assert blocked_client.get(f"/s/{study.slug}/task").status_code == 403
    exported = client.get(f"/admin/studies/{study.id}/answers.csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 8 == count(db, "answer")
    stored = db.scalars(select(Answer).order_by(Answer.id)).all()
    for row, answer in zip(rows, stored):
        assert row["study"] == study.name and row["correct"] == str(answer.correct)
        assert (row["target_position"] == "") == (row["target_present"] == "False")
        assert row["worker"] == db.get(Worker, answer.worker_id).external_id
    as_json = client.get(f"/admin/studies/{study.id}/answers.json").json
    assert [r["item"] for r in as_json] == [r["item"] for r in rows]
    assert client.get(f"/admin/studies/{study.id}/answers.xml").status_code == 404


def test_the_export_says_exactly_what_was_answered(app, client, db, bundle_dir):
    make_admin(app)
    study = new_study(app, bundle_dir, hit_size=42, skilled_min_tasks=3, skilled_min_accuracy=0.0)
    answer_lineups(app, study, "W1", 42)
    login(client)
    rows = client.get(f"/admin/studies/{study.id}/answers.json").json
    assert len(rows) == 42
    for row in rows:  # the worker always picked face 1
        assert row["choice"] == 1
        assert row["correct"] == (row["target_present"] and row["target_position"] == 1)
        assert row["skilled"] is True and row["run"] == 1 and row["response_ms"] >= 0
    assert {r["attack"] for r in rows} == {"mi-face", "deblur"}
    assert {r["blur"] for r in rows if r["attack"] == "deblur"} == {"pixelate:4"}
    positions = [r["target_position"] for r in rows if r["target_present"]]
    assert sum(p == 1 for p in positions) == sum(r["correct"] for r in rows)


def test_skilled_workers_are_measured_on_gold_items_when_the_study_has_them(app, client, db, bundle_dir):
    make_admin(app)
    study = new_study(app, bundle_dir, hit_size=5, gold_items=10, gold_per_hit=2, skilled_min_tasks=5,
                      skilled_min_accuracy=0.75)
    expert = app.test_client()
    join(expert, study, "expert")
    for _ in range(7):  # answers gold lineups right (from the database, as a perfect eye would) and the rest wrong
        page = expert.get(f"/s/{study.slug}/task?more=1", follow_redirects=True)
        if "Task " not in page.text:
            break
        csrf, token, choices = task_form(page.text)
        from survey_app.models import Assignment, Item
        lineup = db.get(Lineup, db.scalar(select(Assignment.lineup_id).where(Assignment.token == token)))
        gold = db.get(Item, lineup.item_id).is_gold
        pick = lineup.target_position if gold else (lineup.target_position or 0) + 1
        expert.post(f"/s/{study.slug}/answer", data={"csrf_token": csrf, "assignment": token,
                                                     "choice": choices[pick % 5]})
    login(client)
    headers = api_token(client)
    table = {w["worker"]: w for w in client.get(f"/api/v1/studies/{study.id}/workers", headers=headers).json}
    expert_row = table["expert"]
    assert expert_row["accuracy_on"] == "gold items" and expert_row["gold_answers"] == 2
    assert expert_row["accuracy"] == 1.0 and expert_row["tasks"] == 7 and expert_row["skilled"] is True
    assert expert_row["correct"] == 2  # all other answers were wrong
    assert "gold items" in db.get(Study, study.id).settings["skilled_definition"]


def test_the_json_api(app, client, db, bundle_dir):
    make_admin(app)
    assert client.get("/api/v1/studies").status_code == 401
    assert client.get("/api/v1/studies", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.post("/api/v1/token").status_code == 401
    headers = api_token(client)
    created = client.post("/api/v1/studies", headers=headers, json={
        "name": "api", "bundle": str(bundle_dir), "settings": {"runs": 2, "hit_size": 3}, "open_runs": [1]})
    assert created.status_code == 201, created.text
    study_id = created.json["id"]
    assert created.json["runs"][0]["status"] == "open" and created.json["runs"][0]["needed"] == 42 * 5
    for body, message in [({"name": "x"}, "exactly one source"), ({"name": "x", "bundle": 5}, "must be a path"),
                          ({"name": "x", "bundle": str(bundle_dir), "settings": {"runs": [1]}}, "runs must be"),
                          ({"name": "x", "bundle": str(bundle_dir), "settings": []}, "settings must be")]:
        response = client.post("/api/v1/studies", headers=headers, json=body)
        assert response.status_code == 400 and message in response.json["error"], response.json
    assert client.post("/api/v1/studies", headers=headers, data="not json").status_code == 400
    assert count(db, "study") == 1
    patched = client.patch(f"/api/v1/studies/{study_id}/settings", headers=headers, json={"answers_per_item": 2})
    assert patched.status_code == 200 and patched.json["answers_per_item"] == 2
    fixed = client.patch(f"/api/v1/studies/{study_id}/settings", headers=headers, json={"target_share": 0.5})
    assert fixed.status_code == 400 and "cannot change" in fixed.json["error"]
    assert client.post(f"/api/v1/studies/{study_id}/runs/2/open", headers=headers).json["status"] == "open"
    assert client.post(f"/api/v1/studies/{study_id}/runs/2/explode", headers=headers).status_code == 404
    assert client.get("/api/v1/studies/999", headers=headers).status_code == 404
    study = db.get(Study, study_id)
    answer_lineups(app, study, "W1", 3)
    assert len(client.get(f"/api/v1/studies/{study_id}/answers", headers=headers).json) == 3
    items = client.get(f"/api/v1/studies/{study_id}/items", headers=headers).json
    assert sum(i["answers"]["1"] for i in items) == 3
    worker = client.get(f"/api/v1/studies/{study_id}/workers", headers=headers).json[0]
    blocked = client.post(f"/api/v1/studies/{study_id}/workers/{worker['worker_id']}/block", headers=headers)
    assert blocked.json == {"worker": "W1", "blocked": True}
    assert client.post(f"/api/v1/studies/{study_id}/workers/12345/block", headers=headers).status_code == 404
    assert client.delete(f"/api/v1/studies/{study_id}", headers=headers).status_code == 405
    assert json.loads(client.get("/api/v1/nothing").text)["status"] == 404


def zipped(bundle_dir) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in bundle_dir.rglob("*"):
            archive.write(path, "bundle/" + str(path.relative_to(bundle_dir)))
    return buffer.getvalue()


def test_a_zipped_bundle_uploads_through_the_page_and_the_api_and_only_there_may_bodies_be_large(app, client, db,
                                                                                                  bundle_dir):
    make_admin(app)
    login(client)
    data = zipped(bundle_dir)
    assert len(data) > 300_000  # larger than any other route accepts
    csrf = csrf_of(client.get("/admin/").text)
    page = client.post("/admin/studies", content_type="multipart/form-data",
                       data={"csrf_token": csrf, "name": "uploaded", "bundle_zip": (io.BytesIO(data), "b.zip")})
    assert page.status_code == 303
    headers = api_token(client)
    api = client.post("/api/v1/studies", headers=headers, content_type="multipart/form-data",
                      data={"name": "via api", "settings": '{"runs": 1}', "open_runs": "1",
                            "bundle_zip": (io.BytesIO(data), "b.zip")})
    assert api.status_code == 201 and api.json["items"] == 42 and api.json["runs"][0]["status"] == "open"
    junk = client.post("/api/v1/studies", headers=headers, content_type="multipart/form-data",
                       data={"name": "junk", "bundle_zip": (io.BytesIO(b"not a zip"), "b.zip")})
    assert junk.status_code == 400 and "not a zip" in junk.json["error"]
    assert client.patch("/api/v1/studies/1/settings", headers=headers, data=b"{" + b" " * 300_000 + b"}",
                        content_type="application/json").status_code == 413
    assert [s.name for s in db.scalars(select(Study).order_by(Study.id))] == ["uploaded", "via api"]
