"""The worker's path through a study, with the Flask test client, on SQLite and on PostgreSQL."""
import re
import time
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import case, event, func, select
from sqlalchemy.engine import Engine

from survey_app.db import _LockedConnection
from survey_app.hits import TASK_PAGE
from survey_app.models import Answer, Assignment, Hit, Image, Item, Lineup, LineupFace, Run, RunLineup, Worker
from survey_app.shown import EPOCH

from .conftest import count, csrf_of, join, new_study, page_images, task_form


def answer(client, study, html, choice=0):
    csrf, assignment, choices = task_form(html)
    return client.post(f"/s/{study.slug}/answer",
                       data={"csrf_token": csrf, "assignment": assignment, "choice": choices[choice]})


def test_a_worker_completes_a_hit_and_gets_a_completion_code(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=4)
    assert join(client, study, "W1").headers["Location"].endswith(f"/s/{study.slug}/task")
    for number in range(1, 5):
        page = client.get(f"/s/{study.slug}/task")
        assert page.status_code == 200 and f"Task {number} of 4" in page.text
        assert page.headers["Cache-Control"] == "no-store"
        response = answer(client, study, page.text, choice=number % 6)
        assert response.status_code == 303
    # the last answer closed the HIT in its own commit, and goes straight to the done page
    assert response.headers["Location"].endswith(f"/s/{study.slug}/done")
    hit = db.scalars(select(Hit)).one()
    assert hit.completed_at is not None and hit.completion_code
    done = client.get(response.headers["Location"])
    assert hit.completion_code in done.text
    finished = client.get(f"/s/{study.slug}/task")  # a reload of the last task page: the done page again
    assert finished.status_code == 303 and finished.headers["Location"].endswith("/done")
    assert count(db, "answer") == 4
    stored = db.scalars(select(Answer)).all()
    for a in stored:  # correctness is judged against the lineup, on the server
        lineup = db.get(Lineup, a.lineup_id)
        assert a.correct == (a.choice == (lineup.target_position if lineup.target_present else -1))
        assert a.answered_at >= a.shown_at


def never_close_with_the_answer(monkeypatch):
    """The close that follows an answer finds nothing to close (as when another tab's answer commits at the same
    moment on PostgreSQL), in whichever statement the database takes it: its own, or the answer's."""
    from sqlalchemy import literal

    import survey_app.hits as hits
    from survey_app.prepared import Prepared

    nothing = literal(-1)
    monkeypatch.setattr(hits, "CLOSE_FINISHED", Prepared(hits._close_finished(nothing)))
    for name, absent in (("STORE_FACE_THEN_CLOSE", False), ("STORE_ABSENT_THEN_CLOSE", True)):
        monkeypatch.setattr(hits, name, Prepared(hits._store_then_close(absent, nothing), writes=True))


@contextmanager
def statements_run(engine: Engine):
    """The SQL of every statement run on ``engine`` within the block, as a list that fills as they run."""
    statements = []

    def listener(conn, cursor, statement, *rest):
        statements.append(statement)
    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def closing_updates(statements: list[str]) -> list[str]:
    """What the closing UPDATEs among ``statements`` set (alone, or in a WITH with the answer)."""
    return [found for statement in statements for found in re.findall(r"UPDATE hit SET (.*?) WHERE", statement, re.S)]


def next_page(client, study, html, choice=0):
    """An answer as task.js sends it: asking for the page it leads to in the answer's own response."""
    csrf, assignment, choices = task_form(html)
    return client.post(f"/s/{study.slug}/answer", headers={"X-Survey-Next": "task"},
                       data={"csrf_token": csrf, "assignment": assignment, "choice": choices[choice]})


def test_the_task_page_is_ascii_whichever_way_it_comes(app, client, bundle_dir):
    """A task page is some 56 KB, nearly all of it its inline images. One character past ASCII anywhere in it (an en
    dash in a template, say) makes Python build the whole page as wider text and transcode it to UTF-8 on the way
    out, about 100 us more per page (BENCHMARKS.md, issue 14); the templates write such characters as entities."""
    study = new_study(app, bundle_dir, hit_size=2, allow_absent=True, confidence_scale=3)
    join(client, study, "W1")
    first = client.get(f"/s/{study.slug}/task")
    csrf, assignment, _ = task_form(first.text)
    following = client.post(f"/s/{study.slug}/answer", headers={"X-Survey-Next": "task"},
                            data={"csrf_token": csrf, "assignment": assignment, "choice": "1", "confidence": "2"})
    for page in (first, following):
        assert page.status_code == 200 and "Task " in page.text and len(page.data) > 20_000
        assert page.data.isascii(), sorted({c for c in page.text if not c.isascii()})
    assert "<kbd>1</kbd>&ndash;<kbd>" in first.text  # the keys' range, as an entity


def test_an_answer_sent_by_the_page_script_brings_the_next_page_with_it(app, client, db, bundle_dir):
    """One request a task: the answer's response is the next task's page (the page a GET shows, its first-shown
    time in the session), and after the HIT's last answer the done page, each with its address."""
    study = new_study(app, bundle_dir, hit_size=3)
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task")
    for number in (2, 3):
        answered = task_form(page.text)[1]
        page = next_page(client, study, page.text)
        assert page.status_code == 200 and f"Task {number} of 3" in page.text
        assert page.headers["Content-Location"] == f"/s/{study.slug}/task"
        assert page.headers["Cache-Control"] == "no-store" and len(page_images(page.text)) >= 6
        token = task_form(page.text)[1]
        assert token != answered and shown_entry(client, study)[0] == token
        assert task_form(client.get(f"/s/{study.slug}/task").text)[1] == token  # a reload: the same task
    refused = client.post(f"/s/{study.slug}/answer", headers={"X-Survey-Next": "task"},
                          data={"csrf_token": csrf_of(page.text), "assignment": token, "choice": "9"})
    assert refused.status_code == 400 and count(db, "answer") == 2  # refused as any answer is
    done = next_page(client, study, page.text)
    hit = db.scalars(select(Hit)).one()
    assert done.status_code == 200 and done.headers["Content-Location"] == f"/s/{study.slug}/done"
    assert hit.completed_at is not None and hit.completion_code in done.text and "Task " not in done.text
    assert count(db, "answer") == 3


def test_the_page_an_answer_brings_is_the_page_a_reload_shows(app, client, db, bundle_dir):
    """The next task's page that comes with an answer is, byte for byte, the page a GET shows next, whichever choice
    was sent (a face, "not in this lineup") and when the answer is sent again (stored once). On PostgreSQL the answer
    and that page are one statement (an INSERT in the page's WITH), whose snapshot does not show the new answer: the
    page must still count it and move past its task."""
    study = new_study(app, bundle_dir, hit_size=4, allow_absent=True)
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task")
    statements = []

    def sent(_connection, _cursor, statement, *_args):
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", sent)
    try:
        for number, choice in ((2, 0), (3, -1), (4, 2)):  # -1: "not in this lineup", the last of the choices
            statements.clear()
            following = next_page(client, study, page.text, choice=choice)
            assert following.status_code == 200 and f"Task {number} of 4" in following.text
            if app.extensions["survey_engine"].dialect.name == "postgresql":  # images: read once, then cached
                ours = [text for text in statements if "FROM image" not in text]
                assert len(ours) == 1 and "INSERT INTO answer" in ours[0], ours
            again = next_page(client, study, page.text, choice=choice)  # the same answer, sent again
            assert again.status_code == 200 and count(db, "answer") == number - 1
            reload = client.get(f"/s/{study.slug}/task")
            assert following.data == again.data == reload.data
            page = following
    finally:
        event.remove(Engine, "before_cursor_execute", sent)
    choices = db.scalars(select(Answer.choice).order_by(Answer.id)).all()
    assert choices[1] == -1 and choices[0] != -1 and choices[2] != -1
    assert next_page(client, study, page.text).headers["Content-Location"] == f"/s/{study.slug}/done"
    assert db.scalars(select(Hit.completed_at)).one() is not None


def test_an_answer_whose_next_page_cannot_be_built_redirects_to_it(app, client, db, bundle_dir, monkeypatch):
    """The answer is stored before the next page is built: a page that fails then (a dropped database connection)
    or that must be handed out first answers with the redirect, never an error saying nothing was stored."""
    from sqlalchemy.exc import OperationalError

    import survey_app.worker as worker

    study = new_study(app, bundle_dir, hit_size=2)
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task").text

    def dropped(*_args):
        raise OperationalError("SELECT", {}, Exception("server closed the connection unexpectedly"))

    with monkeypatch.context() as patch:
        patch.setattr(worker, "_show_task", dropped)
        response = next_page(client, study, page)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/s/{study.slug}/task")
    assert count(db, "answer") == 1
    never_close_with_the_answer(monkeypatch)
    response = next_page(client, study, client.get(f"/s/{study.slug}/task").text)
    assert response.status_code == 303 and response.headers["Location"].endswith("/task")  # no task left to show
    assert count(db, "answer") == 2
    assert client.get(response.headers["Location"]).headers["Location"].endswith("/done")  # closed there


def test_only_the_answer_to_a_hits_last_open_task_tries_to_close_it(app, client, db, bundle_dir):
    """The page notes in the session whether its task was the HIT's last unanswered one; only that answer runs the
    closing statement. An entry that does not say (an older server's cookie) tries, as every answer once did."""
    study = new_study(app, bundle_dir, hit_size=3)
    join(client, study, "W1")
    engine = app.extensions["survey_answers"].engine
    tried = []
    for number in range(3):
        page = client.get(f"/s/{study.slug}/task").text
        if number == 0:
            with client.session_transaction() as session:  # as an older server wrote it: token and time only
                session["shown"] = {study.slug: session["shown"][study.slug][:2]}
        with statements_run(engine) as statements:
            response = answer(client, study, page)
        tried.append(len(closing_updates(statements)))
        assert db.scalars(select(Hit.completed_at)).one() is None or number == 2
    assert tried == [1, 0, 1]
    assert response.headers["Location"].endswith("/done") and db.scalars(select(Hit.completed_at)).one()


def test_closing_a_hit_sets_only_its_completion(app, client, db, bundle_dir):
    """The closing UPDATE runs with the answer's parameters: none of them may be named after a column of hit, which
    SQLAlchemy would then add to what the UPDATE sets. On PostgreSQL it is in the answer's own statement."""
    study = new_study(app, bundle_dir, hit_size=1)
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task").text
    engine = app.extensions["survey_answers"].engine
    with statements_run(engine) as statements:
        assert answer(client, study, page).headers["Location"].endswith("/done")
    updates = closing_updates(statements)
    assert len(updates) == 1, updates
    assert sorted(part.split("=")[0].strip() for part in updates[0].split(",")) == ["completed_at", "completion_code"]
    stores = [statement for statement in statements if "INSERT INTO answer" in statement]
    assert len(stores) == 1 and ("UPDATE hit" in stores[0]) == (engine.dialect.name == "postgresql")


def test_another_batch_goes_straight_to_a_hand_out_of_one_statement_on_postgresql(app, client, db, bundle_dir):
    """"Take another batch" (``more=1``) hands out at once: no look for a task first, which would find none. On
    PostgreSQL the new HIT and its tasks are one INSERT (the HIT's in its WITH), on SQLite two; either way every task
    belongs to the new HIT, in positions 0 to n - 1, each with a token of its own."""
    study = new_study(app, bundle_dir, hit_size=2)
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task").text
    while "Task " in page:
        page = client.get(answer(client, study, page).headers["Location"]).text
    engine = app.extensions["survey_engine"]
    task_page = str(TASK_PAGE.compile(dialect=engine.dialect))
    with statements_run(Engine) as statements:  # every engine of the app: the reader's, the hand-out's
        page = client.get(f"/s/{study.slug}/task?more=1").text
    total = int(re.search(r"Task 1 of (\d+)", page).group(1))
    writes = [statement for statement in statements if re.search(r"INSERT INTO (hit|assignment)\b", statement)]
    if engine.dialect.name == "postgresql":
        assert len(writes) == 1 and "INSERT INTO hit" in writes[0] and "INSERT INTO assignment" in writes[0], writes
    else:
        assert [bool(re.search(r"^\s*INSERT INTO hit\b", statement)) for statement in writes] == [True, False]
    assert statements.count(task_page) == 1 and statements.index(task_page) > statements.index(writes[-1])
    newest = db.scalar(select(func.max(Hit.id)))
    tasks = db.execute(select(Assignment.position, Assignment.token).where(Assignment.hit_id == newest)).all()
    assert sorted(task.position for task in tasks) == list(range(total)) == list(range(len(tasks)))
    assert len({task.token for task in tasks}) == total >= 2
    assert task_form(page)[1] in {task.token for task in tasks}
    # run_lineup's trigger, which reads the task's HIT, counted the tasks of the HIT made in the same statement
    assert db.scalar(select(func.sum(RunLineup.handed))) == db.scalar(select(func.count()).select_from(Assignment))


def test_the_last_answer_closes_its_own_hit_only(app, client, db, bundle_dir):
    """Another worker's HIT, still unanswered, neither keeps this one open nor is closed with it."""
    study = new_study(app, bundle_dir, hit_size=2)
    other = app.test_client()
    for browser, name in ((client, "W1"), (other, "W2")):
        join(browser, study, name)
    waiting = other.get(f"/s/{study.slug}/task")  # W2's HIT, nothing answered
    assert waiting.status_code == 200
    for _ in range(2):
        response = answer(client, study, client.get(f"/s/{study.slug}/task").text)
    assert response.headers["Location"].endswith("/done")
    by_worker = {hit.worker_id: hit.completed_at for hit in db.scalars(select(Hit))}
    assert sorted(done is None for done in by_worker.values()) == [False, True]


def test_a_hit_its_last_answer_did_not_close_is_closed_by_the_next_task_page(app, client, db, bundle_dir,
                                                                            monkeypatch):
    """As when another tab's answer commits at the same moment on PostgreSQL: the close in the answer's commit finds
    a task still unanswered, and the task page that follows closes the HIT."""
    study = new_study(app, bundle_dir, hit_size=2)
    join(client, study, "W1")
    never_close_with_the_answer(monkeypatch)
    for _ in range(2):
        response = answer(client, study, client.get(f"/s/{study.slug}/task").text)
    assert response.headers["Location"].endswith("/task")
    assert db.scalars(select(Hit)).one().completed_at is None
    closing = client.get(response.headers["Location"])
    assert closing.status_code == 303 and closing.headers["Location"].endswith("/done")
    db.expire_all()
    hit = db.scalars(select(Hit)).one()
    assert hit.completed_at is not None and hit.completion_code in client.get(closing.headers["Location"]).text


def shown_entry(client, study):
    """The (assignment token, milliseconds, whether it was the HIT's last open task) the signed session cookie holds
    for the task first shown."""
    with client.session_transaction() as session:
        return tuple(session["shown"][study.slug])


def test_reload_and_back_resume_and_a_repeated_submit_stores_one_answer(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=3)
    join(client, study, "W1")
    first = client.get(f"/s/{study.slug}/task").text
    shown = shown_entry(client, study)
    assert shown[0] == task_form(first)[1]
    time.sleep(0.01)  # so that a reload that restarted the clock would be seen
    assert task_form(client.get(f"/s/{study.slug}/task").text)[1] == task_form(first)[1]  # reload: same lineup
    assert shown_entry(client, study) == shown  # the reload did not restart the clock
    assert answer(client, study, first).status_code == 303
    assert answer(client, study, first, choice=2).status_code == 303  # double click / back button + resubmit
    assert count(db, "answer") == 1
    stored = db.scalars(select(Answer)).one()
    assert stored.shown_at == EPOCH + timedelta(milliseconds=shown[1])  # the first view's time, not the reload's
    assert stored.answered_at >= stored.shown_at
    assert task_form(client.get(f"/s/{study.slug}/task").text)[1] != task_form(first)[1]
    assert answer(client, study, first).status_code == 303  # the old form once more, from the next page: nothing
    assert count(db, "answer") == 1


def test_showing_a_task_reads_once_and_writes_nothing(app, client, db, bundle_dir, monkeypatch):
    """A task page is one SELECT (and, the first time a process shows its images, one more for them), no write, and
    on SQLite never the writer lock; only handing out a HIT and the answer write."""
    study = new_study(app, bundle_dir, hit_size=3)
    join(client, study, "W1")
    answer(client, study, client.get(f"/s/{study.slug}/task").text)  # the first page made the HIT
    statements, locks = [], []
    monkeypatch.setattr(_LockedConnection, "begin_immediate", lambda conn, real=_LockedConnection.begin_immediate:
                        (locks.append(1), real(conn))[1])
    listener = lambda *args: statements.append(args[2])  # noqa: E731  (conn, cursor, statement, ...)
    engine = app.extensions["survey_engine"]
    engines = {engine, app.extensions["survey_answers"].engine}  # on PostgreSQL the reads' and answers' own
    for each in engines:
        event.listen(each, "before_cursor_execute", listener)
    try:
        for view in ("first", "reload"):  # the first view of the second task, then a reload
            statements.clear()
            page = client.get(f"/s/{study.slug}/task")
            assert "Task 2 of 3" in page.text and len(page_images(page.text)) >= 6
            # the task, and on a first view the images this process has not kept yet; a reload finds them kept
            assert len(statements) in ((1,) if view == "reload" else (1, 2)), statements
            assert all(s.lstrip().upper().startswith("SELECT") for s in statements), statements
        assert locks == [] and not any(s.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
                                       for s in statements)
        assert not app.jinja_env.auto_reload  # templates are compiled once, then taken from Jinja's cache
        assert answer(client, study, page.text).status_code == 303
        assert len(locks) == (1 if engine.dialect.name == "sqlite" else 0)  # the answer is the write
    finally:
        for each in engines:
            event.remove(each, "before_cursor_execute", listener)


def test_a_forged_or_replayed_shown_time_is_refused_and_stores_nothing(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=3)
    join(client, study, "W1")
    first = client.get(f"/s/{study.slug}/task").text
    cookie = client.get_cookie("session")
    at = next(i for i in range(len(cookie.value) // 3, len(cookie.value)) if cookie.value[i].isalnum())
    forged = cookie.value[:at] + ("A" if cookie.value[at] != "A" else "B") + cookie.value[at + 1:]
    client.set_cookie("session", forged)  # a changed time (or anything else) breaks the signature
    refused = answer(client, study, first)
    assert refused.status_code == 400 and "security token" in refused.text  # the whole session is void
    assert count(db, "answer") == 0
    client.set_cookie("session", cookie.value)
    assert answer(client, study, first).status_code == 303
    old_cookie = client.get_cookie("session").value  # its clock is the first task's
    second = client.get(f"/s/{study.slug}/task").text
    client.set_cookie("session", old_cookie)  # replay: the cookie from before the second task was shown
    replayed = answer(client, study, second)
    assert replayed.status_code == 400 and "reload the page" in replayed.text
    assert count(db, "answer") == 1
    client.get(f"/s/{study.slug}/task")  # shown in this session (the documented limit: its clock starts again)
    assert answer(client, study, second).status_code == 303 and count(db, "answer") == 2


def test_static_files_are_cached_for_a_year_under_versioned_urls(app, client, bundle_dir):
    study = new_study(app, bundle_dir)
    join(client, study, "W1")
    html = client.get(f"/s/{study.slug}/task").text
    assets = re.findall(r'"(/static/[^"]+\?v=[0-9a-f]{12})"', html)
    assert len(assets) == 2  # the style sheet and the script
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200
        assert "max-age=31536000" in response.headers["Cache-Control"] and "public" in response.headers["Cache-Control"]
        etag = response.headers["ETag"]
        bare = client.get(url.split("?")[0])  # without the version: revalidated by its ETag, never kept blindly
        assert "max-age=31536000" not in bare.headers.get("Cache-Control", "") and bare.headers["ETag"] == etag
        assert client.get(url.split("?")[0], headers={"If-None-Match": etag}).status_code == 304
    stale = client.get("/static/style.css?v=000000000000")  # an old version's URL is not cached for a year
    assert "max-age=31536000" not in stale.headers.get("Cache-Control", "")


@pytest.mark.parametrize("path", ["/static/nope.css", "/static/nope.css?v=0123456789ab", "/static/../__init__.py?v=1",
                                  "/static/..%2F__init__.py?v=1", "/static/../templates?v=1", "/static/?v=1"])
def test_a_missing_or_escaping_static_path_is_a_404_and_reads_nothing_outside(app, client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "max-age=31536000" not in response.headers.get("Cache-Control", "")


def test_never_the_same_item_twice_in_a_run_and_least_answered_first(app, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=10, answers_per_item=2)
    n_items = db.scalar(select(func.count()).select_from(Item).where(~Item.is_gold))
    seen_by = {}
    for w in range(8):
        client = app.test_client()
        join(client, study, f"W{w}")
        while True:
            page = client.get(f"/s/{study.slug}/task?more=1", follow_redirects=True)
            if "No tasks for you" in page.text:
                break
            token = task_form(page.text)[1]
            lineup = db.scalar(select(Assignment.lineup_id).where(Assignment.token == token))
            assert lineup not in seen_by.setdefault(w, set()), "a worker saw the same item twice in a run"
            seen_by[w].add(lineup)
            answer(client, study, page.text)
    per_item = db.execute(select(Answer.lineup_id, func.count()).group_by(Answer.lineup_id)).all()
    assert len(per_item) == n_items and all(n == 2 for _, n in per_item)  # quota met, never exceeded
    # least-answered first: the first HITs cover distinct items before any item gets its second answer
    first_round = [a.lineup_id for a in db.scalars(select(Answer).order_by(Answer.id).limit(n_items))]
    assert len(set(first_round)) == n_items


def test_every_run_shows_the_same_lineups(app, db, bundle_dir):
    study = new_study(app, bundle_dir, open_runs=(1, 2, 3), hit_size=50, answers_per_item=1,
                      multiple_runs_per_worker=True)
    client = app.test_client()
    join(client, study, "W1")
    shown = {}
    for _ in range(3 * 42 + 3):
        page = client.get(f"/s/{study.slug}/task?more=1", follow_redirects=True)
        if "No tasks" in page.text:
            break
        if "Task " not in page.text:
            continue
        csrf, token, choices = task_form(page.text)
        run, lineup = db.execute(select(Hit.run_id, Assignment.lineup_id).join(Hit)
                                 .where(Assignment.token == token)).one()
        shown.setdefault(lineup, []).append((run, tuple(choices)))
        answer(client, study, page.text)
    assert len(shown) == 42
    for views in shown.values():
        assert sorted(r for r, _ in views) == sorted(db.scalars(select(Run.id)))  # once in each of the 3 runs
        assert len({faces for _, faces in views}) == 1  # the same five faces, same order, every run


def test_a_worker_takes_part_in_one_run_unless_the_study_allows_more(app, db, bundle_dir):
    study = new_study(app, bundle_dir, open_runs=(1, 2), hit_size=50, answers_per_item=1)
    client = app.test_client()
    join(client, study, "W1")
    while "Task " in (page := client.get(f"/s/{study.slug}/task?more=1", follow_redirects=True)).text:
        answer(client, study, page.text)
    assert "No tasks for you" in page.text
    assert db.scalar(select(func.count(func.distinct(Answer.run_id)))) == 1
    # Their run closed and a third one opened: they still stay out of the others, and a newcomer gets work.
    taken = db.scalar(select(Run.number).join(Answer, Answer.run_id == Run.id).limit(1))
    db.execute(Run.__table__.update().where(Run.study_id == study.id)
               .values(status=case((Run.number == taken, "closed"), else_=Run.status)))
    db.commit()
    assert "No tasks for you" in client.get(f"/s/{study.slug}/task?more=1", follow_redirects=True).text
    newcomer = app.test_client()
    join(newcomer, study, "W2")
    assert "Task 1 of" in newcomer.get(f"/s/{study.slug}/task", follow_redirects=True).text


def test_an_expired_hit_returns_its_unanswered_lineups_to_the_pool(app, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=42, answers_per_item=1)
    first = app.test_client()
    join(first, study, "slow")
    page = first.get(f"/s/{study.slug}/task").text
    answer(first, study, page)
    second = app.test_client()
    join(second, study, "other")
    assert "No tasks for you" in second.get(f"/s/{study.slug}/task").text  # everything is reserved
    hit = db.scalars(select(Hit)).one()
    hit.expires_at = hit.expires_at - timedelta(days=1)
    db.commit()
    stale = first.get(f"/s/{study.slug}/task")  # the slow worker's old HIT is gone: a new one, or none
    late = answer(first, study, page.replace(task_form(page)[1], db.scalars(
        select(Assignment.token).where(Assignment.position == 1, Assignment.hit_id == hit.id)).one()))
    assert late.status_code == 409 and "expired" in late.text
    assert stale.status_code == 200
    page2 = second.get(f"/s/{study.slug}/task")
    assert "Task 1 of 41" in page2.text  # 41 returned to the pool; the answered one stays answered
    assert count(db, "answer") == 1


def test_a_worker_cannot_see_or_answer_another_workers_task(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir)
    join(client, study, "W1")
    mine = client.get(f"/s/{study.slug}/task").text
    intruder = app.test_client()
    join(intruder, study, "W2")
    theirs = intruder.get(f"/s/{study.slug}/task").text
    csrf, _, _ = task_form(theirs)
    _, token, choices = task_form(mine)
    stolen = intruder.post(f"/s/{study.slug}/answer", data={"csrf_token": csrf, "assignment": token,
                                                              "choice": choices[0]})
    assert stolen.status_code == 404 and count(db, "answer") == 0


def test_bad_submissions_get_a_4xx_and_store_nothing(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir, allow_absent=False)
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task").text
    csrf, token, choices = task_form(page)
    other_lineup_face = db.scalars(select(LineupFace.token).join(Lineup).join(Assignment, isouter=True)
                                   .where(Assignment.token.is_(None))).first()
    cases = [
        ({"csrf_token": csrf, "assignment": token, "choice": "nonsense"}, 400, "unknown choice"),
        ({"csrf_token": csrf, "assignment": token, "choice": other_lineup_face}, 400, "unknown choice"),
        ({"csrf_token": csrf, "assignment": token, "choice": "absent"}, 400, "not an answer this study offers"),
        ({"csrf_token": csrf, "assignment": "forged" + token[6:], "choice": choices[0]}, 404, "no such task"),
        ({"csrf_token": csrf, "assignment": token}, 400, "must carry"),
        ({"assignment": token, "choice": choices[0]}, 400, "security token"),
        ({"csrf_token": "x" + csrf[1:], "assignment": token, "choice": choices[0]}, 400, "security token"),
        ({"csrf_token": csrf, "assignment": token, "choice": choices[0], "pad": "x" * 400_000}, 413, "larger"),
    ]
    for data, status, message in cases:
        response = client.post(f"/s/{study.slug}/answer", data=data)
        assert response.status_code == status and message in response.text, (data.keys(), response.text)
    assert client.get(f"/s/{study.slug}/answer").status_code == 405
    assert client.put(f"/s/{study.slug}/task").status_code == 405
    assert client.get("/s/nosuchstudy/task").status_code == 404
    assert client.post(f"/s/{study.slug}/consent", data={"csrf_token": csrf, "worker_id": "<script>",
                                                         "consent": "yes"}).status_code == 400
    assert count(db, "answer") == 0


def test_closed_runs_and_blocked_workers_take_no_answers(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir)
    join(client, study, "W1")
    page = client.get(f"/s/{study.slug}/task").text
    run = db.scalars(select(Run).where(Run.number == 1)).one()
    run.status = "closed"
    db.commit()
    closed = answer(client, study, page)
    assert closed.status_code == 409 and "closed" in closed.text
    run.status = "open"
    db.scalars(select(Worker)).one().blocked = True
    db.commit()
    assert answer(client, study, page).status_code == 403
    assert client.get(f"/s/{study.slug}/task").status_code == 403
    assert count(db, "answer") == 0


def test_the_page_never_tells_the_right_answer(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir)
    cookies = join(client, study, "W1").headers.getlist("Set-Cookie")
    assert cookies and all("HttpOnly" in c and "SameSite=Lax" in c for c in cookies)
    html = client.get(f"/s/{study.slug}/task").text
    token = task_form(html)[1]
    lineup = db.get(Lineup, db.scalar(select(Assignment.lineup_id).where(Assignment.token == token)))
    item = db.get(Item, lineup.item_id)
    # Random tokens (images, assignment, CSRF, the study's slug) may contain "s6" by chance: judge the page
    # without them.
    visible = re.sub(r'(data:image/png;base64,|value=")[A-Za-z0-9_.+/=-]+', r"\1TOKEN", html)
    visible = visible.replace(study.slug, "SLUG")
    for secret in [item.subject, item.external_id, item.model, "target", "gallery/", ".pgm", "correct"] + \
            [f.subject for f in lineup.faces]:
        assert not re.search(rf"(?<![A-Za-z0-9]){re.escape(secret)}(?![0-9])", visible), \
            f"the task page shows {secret!r}"
    images = page_images(html)
    shown = 7 if item.aux_image_id else 6  # a deblurring item also shows its blurred photo
    assert len(images) == shown and len(set(images)) == shown
    assert "/img/" not in html and "src=\"/" not in html.replace('src="/static/', "")  # no image has a URL
    for png in images:
        assert png.startswith(b"\x89PNG") and b"tEXt" not in png and b"iTXt" not in png  # no name or comment
    # The session cookie is signed, not encrypted: the worker can read it, so it must hold nothing of the answer.
    with client.session_transaction() as session:
        assert set(session) == {"workers", "csrf_token", "shown"}
        assert session["shown"][study.slug][0] == token and isinstance(session["shown"][study.slug][1], int)


def test_deblurring_items_show_their_blurred_input_and_never_its_source_photo(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=60, target_share=1.0)
    join(client, study, "W1")
    deblur = db.scalars(select(Item).where(Item.attack == "deblur")).all()
    assert len(deblur) == 2 and all(i.aux_image_id for i in deblur)
    for item in deblur:  # in the test bundle a deblurring item's image is its source photo, pixel for pixel
        lineup = db.scalars(select(Lineup).where(Lineup.item_id == item.id)).one()
        target_face = next(f for f in lineup.faces if f.position == lineup.target_position)
        assert db.get(Image, target_face.image_id).sha256 != db.get(Image, item.image_id).sha256
    while "Task " in (page := client.get(f"/s/{study.slug}/task?more=1", follow_redirects=True)).text:
        if "Blurred photo" in page.text:
            break
        answer(client, study, page.text)
    assert "Blurred photo" in page.text


def test_csrf_protects_consent(app, client, bundle_dir):
    study = new_study(app, bundle_dir)
    response = client.post(f"/s/{study.slug}/consent", data={"worker_id": "W1", "consent": "yes"})
    assert response.status_code == 400
    page = client.get(f"/s/{study.slug}/")
    no_consent = client.post(f"/s/{study.slug}/consent", data={"csrf_token": csrf_of(page.text), "worker_id": "W1"})
    assert no_consent.status_code == 400 and "consent" in no_consent.text


def test_a_second_worker_on_the_same_browser_gets_their_own_consent_and_tasks(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir)
    join(client, study, "FIRST")
    assert client.get(f"/s/{study.slug}/?workerId=FIRST").status_code == 302  # back to their task
    assert client.get(f"/s/{study.slug}/").status_code == 302
    page = client.get(f"/s/{study.slug}/?workerId=SECOND")
    assert page.status_code == 200 and "SECOND" in page.text
    join(client, study, "SECOND")
    client.get(f"/s/{study.slug}/task")
    assert sorted(db.scalars(select(Worker.external_id))) == ["FIRST", "SECOND"]
    owners = db.execute(select(Worker.external_id).join(Hit, Hit.worker_id == Worker.id)).scalars().all()
    assert owners == ["SECOND"]
    newline = client.post(f"/s/{study.slug}/consent", data={"csrf_token": csrf_of(page.text),
                                                            "worker_id": "THIRD\nEVIL", "consent": "yes"})
    assert newline.status_code == 400
