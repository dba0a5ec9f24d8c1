"""Dozens of workers at once against the real server (gunicorn, several processes), submitting duplicates,
double clicks that race each other and retries after timeouts: the database ends with exactly the answers
that were meant, one per task."""
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from survey_app.db import make_engine
from survey_app.hits import LOCK_RUN, start_hit
from survey_app.importer import create_study, load_bundle, settings_from
from survey_app.migrate import upgrade
from survey_app.models import Answer, Assignment, Hit, Run, Worker, utcnow
from survey_app.server import ServerProcess as Server
from survey_app.studies import set_run_status

from .conftest import join, new_study, task_form

WORKERS, HIT_SIZE = 40, 8


def post(session, url, data, rng):
    """Submit like an unreliable network would: sometimes give up waiting and send again."""
    for _ in range(20):
        try:
            timeout = 0.002 if rng.random() < 0.1 else 30  # the request may still land: then this is a retry
            response = session.post(url, data=data, allow_redirects=False, timeout=timeout)
        except (requests.Timeout, requests.ConnectionError):  # gave up, or a kept-alive connection the server
            continue                                                # had just closed: the same form again
        if response.status_code == 503:
            continue
        return response
    raise AssertionError("no answer after 20 tries")


def worker_session(base, slug, name, seed):
    rng = random.Random(seed)
    session = requests.Session()
    page = session.get(f"{base}/s/{slug}/?workerId={name}", timeout=30)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert post(session, f"{base}/s/{slug}/consent", {"csrf_token": csrf, "worker_id": name, "consent": "yes"},
                rng).status_code == 303
    codes = set()
    with ThreadPoolExecutor(2) as twin:
        for _ in range(HIT_SIZE * 3):
            page = session.get(f"{base}/s/{slug}/task", timeout=30)
            if "completion-code" in page.text:
                codes.update(re.findall(r'class="completion-code">([^<]+)<', page.text))
                break
            csrf, token, choices = task_form(page.text)
            data = {"csrf_token": csrf, "assignment": token, "choice": rng.choice(choices)}
            url = f"{base}/s/{slug}/answer"
            if rng.random() < 0.3:  # a double click whose two requests race each other
                statuses = list(twin.map(lambda _: post(session, url, data, rng).status_code, range(2)))
            else:
                statuses = [post(session, url, data, rng).status_code]
            if rng.random() < 0.2:  # the back button and the same form again, later
                statuses.append(post(session, url, data, rng).status_code)
            assert set(statuses) == {303}, statuses
    return codes


@pytest.mark.slow
def test_concurrent_workers_store_exactly_one_answer_per_task(empty_database, bundle_dir):
    url = empty_database
    upgrade(url)
    engine = make_engine(url)
    with Session(engine) as db:
        study = create_study(db, load_bundle(bundle_dir), "load",
                             settings_from({"hit_size": HIT_SIZE, "answers_per_item": 10}), "test")
        set_run_status(db, study, 1, "open")
        db.commit()
        slug = study.slug
    server = Server(url, workers=2, threads=8)
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            codes = list(pool.map(lambda n: worker_session(server.base, slug, f"W{n:03d}", n), range(WORKERS)))
    finally:
        log = server.stop()
    assert "Traceback" not in log, log
    with Session(engine) as db:
        assert db.scalar(select(func.count()).select_from(Answer)) == WORKERS * HIT_SIZE
        assert db.scalar(select(func.count()).select_from(Assignment)) == WORKERS * HIT_SIZE
        unanswered = select(Assignment.id).where(~select(Answer.id).where(Answer.assignment_id == Assignment.id)
                                                 .exists())
        assert db.scalars(unanswered).all() == []
        hits = db.scalars(select(Hit)).all()
        assert len(hits) == WORKERS and all(h.completion_code for h in hits)
        assert sorted(c for cs in codes for c in cs) == sorted(h.completion_code for h in hits)
        per_lineup = db.execute(select(Answer.lineup_id, func.count()).group_by(Answer.lineup_id)).all()
        assert max(n for _, n in per_lineup) <= 10
    engine.dispose()


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)  # SQLite has one writer lock, not rows'
def test_an_answer_does_not_wait_for_a_hit_being_handed_out_in_its_run(app, client, db, bundle_dir):
    """The hand-out locks its run's row so that HITs in one run are made one at a time; answers, whose foreign key to
    the run takes a KEY SHARE lock on that row, go on meanwhile (FOR NO KEY UPDATE, not FOR UPDATE)."""
    study = new_study(app, bundle_dir, hit_size=2)
    join(client, study, "W1")
    csrf, assignment, choices = task_form(client.get(f"/s/{study.slug}/task").text)
    run_id = db.scalar(select(Run.id).where(Run.study_id == study.id, Run.number == 1))
    engine = app.extensions["survey_engine"]
    with engine.connect() as handing_out:
        handing_out.begin()
        LOCK_RUN.all(handing_out, {"run_id": run_id})  # a hand-out in this run, its transaction open
        with engine.connect() as other_hand_out:  # another one waits for it
            other_hand_out.exec_driver_sql("SET lock_timeout = '200ms'")
            with pytest.raises(OperationalError, match="lock timeout"):
                LOCK_RUN.all(other_hand_out, {"run_id": run_id})
        response = {}
        sender = threading.Thread(target=lambda: response.update(status=client.post(
            f"/s/{study.slug}/answer", data={"csrf_token": csrf, "assignment": assignment, "choice": choices[0]}
        ).status_code))
        sender.start()
        sender.join(timeout=10)
        answered_meanwhile = not sender.is_alive()
        handing_out.rollback()
    sender.join()
    assert answered_meanwhile, "the answer waited for the hand-out's run lock"
    assert response["status"] == 303
    assert db.scalar(select(func.count()).select_from(Answer)) == 1


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)  # SQLite has one writer lock, not rows'
def test_a_hit_made_by_another_tab_while_the_hand_out_waited_for_its_run_is_the_one_shown(app, client, db,
                                                                                         bundle_dir):
    """Two tabs of one worker ask for work at once: the second hand-out found no HIT, then waited for the run's lock
    while the first made one. Once it holds the lock it looks again and shows that HIT rather than making a second."""
    study = new_study(app, bundle_dir, hit_size=2)
    join(client, study, "W1")
    worker = db.scalar(select(Worker).where(Worker.external_id == "W1"))
    run_id = db.scalar(select(Run.id).where(Run.study_id == study.id, Run.number == 1))
    engine = app.extensions["survey_engine"]
    with engine.connect() as first_tab:
        first_tab.begin()
        LOCK_RUN.all(first_tab, {"run_id": run_id})
        response = {}
        second_tab = threading.Thread(target=lambda: response.update(page=client.get(f"/s/{study.slug}/task")))
        second_tab.start()
        waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                       "AND datname = current_database()")
        deadline = time.monotonic() + 10
        while first_tab.execute(waiting).scalar() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert second_tab.is_alive(), "the second tab's hand-out did not wait for the run"
        made = start_hit(Session(bind=first_tab), study, worker, utcnow())
        first_tab.commit()
    second_tab.join(timeout=30)
    assert response["page"].status_code == 200 and "Task 1 of" in response["page"].text
    assert db.scalars(select(Hit.id)).all() == [made]
