"""The worker's pages: arrive by link, consent, answer one lineup per page, get a completion code.

Where a worker is lives only in the database, so a reload, the back button or a lost connection always
lands on the first unanswered lineup of their HIT; every page that shows a task is marked no-store.
"""
from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, session, url_for
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import db as database
from .hits import (
    TASK_PAGE,
    AnswerRejected,
    active_hit,
    complete_if_done,
    record_answer,
    settings_of,
    start_hit,
    stored_settings,
    unanswered,
)
from .images import display_sizes, image_url_prefix
from .models import Hit, Study, Worker, utcnow
from .shown import mark_shown, shown_at

bp = Blueprint("worker", __name__, url_prefix="/s")
WORKER_ID = re.compile(r"[A-Za-z0-9_.@-]{1,120}")


def _study(slug: str, db: Session | None = None) -> Study:
    study = (db or database.session()).scalar(select(Study).where(Study.slug == slug))
    if study is None:
        abort(404, "no such study")
    return study


def _worker(study: Study, db: Session | None = None) -> Worker | None:
    worker_id = session.get("workers", {}).get(study.slug)
    return (db or database.session()).get(Worker, worker_id) if worker_id else None


def _no_store(page: str):
    response = make_response(page)
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/<slug>/")
def landing(slug: str):
    db = database.read_session()
    study = _study(slug, db)
    given = request.args.get("workerId", "")
    current = _worker(study, db)
    if current is not None and given in ("", current.external_id):
        return redirect(url_for(".task", slug=slug))
    # A new arrival, or someone else's workerId in a browser already used by a worker: consent first.
    return render_template("worker/consent.html", study=study, settings=settings_of(study),
                           worker_id=given if WORKER_ID.fullmatch(given) else "")


@bp.post("/<slug>/consent")
def consent(slug: str):
    study = _study(slug)
    external_id = request.form.get("worker_id", "").strip()
    if not WORKER_ID.fullmatch(external_id):
        abort(400, "a worker ID is 1 to 120 letters, digits or . _ @ -")
    if request.form.get("consent") != "yes":
        abort(400, "please tick the consent box to take part")
    db = database.session()
    query = select(Worker).where(Worker.study_id == study.id, Worker.external_id == external_id)
    worker = db.scalar(query)
    if worker is None:
        worker = Worker(study_id=study.id, external_id=external_id, consented_at=utcnow())
        db.add(worker)
        try:
            db.commit()
        except IntegrityError:  # the same worker's consent, sent twice at once: the other one created them
            db.rollback()
            worker = db.scalar(query)
    session["workers"] = {**session.get("workers", {}), study.slug: worker.id}
    return redirect(url_for(".task", slug=slug), 303)


@bp.get("/<slug>/task")
def task(slug: str):
    """The lineup page. Showing a task only reads (one statement, outside the writer lock); only handing out a new
    HIT or closing a finished one writes, once per HIT. The time the task was first shown goes into the signed
    session cookie (see shown.py), not the database."""
    worker_id = session.get("workers", {}).get(slug)
    if worker_id is not None:
        page = _show_task(slug, worker_id)
        if page is not None:
            return page
    handed_out = _hand_out_work(slug)
    if handed_out is not None:
        return handed_out
    return _show_task(slug, session["workers"][slug]) or redirect(url_for(".task", slug=slug), 303)


def _show_task(slug: str, worker_id: int):
    """The page of the worker's first unanswered task, or None when their HIT must be handed out or closed."""
    now = utcnow()
    with database.reader().connect() as connection:
        rows = connection.execute(TASK_PAGE, {"worker_id": worker_id, "slug": slug, "now": now}).all()
    if not rows or rows[0].assignment is None:
        return None
    first = rows[0]
    if first.blocked:
        abort(403, "this worker has been blocked from the study")
    mark_shown(slug, first.assignment, now)
    probe_size, face_size = display_sizes(first.settings)
    return _no_store(render_template(
        "worker/task.html", slug=slug, images=image_url_prefix(), probe_size=probe_size, face_size=face_size,
        allow_absent=stored_settings(first.settings).allow_absent,
        confidence_scale=stored_settings(first.settings).confidence_scale, assignment=first.assignment,
        probe=first.probe,
        aux=first.aux_token if first.aux_image_id else None,
        faces=[row.face for row in rows], number=first.answered + 1, total=first.total))


def _hand_out_work(slug: str):
    """Close the worker's finished HIT and give them a new one (the writes behind the task page). Returns the
    response to send instead of a task (the landing page, the done page, "no work"), or None when a task waits."""
    study = _study(slug)
    worker = _worker(study)
    if worker is None:
        return redirect(url_for(".landing", slug=slug))
    if worker.blocked:
        abort(403, "this worker has been blocked from the study")
    db = database.session()
    now = utcnow()
    hit = active_hit(db, worker, now)
    if hit is not None and not unanswered(db, hit):  # the last answer came in: the HIT is done
        complete_if_done(db, hit, now)
        db.commit()
        hit = None
    if hit is None and request.args.get("more") != "1" and _codes(db, worker):
        # A worker who has finished a HIT sees their code; more work is asked for from that page.
        return redirect(url_for(".done", slug=slug), 303)
    if hit is None:
        hit = start_hit(db, study, worker, now)
    db.commit()  # ends the transaction (on SQLite, the writer lock) before any page is built
    if hit is None:
        return _no_store(render_template("worker/no_work.html", study=study, codes=_codes(db, worker)))
    return None


@bp.post("/<slug>/answer")
def answer(slug: str):
    """The hot path of a study: one statement checks and stores (see record_answer), with the time the task was
    first shown from the signed session. The next task page completes the HIT when this was its last lineup."""
    worker_id = session.get("workers", {}).get(slug)
    if worker_id is None:
        abort(403, "start the study from its link first")
    token, choice = request.form.get("assignment", ""), request.form.get("choice", "")
    if not token or not choice or len(token) > 64 or len(choice) > 64:
        abort(400, "the form must carry the task and a choice")
    confidence = _confidence(request.form.get("confidence", ""))
    with current_app.extensions["survey_engine"].connect() as connection:
        try:
            record_answer(connection, worker_id, slug, token, choice, shown_at(slug, token), utcnow(), confidence)
        except AnswerRejected as exc:
            abort(exc.status, str(exc))
    return redirect(url_for(".task", slug=slug), 303)


def _confidence(raw: str) -> int | None:
    """The form's confidence rating: empty (the study asks none), or a whole number the study's scale checks."""
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 3:
        abort(400, f"confidence must be a whole number on the study's scale, got {raw[:20]!r}")
    return int(raw)


def _codes(db, worker: Worker) -> list[str]:
    return list(db.scalars(select(Hit.completion_code).where(Hit.worker_id == worker.id,
                                                            Hit.completion_code.is_not(None))
                           .order_by(Hit.completed_at)))


@bp.get("/<slug>/done")
def done(slug: str):
    db = database.read_session()
    study = _study(slug, db)
    worker = _worker(study, db)
    if worker is None:
        return redirect(url_for(".landing", slug=slug))
    if active_hit(db, worker, utcnow()) is not None:
        return redirect(url_for(".task", slug=slug))
    return _no_store(render_template("worker/done.html", study=study, codes=_codes(db, worker)))
