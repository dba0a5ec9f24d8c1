"""The worker's pages: arrive by link, consent, answer one lineup per page, get a completion code.

Where a worker is lives only in the database, so a reload, the back button or a lost connection always
lands on the first unanswered lineup of their HIT; every page that shows a task is marked no-store.

Who a browser is: the signed session names the worker whose consent it sent, and nothing else makes it theirs. A
worker ID alone is no proof (crowd IDs are not secret), so consenting under an ID that has already started needs
what only that worker has: the resume code shown on their pages, or a platform assignment (MTurk's assignmentId,
Prolific's SESSION_ID) already recorded for them. Arrival links: a plain (lab) link with or without ``workerId``;
Prolific's ``PROLIFIC_PID``, ``STUDY_ID``, ``SESSION_ID``; MTurk's ExternalQuestion ``workerId``, ``assignmentId``,
``hitId``, ``turkSubmitTo`` (a preview while ``assignmentId`` is ASSIGNMENT_ID_NOT_AVAILABLE, which records nothing).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from functools import lru_cache

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from . import db as database
from .hits import (
    CLOSE_HIT,
    TASK_PAGE_PREPARED,
    AnswerRejected,
    Arrival,
    active_hit,
    batch_size,
    completion_code,
    newest_open_hit,
    platform_hit_taken,
    record_answer,
    settings_of,
    start_hit,
    stored_settings,
)
from .images import display_sizes, inline_images
from .models import Hit, Item, Lineup, LineupFace, Study, Worker, utcnow
from .prepared import Prepared, first
from .sessions import csrf_token
from .shown import mark_shown, shown_at, shown_last
from .skeletons import render_filled

bp = Blueprint("worker", __name__, url_prefix="/s")
WORKER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,120}")
PLATFORM_ID = re.compile(r"[A-Za-z0-9_.:-]{1,120}")
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
MTURK_SUBMIT_TO = ("https://www.mturk.com", "https://workersandbox.mturk.com")
"""Where MTurk's turkSubmitTo may point (the app's MTURK_SUBMIT_TO setting may add more, e.g. a test's fake)."""


class ArrivalError(ValueError):
    pass


def arrival_from(values) -> tuple[Arrival, str]:
    """The platform's ids and the worker ID an arrival link (or the consent form carrying it on) names; "" when the
    link names no worker. ArrivalError names a malformed parameter."""
    def ident(name: str, pattern=PLATFORM_ID, required=True) -> str | None:
        value = values.get(name, "")
        if not value and not required:
            return None
        if not pattern.fullmatch(value):
            allowed = ". _ @ -" if pattern is WORKER_ID else ". _ - :"
            raise ArrivalError(f"{name} must be 1 to 120 letters, digits or {allowed} (got {value[:40]!r})")
        return value

    if values.get("PROLIFIC_PID"):
        return (Arrival("prolific", ident("SESSION_ID"), ident("STUDY_ID", required=False)),
                ident("PROLIFIC_PID", WORKER_ID))
    if values.get("assignmentId"):
        assignment = ident("assignmentId")
        if assignment == MTURK_PREVIEW:
            return Arrival("mturk", MTURK_PREVIEW), ""
        submit_to = values.get("turkSubmitTo", "").rstrip("/")
        allowed = MTURK_SUBMIT_TO + tuple(current_app.config.get("MTURK_SUBMIT_TO", ()))
        if submit_to not in allowed:
            raise ArrivalError(f"turkSubmitTo must be one of {', '.join(allowed)} (got {submit_to[:60]!r})")
        return Arrival("mturk", assignment, ident("hitId", required=False), submit_to), ident("workerId", WORKER_ID)
    given = values.get("workerId", "")
    return Arrival(), given if WORKER_ID.fullmatch(given) else ""


def resume_code(slug: str, worker_id: int) -> str:
    """The worker's code to continue in another browser: an HMAC of who they are under the app's secret key, so it
    needs no table and only this server (and the worker, who is shown it) can make it."""
    key = current_app.secret_key if isinstance(current_app.secret_key, bytes) else str(current_app.secret_key).encode()
    return _resume_code(key, slug, worker_id)


@lru_cache(maxsize=4096)
def _resume_code(key: bytes, slug: str, worker_id: int) -> str:
    """The code itself, kept for the workers at work: every task page shows it."""
    digest = hmac.new(key, f"resume\0{slug}\0{worker_id}".encode(), hashlib.sha256).digest()  # see images._mark
    code = base64.b32encode(digest[:10]).decode()
    return f"{code[:4]}-{code[4:8]}-{code[8:12]}-{code[12:16]}"


def _resume_matches(slug: str, worker_id: int, given: str) -> bool:
    normal = re.sub(r"[^A-Z2-7]", "", given.upper())
    return len(normal) == 16 and hmac.compare_digest(normal, resume_code(slug, worker_id).replace("-", ""))


def _browser() -> str | None:
    """This browser's mark: SHA-256 of the random secret its signed session holds (Flask-WTF's CSRF secret)."""
    secret = session.get("csrf_token")
    return hashlib.sha256(secret.encode()).hexdigest() if isinstance(secret, str) and secret else None


def _session_arrival(slug: str) -> Arrival:
    return Arrival(**session.get("platform", {}).get(slug, {}))


def _remember_arrival(slug: str, arrival: Arrival) -> None:
    """A platform arrival's ids, for the HIT handed out next in this browser (a lab link leaves none)."""
    if arrival.platform:
        session["platform"] = {**session.get("platform", {}), slug: {
            "platform": arrival.platform, "assignment": arrival.assignment, "hit": arrival.hit,
            "submit_to": arrival.submit_to}}
    elif slug in session.get("platform", {}):
        session["platform"] = {k: v for k, v in session["platform"].items() if k != slug}


STUDY = Prepared(select(Study.id, Study.name, Study.slug, Study.settings).where(Study.slug == bindparam("slug")))
_STUDY_AND_WORKER = (
    select(Study.id, Study.name, Study.slug, Study.settings, Worker.id.label("worker_id"), Worker.external_id,
           Worker.blocked, Worker.browser)
    .outerjoin(Worker, (Worker.id == bindparam("worker_id")) & (Worker.study_id == Study.id))
    .where(Study.slug == bindparam("slug")))
STUDY_AND_WORKER = Prepared(_STUDY_AND_WORKER)
"""The study and the worker a session names in it, in one statement: the pages that need both (handing out a HIT, a
returning worker's link) are one round trip to the database, not two."""
DONE_PAGE = Prepared(
    _STUDY_AND_WORKER.add_columns(
        newest_open_hit(Worker.id, aliased(Hit)).correlate(Worker).scalar_subquery().label("open_hit"),
        Hit.completion_code, Hit.platform, Hit.platform_assignment, Hit.submit_to)
    .outerjoin(Hit, (Hit.worker_id == Worker.id) & Hit.completion_code.is_not(None))
    .order_by(Hit.completed_at))
"""All the done page reads, in one statement, after every HIT: STUDY_AND_WORKER, whether the worker has a HIT open
(``newest_open_hit``: then the page sends them back to it), and one row for each HIT they completed, oldest
first (its code and platform; None on the one row of a worker who has completed none)."""


@dataclass(frozen=True)
class _Worker:
    id: int
    external_id: str
    blocked: bool
    browser: str | None


def _worker_of(row) -> _Worker | None:
    """The worker half of a STUDY_AND_WORKER row, or None when the session names no worker of the study."""
    return _Worker(row.worker_id, row.external_id, row.blocked, row.browser) if row.worker_id is not None else None


def _study(slug: str):
    """The study, as a row (id, name, slug, settings): the worker's pages only read it. Read outside the writer
    lock, which a HIT's hand-out then takes for its own statements only."""
    with database.reader().connect() as connection:
        rows = STUDY.all(connection, {"slug": slug})
    if not rows:
        abort(404, "no such study")
    return rows[0]


def _study_and_worker(slug: str):
    """The study, as ``_study`` gives it, and the worker this browser's signed session names in it (id,
    external_id, blocked, browser) or None; read outside the writer lock, as ``_study``."""
    rows, worker = _rows_and_worker(slug, STUDY_AND_WORKER)
    return rows[0], worker


def _rows_and_worker(slug: str, statement: Prepared, **params):
    """The rows of ``statement``, STUDY_AND_WORKER or one that extends it (with ``params``), and the worker of the
    first row or None; a 404 when the study does not exist."""
    worker_id = session.get("workers", {}).get(slug)
    with database.reader().connect() as connection:
        rows = statement.all(connection, {"slug": slug, "worker_id": worker_id or 0, **params})
    if not rows:
        abort(404, "no such study")
    return rows, _worker_of(rows[0])


def _no_store(page: str):
    return current_app.response_class(page, headers={"Cache-Control": "no-store"})


def _consent_page(db, study, arrival: Arrival, worker_id: str, problem: str = "", status: int = 200):
    return render_template("worker/consent.html", study=study, settings=settings_of(study), arrival=arrival,
                           worker_id=worker_id, tasks=batch_size(db, study), problem=problem), status


@bp.get("/<slug>/")
def landing(slug: str):
    db = database.read_session()
    study, current = _study_and_worker(slug)
    try:
        arrival, given = arrival_from(request.args)
    except ArrivalError as exc:
        abort(400, f"this study link is malformed: {exc}")
    if arrival.assignment == MTURK_PREVIEW:
        return _no_store(_preview(db, study))
    if current is not None and given in ("", current.external_id):
        if arrival.platform:
            _remember_arrival(slug, arrival)
        return redirect(url_for(".task", slug=slug, more=1 if arrival.platform else None))
    # A new arrival, or someone else's workerId in a browser already used by a worker: consent first.
    return _consent_page(db, study, arrival, given)


def _preview(db, study) -> str:
    """MTurk's preview (the HIT not accepted yet): the instructions and one lineup, nothing recorded, no form."""
    lineup = db.execute(select(Lineup.id, Item.image_id, Item.aux_image_id).join(Item, Item.id == Lineup.item_id)
                        .where(Lineup.study_id == study.id, ~Item.is_gold, ~Item.is_control)
                        .order_by(Lineup.id).limit(1)).first()
    faces = list(db.scalars(select(LineupFace.image_id).where(LineupFace.lineup_id == lineup.id)
                            .order_by(LineupFace.position))) if lineup else []
    probe_size, face_size = display_sizes(study.settings)
    shown = inline_images(f"l{lineup.id}", lineup.image_id, lineup.aux_image_id, faces) if lineup else None
    return render_template("worker/preview.html", study=study, settings=settings_of(study),
                           tasks=batch_size(db, study), probe_size=probe_size, face_size=face_size, shown=shown,
                           positions=list(range(1, len(faces) + 1)))


@bp.post("/<slug>/consent")
def consent(slug: str):
    study = _study(slug)
    db = database.session()
    try:
        arrival, _ = arrival_from(request.form)
    except ArrivalError as exc:
        abort(400, f"the consent form is malformed: {exc}")
    if arrival.assignment == MTURK_PREVIEW:
        abort(400, "accept the HIT on MTurk before starting it")
    external_id = request.form.get("worker_id", "").strip()
    if not WORKER_ID.fullmatch(external_id):
        abort(400, "a worker ID is 1 to 120 letters, digits or . _ @ -")
    if request.form.get("consent") != "yes":
        abort(400, "please tick the consent box to take part")
    params = {"study_id": study.id, "external_id": external_id, "now": utcnow(), "browser": _browser()}
    worker = first(db.connection(), WORKER_NAMED, params)  # on SQLite, BEGIN IMMEDIATE: the writer lock from here
    if worker is None:
        try:
            worker = first(db.connection(), NEW_WORKER, params)
            db.commit()
        except IntegrityError:  # the same worker's consent, sent twice at once: the other one created them
            db.rollback()
            worker = first(db.connection(), WORKER_NAMED, params)
            if not _proves(db, slug, worker, arrival, ""):
                return _consent_page(db, study, arrival, external_id, ALREADY_STARTED, 403)
    elif not _proves(db, slug, worker, arrival, request.form.get("resume_code", "")):
        return _consent_page(db, study, arrival, external_id, ALREADY_STARTED, 403)
    session["workers"] = {**session.get("workers", {}), study.slug: worker.id}
    _remember_arrival(slug, arrival)
    return redirect(url_for(".task", slug=slug), 303)


WORKER_NAMED = Prepared(select(Worker.id, Worker.browser).where(Worker.study_id == bindparam("study_id"),
                                                                  Worker.external_id == bindparam("external_id")))
NEW_WORKER = Prepared(insert(Worker).values(study_id=bindparam("study_id"), external_id=bindparam("external_id"),
                                            consented_at=bindparam("now"), browser=bindparam("browser"),
                                            blocked=False).returning(Worker.id, Worker.browser))
"""Consent's statements, in Core: the ORM's work for one worker's row was most of what a newcomer's consent cost."""

ALREADY_STARTED = ("This worker ID has already started this study in another browser. To continue here, enter the "
                   "resume code shown on your task pages there, or open the study again from your platform's link.")


def _proves(db, slug: str, worker, arrival: Arrival, given_code: str) -> bool:
    """Whether this browser may act as ``worker`` (a row: id, browser), who has consented before: it already does
    (its signed session says so, or it is the browser that consented), or it brings their resume code, or a platform
    assignment already recorded as theirs."""
    if session.get("workers", {}).get(slug) == worker.id:
        return True
    browser = _browser()
    if browser and worker.browser and hmac.compare_digest(browser, worker.browser):
        return True  # the browser that consented, sending its consent again (the first answer was lost)
    if given_code and _resume_matches(slug, worker.id, given_code):
        return True
    return arrival.assignment is not None and platform_hit_taken(db, worker, arrival)


@bp.get("/<slug>/task")
def task(slug: str):
    """The lineup page. Showing a task only reads (one statement, outside the writer lock); only handing out a new
    HIT or closing a finished one writes, once per HIT. The time the task was first shown goes into the signed
    session cookie (see shown.py), not the database. "Take another batch" (``more=1``, from the done page) goes
    straight to the hand-out, which shows a HIT still open instead of making one: the worker has just finished one,
    so a first look for a task would find none."""
    worker_id = session.get("workers", {}).get(slug)
    if worker_id is not None and request.args.get("more") != "1":
        page = _show_task(slug, worker_id)
        if page is not None:
            return page
    handed_out = _hand_out_work(slug)
    if handed_out is not None:
        return handed_out
    return _show_task(slug, session["workers"][slug]) or redirect(url_for(".task", slug=slug), 303)


def _show_task(slug: str, worker_id: int, rows: list | None = None):
    """The page of the worker's first unanswered task, or None when their HIT must be handed out or closed.
    ``rows``: the page's statement's rows when the answer just stored read them (record_answer)."""
    now = utcnow()
    if rows is None:
        with database.reader().connect() as connection:
            rows = TASK_PAGE_PREPARED.all(connection, {"worker_id": worker_id, "slug": slug, "now": now})
    if not rows or rows[0].assignment is None:
        return None
    first = rows[0]
    if first.blocked:
        abort(403, "this worker has been blocked from the study")
    mark_shown(slug, first.assignment, now, last=first.total - first.answered == 1)
    probe_size, face_size, settings = _page_settings(first.settings)
    shape = {"slug": slug, "probe_size": probe_size, "face_size": face_size, "allow_absent": settings.allow_absent,
             "confidence_scale": settings.confidence_scale, "positions": tuple(row.face + 1 for row in rows)}
    return _no_store(render_filled("worker/task.html", shape, {
        "assignment": first.assignment, "number": first.answered + 1, "answered": first.answered,
        "total": first.total, "resume_code": resume_code(slug, worker_id), "csrf": csrf_token(),
        "shown": inline_images(f"a{first.assignment_id}", first.probe_image, first.aux_image_id,
                               [row.face_image for row in rows])}, csrf_slot="csrf"))


@lru_cache(maxsize=256)
def _page_settings(text: str) -> tuple:
    """(probe size, face size, StudySettings) from a study's settings as the task page's statement gives them (the
    JSON's text): decoded once per study and version of its settings, not once a page."""
    stored = json.loads(text)
    return (*display_sizes(stored), stored_settings(stored))


def _hand_out_work(slug: str):
    """Close the worker's finished HIT and give them a new one (the writes behind the task page). Returns the
    response to send instead of a task (the landing page, the done page, "no work"), or None when a task waits."""
    study, worker = _study_and_worker(slug)
    if worker is None:
        return redirect(url_for(".landing", slug=slug))
    if worker.blocked:
        abort(403, "this worker has been blocked from the study")
    db = database.session()
    now = utcnow()
    hit = active_hit(db.connection(), worker.id, now)  # on SQLite, BEGIN IMMEDIATE: the writer lock from here
    if hit is not None and first(db.connection(), CLOSE_HIT, {"hit_id": hit, "now": now,
                                                              "code": completion_code()}) is not None:
        db.commit()  # the last answer came in and did not close the HIT: it is done now
        hit = None
    arrival = _session_arrival(slug)
    if hit is None and (platform_hit_taken(db, worker, arrival)
                        or (request.args.get("more") != "1" and _codes(db.connection(), worker))):
        # A worker who has finished a HIT sees their code; more work is asked for from that page (on a platform:
        # by accepting another of its assignments, each of which is one HIT here).
        return redirect(url_for(".done", slug=slug), 303)
    if hit is None:
        hit = start_hit(db, study, worker, now, arrival)
    db.commit()  # ends the transaction (on SQLite, the writer lock) before any page is built
    if hit is None:
        return _no_store(render_template("worker/no_work.html", study=study, hits=_finished(db.connection(), worker)))
    return None


NEXT_PAGE = "X-Survey-Next"
"""Sent by task.js with an answer: respond with the page the answer leads to (the next task, or the done page after a
HIT's last answer) rather than a redirect to it, with its address in Content-Location, so a worker with JavaScript
takes one request a task. Where that page would itself be a redirect, the redirect is sent (task.js then opens the
task page, which leads where the server says)."""


@bp.post("/<slug>/answer")
def answer(slug: str):
    """The hot path of a study: one statement checks and stores (see record_answer), with the time the task was
    first shown from the signed session; the HIT's last answer also closes it, and goes straight to the done page.
    Otherwise a redirect to the next task; or, asked for with NEXT_PAGE, the page itself."""
    worker_id = session.get("workers", {}).get(slug)
    if worker_id is None:
        abort(403, "start the study from its link first")
    token, choice = request.form.get("assignment", ""), request.form.get("choice", "")
    if not token or not choice or len(token) > 64 or len(choice) > 64:
        abort(400, "the form must carry the task and a choice")
    confidence = _confidence(request.form.get("confidence", ""))
    with_page = request.headers.get(NEXT_PAGE) == "task"
    try:
        _, finished, rows = record_answer(current_app.extensions["survey_answers"], database.reader(), worker_id,
                                          slug, token, choice, shown_at(slug, token), utcnow(), confidence,
                                          may_finish=shown_last(slug, token), next_page=with_page)
    except AnswerRejected as exc:
        abort(exc.status, str(exc))
    where = _page_url(request.script_root, "worker.done" if finished else "worker.task", slug)
    if with_page:
        try:
            page = done(slug) if finished else _show_task(slug, worker_id, rows)
        except Exception:  # the answer is stored: an error now must not say that nothing was
            current_app.logger.exception("the page after a stored answer failed; redirecting to it instead")
            page = None
        if page is not None:
            if page.status_code == 200:
                page.headers["Content-Location"] = where  # what task.js shows the page as
            return page
    return redirect(where, 303)


@lru_cache(maxsize=1024)
def _page_url(script_root: str, endpoint: str, slug: str) -> str:
    """``url_for(endpoint, slug=slug)``, which the answer, taken thousands of times a study, asks for each time."""
    return url_for(endpoint, slug=slug)


def _confidence(raw: str) -> int | None:
    """The form's confidence rating: empty (the study asks none), or a whole number the study's scale checks."""
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 3:
        abort(400, f"confidence must be a whole number on the study's scale, got {raw[:20]!r}")
    return int(raw)


def _codes(connection, worker) -> list[str]:
    return [hit.completion_code for hit in _finished(connection, worker)]


FINISHED = Prepared(select(Hit.completion_code, Hit.platform, Hit.platform_assignment, Hit.submit_to)
                    .where(Hit.worker_id == bindparam("worker_id"), Hit.completion_code.is_not(None))
                    .order_by(Hit.completed_at))


def _finished(connection, worker) -> list:
    """The worker's completed HITs, oldest first, as rows (completion_code, platform, platform_assignment,
    submit_to): only ever shown to the browser bound to that worker."""
    return FINISHED.all(connection, {"worker_id": worker.id})


@bp.get("/<slug>/done")
def done(slug: str):
    rows, worker = _rows_and_worker(slug, DONE_PAGE, now=utcnow())
    if worker is None:
        return redirect(url_for(".landing", slug=slug))
    study = rows[0]
    if study.open_hit is not None:
        return redirect(url_for(".task", slug=slug))
    hits = [row for row in rows if row.completion_code is not None]
    settings = settings_of(study)
    if hits and hits[-1].platform == "prolific" and settings.completion_url:
        return redirect(settings.completion_url, 303)  # Prolific's completion URL carries the study's code
    return _no_store(render_template("worker/done.html", study=study, hits=hits, settings=settings,
                                     resume_code=resume_code(slug, worker.id),
                                     on_platform=_session_arrival(slug).platform))
