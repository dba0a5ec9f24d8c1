"""Real participants (issue 11): identities nobody else can claim, Prolific and MTurk links, per-assignment image
tokens, gold probes that look like reconstructions, the payments export, and what the consent page says. Flask's
test client on SQLite and PostgreSQL (the browser's view is in test_browser_participants.py)."""
import csv
import hashlib
import io
import json
import re
from urllib.parse import urlencode

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image as PILImage
from sqlalchemy import select

from mi_harness.cli import main
from survey_app.export import suggest
from survey_app.gold import Look, sharpness
from survey_app.models import Assignment, Hit, Image, Item, Lineup, LineupFace, Worker

from .conftest import count, csrf_of, join, new_study, page_images, task_form
from .test_admin import api_token, login, make_admin

RESUME = re.compile(r'class="resume-code">([A-Z2-7-]+)<')
MTURK_FAKE = "http://127.0.0.1:9"


def finish_hit(client, study, choose=lambda choices: choices[0]):
    """Answer the worker's current HIT to the end; the done page's HTML (empty where it redirects away)."""
    while (page := client.get(f"/s/{study.slug}/task")).status_code == 200 and "Task " in page.text:
        csrf, token, choices = task_form(page.text)
        assert client.post(f"/s/{study.slug}/answer", data={"csrf_token": csrf, "assignment": token,
                                                            "choice": choose(choices)}).status_code == 303
    return client.get(f"/s/{study.slug}/done").text


def consent(client, study, worker_id, query="", **extra):
    page = client.get(f"/s/{study.slug}/?{query}")
    assert page.status_code == 200, page.text
    hidden = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    return client.post(f"/s/{study.slug}/consent", data={**hidden, "worker_id": worker_id, "consent": "yes",
                                                         **extra})


def test_another_browser_with_a_workers_id_gets_neither_their_code_nor_their_tasks(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=2)
    join(client, study, "W1")
    first = client.get(f"/s/{study.slug}/task").text
    resume = RESUME.search(first).group(1)
    done = finish_hit(client, study)
    code = db.scalars(select(Hit.completion_code)).one()
    assert code in done and resume in done
    stranger = app.test_client()
    refused = consent(stranger, study, "W1", "workerId=W1")
    assert refused.status_code == 403 and "resume code" in refused.text and code not in refused.text
    for path in ("task", "done", "task?more=1"):  # not bound: back to the consent page, never W1's page
        response = stranger.get(f"/s/{study.slug}/{path}")
        assert response.status_code == 302 and response.headers["Location"].endswith(f"/s/{study.slug}/")
    wrong = consent(stranger, study, "W1", resume_code="AAAA-AAAA-AAAA-AAAA")
    assert wrong.status_code == 403
    assert count(db, "worker") == 1 and count(db, "hit") == 1
    # W1's own resume code, typed in lower case with spaces: the stranger is now W1 and sees W1's code
    assert consent(stranger, study, "W1", resume_code=resume.lower().replace("-", " ")).status_code == 303
    assert code in stranger.get(f"/s/{study.slug}/done").text
    # a resume code is the worker's own: W1's does not open W2
    join(app.test_client(), study, "W2")
    assert consent(app.test_client(), study, "W2", resume_code=resume).status_code == 403


def test_a_consent_whose_answer_was_lost_is_accepted_again_from_the_same_browser(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir)
    page = client.get(f"/s/{study.slug}/?workerId=W1").text
    before = client.get_cookie("session").value  # the browser's session before its consent
    form = {"csrf_token": csrf_of(page), "worker_id": "W1", "consent": "yes"}
    assert client.post(f"/s/{study.slug}/consent", data=form).status_code == 303
    client.set_cookie("session", before)  # the response (and its cookie) never arrived; the form is sent again
    assert client.post(f"/s/{study.slug}/consent", data=form).status_code == 303
    assert "Task 1 of" in client.get(f"/s/{study.slug}/task").text
    assert count(db, "worker") == 1
    assert consent(app.test_client(), study, "W1", "workerId=W1").status_code == 403  # another browser: no


def test_a_consent_that_loses_the_race_to_create_its_worker_needs_what_any_returning_worker_needs(
        app, client, db, bundle_dir, monkeypatch):
    """Two consents for one new worker ID at once: the one that finds no worker, then meets the other's row at its
    INSERT (the unique key), goes on as that worker only with what a returning worker needs (here, the browser that
    consented); a stranger is refused and nothing is stored."""
    import survey_app.worker as worker_pages
    from survey_app.prepared import Prepared

    class MissesOnce(Prepared):
        """The lookup before the INSERT finds nothing, as when the other consent had not committed yet."""
        missed = False

        def all(self, connection, params):
            if not self.missed:
                self.missed = True
                return []
            return super().all(connection, params)

    study = new_study(app, bundle_dir)
    page = client.get(f"/s/{study.slug}/?workerId=W1").text
    form = {"csrf_token": csrf_of(page), "worker_id": "W1", "consent": "yes"}
    assert client.post(f"/s/{study.slug}/consent", data=form).status_code == 303
    stranger = app.test_client()
    monkeypatch.setattr(worker_pages, "WORKER_NAMED", MissesOnce(worker_pages.WORKER_NAMED.statement))
    refused = consent(stranger, study, "W1")
    assert refused.status_code == 403 and "resume code" in refused.text
    assert worker_pages.WORKER_NAMED.missed and count(db, "worker") == 1
    monkeypatch.setattr(worker_pages, "WORKER_NAMED", MissesOnce(worker_pages.WORKER_NAMED.statement))
    assert client.post(f"/s/{study.slug}/consent", data=form).status_code == 303
    assert "Task 1 of" in client.get(f"/s/{study.slug}/task").text and count(db, "worker") == 1


def test_a_prolific_link_records_its_ids_and_finishes_at_the_completion_url(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=2, completion_url="https://app.prolific.com/submissions/complete?cc=C1")
    query = urlencode({"PROLIFIC_PID": "5f0a1b2c3d4e5f6a7b8c9d0e", "STUDY_ID": "st1", "SESSION_ID": "se1"})
    page = client.get(f"/s/{study.slug}/?{query}")
    assert "5f0a1b2c3d4e5f6a7b8c9d0e" in page.text and 'name="SESSION_ID" value="se1"' in page.text
    assert consent(client, study, "5f0a1b2c3d4e5f6a7b8c9d0e", query).status_code == 303
    client.get(f"/s/{study.slug}/task")
    hit = db.scalars(select(Hit)).one()
    assert (hit.platform, hit.platform_assignment, hit.platform_hit) == ("prolific", "se1", "st1")
    finish_hit(client, study)
    done = client.get(f"/s/{study.slug}/done")
    assert done.status_code == 303 and done.headers["Location"] == "https://app.prolific.com/submissions/complete?cc=C1"
    # the same participant on another device: Prolific's session id is theirs alone, and opens their record
    other = app.test_client()
    assert consent(other, study, "5f0a1b2c3d4e5f6a7b8c9d0e", query).status_code == 303
    assert other.get(f"/s/{study.slug}/task").headers["Location"].endswith("/done")
    assert count(db, "hit") == 1  # one Prolific session, one HIT
    forged = urlencode({"PROLIFIC_PID": "5f0a1b2c3d4e5f6a7b8c9d0e", "STUDY_ID": "st1", "SESSION_ID": "guess"})
    assert consent(app.test_client(), study, "5f0a1b2c3d4e5f6a7b8c9d0e", forged).status_code == 403


def mturk_query(worker="AW1", assignment="A1", submit_to=MTURK_FAKE):
    return urlencode({"workerId": worker, "assignmentId": assignment, "hitId": "H1", "turkSubmitTo": submit_to})


@pytest.fixture
def mturk_app(app):
    app.config["MTURK_SUBMIT_TO"] = (MTURK_FAKE,)
    return app


def test_mturk_preview_shows_a_sample_and_records_nothing(mturk_app, db, bundle_dir):
    study = new_study(mturk_app, bundle_dir, hit_size=3)
    client = mturk_app.test_client()
    preview = client.get(f"/s/{study.slug}/?assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE&hitId=H1")
    assert preview.status_code == 200 and "preview" in preview.text.lower() and "<form" not in preview.text
    assert "Each batch has <strong>3 tasks</strong>" in preview.text
    images = page_images(preview.text)
    assert len(images) >= 6 and all(PILImage.open(io.BytesIO(png)).size == (92, 112) for png in images)
    refused = client.post(f"/s/{study.slug}/consent", data={
        "csrf_token": csrf_of(client.get(f"/s/{study.slug}/").text), "worker_id": "AW1", "consent": "yes",
        "assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"})
    assert refused.status_code == 400 and "accept the HIT" in refused.text
    assert count(db, "worker") == 0 and count(db, "hit") == 0 and count(db, "answer") == 0


@pytest.mark.parametrize("query, problem", [
    (mturk_query(submit_to="https://evil.example"), "turkSubmitTo"),
    (mturk_query(assignment="A 1"), "assignmentId"),
    (mturk_query(worker=""), "workerId"),
    ("PROLIFIC_PID=P1&STUDY_ID=s", "SESSION_ID"),
])
def test_a_malformed_platform_link_is_refused_by_name(mturk_app, db, bundle_dir, query, problem):
    study = new_study(mturk_app, bundle_dir)
    response = mturk_app.test_client().get(f"/s/{study.slug}/?{query}")
    assert response.status_code == 400 and problem in response.text
    assert count(db, "worker") == 0


def test_an_mturk_assignment_is_one_hit_submitted_to_turk_submit_to(mturk_app, db, bundle_dir):
    study = new_study(mturk_app, bundle_dir, hit_size=2)
    client = mturk_app.test_client()
    assert consent(client, study, "AW1", mturk_query()).status_code == 303
    done = finish_hit(client, study)
    hit = db.scalars(select(Hit)).one()
    assert (hit.platform, hit.platform_assignment, hit.platform_hit, hit.submit_to) == ("mturk", "A1", "H1",
                                                                                        MTURK_FAKE)
    form = re.search(r'<form method="post" action="([^"]+)" class="inline mturk-submit">(.*?)</form>', done, re.S)
    assert form and form.group(1) == f"{MTURK_FAKE}/mturk/externalSubmit"
    assert 'name="assignmentId" value="A1"' in form.group(2) and hit.completion_code in form.group(2)
    assert "Take another batch" not in done
    # MTurk reloads the same assignment: still the one HIT; a new assignment in this browser: a new HIT
    assert client.get(f"/s/{study.slug}/?{mturk_query()}", follow_redirects=True).request.path.endswith("/done")
    assert count(db, "hit") == 1
    page = client.get(f"/s/{study.slug}/?{mturk_query(assignment='A2')}", follow_redirects=True)
    assert "Task 1 of 2" in page.text
    assert sorted(db.scalars(select(Hit.platform_assignment))) == ["A1", "A2"]
    # another browser: the recorded assignment id is the worker's proof, an unknown one is not
    assert consent(mturk_app.test_client(), study, "AW1", mturk_query(assignment="A9")).status_code == 403
    assert consent(mturk_app.test_client(), study, "AW1", mturk_query(assignment="A2")).status_code == 303


def pixels(png: bytes) -> bytes:
    return PILImage.open(io.BytesIO(png)).tobytes()


def test_the_same_face_has_different_bytes_in_every_assignment_and_the_same_pixels(app, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=50)
    pages = {}
    for worker in ("W1", "W2"):
        client = app.test_client()
        join(client, study, worker)
        html = client.get(f"/s/{study.slug}/task").text
        while True:  # every lineup, by assignment
            csrf, token, choices = task_form(html)
            lineup = db.scalar(select(Assignment.lineup_id).where(Assignment.token == token))
            pages.setdefault(lineup, {})[worker] = page_images(html)
            assert page_images(client.get(f"/s/{study.slug}/task").text) == pages[lineup][worker]  # a reload
            client.post(f"/s/{study.slug}/answer", data={"csrf_token": csrf, "assignment": token,
                                                         "choice": choices[0]})
            html = client.get(f"/s/{study.slug}/task").text
            if "Task " not in html or len(pages) >= 8 and all(len(v) == 2 for v in pages.values()):
                break
    shared = [lid for lid, seen in pages.items() if len(seen) == 2]
    assert shared, "the two workers saw no lineup in common"
    for lineup_id in shared:
        mine, theirs = pages[lineup_id]["W1"], pages[lineup_id]["W2"]
        assert len(mine) == len(theirs) >= 6
        assert not {hashlib.sha256(png).digest() for png in mine} & {hashlib.sha256(png).digest() for png in theirs}
        lineup = db.get(Lineup, lineup_id)
        item = db.get(Item, lineup.item_id)
        stored = [db.get(Image, i).png for i in (item.image_id, *([item.aux_image_id] if item.aux_image_id else []),
                                                 *(f.image_id for f in lineup.faces))]
        assert [pixels(png) for png in mine] == [pixels(png) for png in theirs] == [pixels(png) for png in stored]
        for png, original in zip(mine, stored):
            # the stored PNG with one private ancillary chunk after IHDR, and nothing else added
            assert png[:33] == original[:33] and png[63:] == original[33:] and png[37:41] == b"miXn"
    assert len({png for seen in pages.values() for images in seen.values() for png in images}) == \
        sum(len(images) for seen in pages.values() for images in seen.values())  # no two images alike anywhere


def test_gold_probes_look_like_the_reconstructions_and_are_shown_nowhere_else(app, db, bundle_dir):
    study = new_study(app, bundle_dir, gold_items=4)
    gold = db.scalars(select(Item).where(Item.study_id == study.id, Item.is_gold)).all()
    assert len(gold) == 4
    others = {db.get(Image, i).sha256 for i in db.scalars(select(Item.image_id).where(~Item.is_gold))} | \
        {db.get(Image, i).sha256 for i in db.scalars(select(LineupFace.image_id))}
    reconstructions = [np.asarray(PILImage.open(io.BytesIO(db.get(Image, it.image_id).png)), dtype=float) / 255
                       for it in db.scalars(select(Item).where(~Item.is_gold, ~Item.is_control))]
    look = Look(reconstructions)
    probes = []
    for item in gold:
        image = db.get(Image, item.image_id)
        assert image.sha256 not in others and image.sha256 == hashlib.sha256(image.png).hexdigest()
        probe = np.asarray(PILImage.open(io.BytesIO(image.png)), dtype=float) / 255
        probes.append(probe)
        assert "blurred" in item.params["probe"]
        # as sharp as the reconstructions (to the grey levels' rounding), where the photo itself is far sharper
        assert abs(sharpness(probe) - look.sharpness) < 0.15 * look.sharpness
        assert abs(probe.mean() - look.mean) < 0.02 and abs(probe.std() - look.std) < 0.02
    assert len({p.tobytes() for p in probes}) == 4


def test_the_consent_page_says_what_the_admin_set_and_the_exact_batch(app, client, db, bundle_dir):
    make_admin(app)
    study = new_study(app, bundle_dir, hit_size=10, gold_items=2, gold_per_hit=1)
    page = client.get(f"/s/{study.slug}/").text
    assert "Each batch has <strong>11 tasks</strong>" in page and "about" not in page
    admin = app.test_client()
    login(admin)
    form = admin.get(f"/admin/studies/{study.id}").text
    assert '<textarea name="consent_text"' in form
    saved = admin.post(f"/admin/studies/{study.id}/settings", data={
        "csrf_token": csrf_of(form), "consent_text": "We study faces.\n\nYou can stop any time.",
        "researcher_contact": "Dr Ada, ada@example.org", "ethics_approval": "IRB 2026-042", "pay": "£1.20",
        "hit_size": "5"})
    assert saved.status_code == 303
    page = client.get(f"/s/{study.slug}/").text
    for shown in ("<p>We study faces.</p>", "<p>You can stop any time.</p>", "Dr Ada, ada@example.org",
                  "IRB 2026-042", "Pay: £1.20", "Each batch has <strong>6 tasks</strong>"):
        assert shown in page
    bad = admin.post(f"/admin/studies/{study.id}/settings", data={"csrf_token": csrf_of(form),
                                                                  "completion_url": "javascript:alert(1)"})
    assert bad.status_code == 400 and "completion_url" in bad.text


def test_suggest_approves_effort_not_skill():
    worker = {"blocked": False, "gold_answers": 4, "gold_correct": 2}
    assert suggest(True, 10, 10, worker, 1 / 6) == ("approve", "finished; gold items: 2 of 4 right")  # unskilled
    assert suggest(True, 10, 10, {**worker, "gold_correct": 0}, 1 / 6) == (
        "reject", "gold items: 0 of 4 right, no better than chance (17%)")
    assert suggest(True, 10, 10, {**worker, "gold_answers": 2, "gold_correct": 0}, 1 / 6)[0] == "approve"  # too few
    assert suggest(False, 3, 10, worker, 1 / 6) == ("reject", "the batch was not finished (3 of 10 tasks answered)")
    assert suggest(True, 10, 10, {**worker, "blocked": True}, 1 / 6)[0] == "reject"
    assert suggest(True, 10, 10, {**worker, "gold_answers": 0, "gold_correct": 0}, 1 / 6)[0] == "approve"


def test_the_payments_export_by_admin_page_api_and_cli(mturk_app, db, database, bundle_dir):
    app = mturk_app
    make_admin(app)
    study = new_study(app, bundle_dir, hit_size=2, gold_items=3, gold_per_hit=3)
    good, bad = app.test_client(), app.test_client()
    gold_position = {lid: pos for lid, pos in db.execute(select(Lineup.id, Lineup.target_position)
                                                         .join(Item).where(Item.is_gold))}

    def answering(client, right_on_gold):
        def choose(choices):
            page = client.get(f"/s/{study.slug}/task").text
            lineup = db.scalar(select(Assignment.lineup_id).where(Assignment.token == task_form(page)[1]))
            if lineup in gold_position:
                target = gold_position[lineup] + 1
                return str(target if right_on_gold else target % 5 + 1)
            return choices[0]
        return choose

    assert consent(good, study, "GOOD", mturk_query("GOOD", "AG")).status_code == 303
    finish_hit(good, study, answering(good, True))
    assert consent(bad, study, "BAD", mturk_query("BAD", "AB")).status_code == 303
    finish_hit(bad, study, answering(bad, False))
    admin = app.test_client()
    login(admin)
    rows = json.loads(admin.get(f"/admin/studies/{study.id}/payments.json").data)
    by_worker = {w["worker"]: w for w in rows}
    assert set(by_worker) == {"GOOD", "BAD"}
    for name, assignment, verdict in (("GOOD", "AG", "approve"), ("BAD", "AB", "reject")):
        worker = by_worker[name]
        (hit,) = worker["hits"]
        assert hit["platform"] == "mturk" and hit["platform_assignment"] == assignment and hit["platform_hit"] == "H1"
        assert hit["suggestion"] == verdict and worker["gold_answers"] == 3 and len(hit["answers"]) == 5
        assert hit["completion_code"] == db.scalar(select(Hit.completion_code).join(Worker)
                                                   .where(Worker.external_id == name))
        assert "skilled" in worker
    listed = list(csv.DictReader(io.StringIO(admin.get(f"/admin/studies/{study.id}/payments.csv").text)))
    assert {(r["worker"], r["platform_assignment"], r["suggestion"]) for r in listed} == {
        ("GOOD", "AG", "approve"), ("BAD", "AB", "reject")}
    assert admin.get(f"/admin/studies/{study.id}/payments.xml").status_code == 404
    api = app.test_client()
    headers = api_token(api)
    assert api.get(f"/api/v1/studies/{study.id}/payments", headers=headers).json == rows
    assert api.get(f"/api/v1/studies/{study.id}/payments?format=xml", headers=headers).status_code == 400
    result = CliRunner().invoke(main, ["study", "export", str(study.id), "--payments", "--database", database],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert {(r["worker"], r["suggestion"]) for r in csv.DictReader(io.StringIO(result.stdout))} == {
        ("GOOD", "approve"), ("BAD", "reject")}
