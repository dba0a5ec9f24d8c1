"""The admin pages: log in, create and configure studies, open and close runs, watch progress, block
workers, export answers."""
from __future__ import annotations

import json

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from sqlalchemy import select

from . import db as database
from .auth import check_login, login_required
from .export import answer_rows, payment_rows, payments_csv, to_csv
from .hits import settings_of
from .importer import ImportProblem, create_from_source
from .models import Study
from .settings import StudySettings
from .studies import StudyActionError, configure, item_progress, set_blocked, set_run_status, summary, worker_table

bp = Blueprint("admin", __name__, url_prefix="/admin")
SETTING_FIELDS = [name for name in StudySettings.__dataclass_fields__]


def study_or_404(study_id: int) -> Study:
    study = database.session().get(Study, study_id)
    if study is None:
        abort(404, f"no study {study_id}")
    return study


@bp.route("/login", methods=["GET", "POST"])
def login():
    if request.method == "POST":
        admin = check_login(database.session(), request.form.get("username", ""), request.form.get("password", ""))
        if admin is None:
            return render_template("admin/login.html", error="wrong username or password"), 401
        session.clear()
        session["admin_id"] = admin.id
        target = request.args.get("next", "")
        return redirect(target if target.startswith("/admin/") else url_for(".index"), 303)
    return render_template("admin/login.html", error=None)


@bp.post("/logout")
def logout():
    session.pop("admin_id", None)
    return redirect(url_for(".login"), 303)


@bp.get("/")
@login_required
def index():
    db = database.session()
    studies = [summary(db, s) for s in db.scalars(select(Study).order_by(Study.id.desc()))]
    return render_template("admin/index.html", studies=studies, defaults=StudySettings(), fields=SETTING_FIELDS,
                           choices=StudySettings.CHOICES)


def _settings_from_form(creating: bool) -> dict:
    """The settings a form sends: on creation, its setting fields; on a change, every field but the CSRF token, the
    fixed settings too, so that a change to one (or a name that is no setting) is refused by name, never ignored.
    An empty field keeps its value; an unticked box is not sent, and means no."""
    if creating:
        values = {n: request.form[n] for n in SETTING_FIELDS if request.form.get(n, "") != ""}
    else:
        values = {n: v for n, v in request.form.items() if n != "csrf_token" and v != ""}
    for name in ("allow_absent", "multiple_runs_per_worker"):
        values.setdefault(name, False)
    return values


@bp.post("/studies")
@login_required
def create():
    upload = request.files.get("bundle_zip")
    zip_bytes = upload.read() if upload and upload.filename else None
    db = database.session()
    try:
        study = create_from_source(db, request.form.get("name", ""), _settings_from_form(creating=True),
                                   bundle=request.form.get("bundle") or None, zip_bytes=zip_bytes,
                                   folder=request.form.get("folder") or None, csv=request.form.get("csv") or None,
                                   faces_dir=current_app.config.get("FACES_DIR"),
                                   keep_unusable=request.form.get("keep_unusable") == "on",
                                   attributes=request.form.get("attributes") or None)
        db.commit()
    except ImportProblem as exc:
        db.rollback()
        return render_template("message.html", title="The study was not created", message=str(exc)), 400
    flash(f"created study {study.name!r}")
    return redirect(url_for(".study", study_id=study.id), 303)


@bp.get("/studies/<int:study_id>")
@login_required
def study(study_id: int):
    db = database.session()
    found = study_or_404(study_id)
    return render_template("admin/study.html", study=found, info=summary(db, found), items=item_progress(db, found),
                           fixed=StudySettings.FIXED_AT_CREATION, fields=SETTING_FIELDS,
                           current=settings_of(found).as_dict())  # every setting, those added since it was made too


@bp.post("/studies/<int:study_id>/settings")
@login_required
def settings(study_id: int):
    db = database.session()
    found = study_or_404(study_id)
    database.commit_or_abort(lambda: configure(db, found, _settings_from_form(creating=False)), StudyActionError)
    flash("settings saved")
    return redirect(url_for(".study", study_id=study_id), 303)


@bp.post("/studies/<int:study_id>/runs/<int:number>/<action>")
@login_required
def run_action(study_id: int, number: int, action: str):
    db = database.session()
    found = study_or_404(study_id)
    if action not in ("open", "close"):
        abort(404, "a run can be opened or closed")
    status = "open" if action == "open" else "closed"
    database.commit_or_abort(lambda: set_run_status(db, found, number, status), StudyActionError)
    return redirect(url_for(".study", study_id=study_id), 303)


@bp.get("/studies/<int:study_id>/workers")
@login_required
def workers(study_id: int):
    db = database.session()
    found = study_or_404(study_id)
    return render_template("admin/workers.html", study=found, workers=worker_table(db, found))


@bp.post("/studies/<int:study_id>/workers/<int:worker_id>/<action>")
@login_required
def worker_action(study_id: int, worker_id: int, action: str):
    db = database.session()
    if action not in ("block", "unblock"):
        abort(404, "a worker can be blocked or unblocked")
    database.commit_or_abort(lambda: set_blocked(db, study_or_404(study_id), worker_id, action == "block"),
                             StudyActionError, 404)
    return redirect(url_for(".workers", study_id=study_id), 303)


@bp.get("/studies/<int:study_id>/answers.<fmt>")
@login_required
def export(study_id: int, fmt: str):
    found = study_or_404(study_id)
    rows = answer_rows(database.session(), found)
    filename = f"answers-study{found.id}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if fmt == "csv":
        return Response(to_csv(rows), mimetype="text/csv", headers=headers)
    if fmt == "json":
        return Response(json.dumps(rows, indent=1), mimetype="application/json", headers=headers)
    abort(404, "answers export as .csv or .json")


@bp.get("/studies/<int:study_id>/payments.<fmt>")
@login_required
def payments(study_id: int, fmt: str):
    """Each worker's HITs with the platform's ids, codes, answers, verdicts and a suggested approve or reject."""
    if fmt not in ("csv", "json"):
        abort(404, "payments export as .csv or .json")
    found = study_or_404(study_id)
    rows = payment_rows(database.session(), found)
    headers = {"Content-Disposition": f'attachment; filename="payments-study{found.id}.{fmt}"'}
    if fmt == "csv":
        return Response(payments_csv(rows), mimetype="text/csv", headers=headers)
    return Response(json.dumps(rows, indent=1), mimetype="application/json", headers=headers)


@bp.context_processor
def _admin_name():
    return {"admin": g.get("admin")}
