"""The JSON API: what the admin pages do, for scripts and the simulated panel. Bearer-token auth."""
from __future__ import annotations

import hashlib
from dataclasses import fields

from flask import Blueprint, Response, abort, current_app, jsonify, request
from sqlalchemy import select

from . import db as database
from .auth import check_login, new_api_token, token_required
from .export import answer_rows, payment_rows, payments_csv, to_csv
from .importer import ImportProblem, create_from_source
from .inputs import StrictJSON, database_int, typed_fields
from .models import Study
from .settings import StudySettings
from .studies import StudyActionError, configure, item_progress, set_blocked, set_run_status, summary, worker_table

bp = Blueprint("api", __name__, url_prefix="/api/v1")
FORM_BOOLEANS = {"": False, "0": False, "false": False, "off": False, "no": False,
                 "1": True, "true": True, "on": True, "yes": True}
"""How a multipart form may say a yes-or-no field; anything else is refused rather than read as no."""
PATH = "a path (a string)"
STUDY_FIELDS = {"name": ("a string", str), "bundle": (PATH, str), "folder": (PATH, str), "csv": (PATH, str),
                "settings": ("an object", dict), "where": ("an object of column: value strings", dict),
                "open_runs": ("a list of run numbers", list, str), "keep_unusable": ("true or false", bool),
                "attributes": (PATH, str), "gallery": (PATH, str), "class_map": (PATH, str)}
"""The fields of a new study's JSON body and the JSON types each may have."""
SETTING_TYPES = {"int": ("a whole number", int), "float": ("a number", int, float), "bool": ("true or false", bool),
                 "str": ("a string", str)}
"""The JSON type of each kind of study setting ("3" is not a number in JSON; a form's strings are parsed by
StudySettings)."""
ANSWER_FORMATS = ("json", "csv")


def _json_body() -> dict:
    """The request's JSON object, parsed by inputs.StrictJSON (which names what it refuses)."""
    if not request.is_json:
        abort(400, "the body must be a JSON object (Content-Type: application/json)")
    data = request.get_json()
    if not isinstance(data, dict):
        abort(400, f"the body must be a JSON object, not {type(data).__name__}")
    return data


def _json_settings(data: dict) -> dict:
    """Settings sent as JSON, each known one of its JSON type (else 400 naming it); unknown names go on to
    StudySettings, which names them."""
    spec = {f.name: SETTING_TYPES[f.type] for f in fields(StudySettings)}
    typed_fields({key: value for key, value in data.items() if key in spec}, spec)
    return data


def _study(study_id: int) -> Study:
    study = database.session().get(Study, study_id)
    if study is None:
        abort(404, f"no study {study_id}")
    return study


@bp.post("/token")
def token():
    """Trade a username and password (HTTP basic auth) for a new API token; the previous one stops working."""
    auth = request.authorization
    db = database.session()
    admin = check_login(db, auth.username or "", auth.password or "") if auth else None
    if admin is None:
        abort(401, "send an admin's username and password with HTTP basic auth")
    value = new_api_token(admin)
    db.commit()
    return jsonify(token=value, sha256=hashlib.sha256(value.encode()).hexdigest()[:8])


@bp.get("/studies")
@token_required
def studies():
    db = database.session()
    return jsonify([summary(db, s) for s in db.scalars(select(Study).order_by(Study.id))])


@bp.post("/studies")
@token_required
def create_study():
    """JSON ``{name, bundle | folder + csv, settings, open_runs, keep_unusable}``, or multipart with a
    ``bundle_zip`` file. Unusable items (screening) are left out unless ``keep_unusable`` is true."""
    if request.files:
        upload = request.files.get("bundle_zip")
        if upload is None:
            abort(400, "the multipart upload must name its file bundle_zip")
        try:
            settings = StrictJSON.loads(request.form.get("settings") or "{}")
        except ValueError as exc:
            abort(400, f"settings must be a JSON object ({exc})")
        keep = request.form.get("keep_unusable", "").strip().lower()
        if keep not in FORM_BOOLEANS:
            abort(400, "keep_unusable must be true or false")
        data = {"name": request.form.get("name", ""), "settings": settings,
                "open_runs": request.form.get("open_runs", ""), "keep_unusable": FORM_BOOLEANS[keep],
                "attributes": request.form.get("attributes") or None}
        zip_bytes = upload.read()
    else:
        data, zip_bytes = typed_fields(_json_body(), STUDY_FIELDS), None
    if not isinstance(data.get("settings") or {}, dict):
        abort(400, "settings must be a JSON object")
    settings = _json_settings(data.get("settings") or {})
    db = database.session()
    try:
        study = create_from_source(db, data.get("name") or "", settings,
                                   bundle=data.get("bundle"), zip_bytes=zip_bytes, folder=data.get("folder"),
                                   csv=data.get("csv"), class_map=data.get("class_map"),
                                   faces_dir=data.get("gallery") or current_app.config.get("FACES_DIR"),
                                   where=_string_map(data.get("where")),
                                   keep_unusable=data.get("keep_unusable") or False,
                                   attributes=data.get("attributes"))
        for number in _run_numbers(data.get("open_runs")):
            set_run_status(db, study, number, "open")
        db.commit()
    except (ImportProblem, StudyActionError) as exc:
        db.rollback()
        abort(400, str(exc))
    return jsonify(summary(db, study)), 201


def _string_map(value) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ImportProblem("where must be an object of column: value strings")
    return value


def _run_numbers(value) -> list[int]:
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    try:
        return [database_int(v.strip() if isinstance(v, str) else v, "a run number in open_runs") for v in value]
    except ValueError as exc:
        raise StudyActionError(str(exc)) from None


@bp.get("/studies/<int:study_id>")
@token_required
def study(study_id: int):
    return jsonify(summary(database.session(), _study(study_id)))


@bp.get("/studies/<int:study_id>/items")
@token_required
def items(study_id: int):
    return jsonify(item_progress(database.session(), _study(study_id)))


@bp.patch("/studies/<int:study_id>/settings")
@token_required
def settings(study_id: int):
    db = database.session()
    found = _study(study_id)
    database.commit_or_abort(lambda: configure(db, found, _json_settings(_json_body())), StudyActionError)
    return jsonify(found.settings)


@bp.post("/studies/<int:study_id>/runs/<int:number>/<action>")
@token_required
def run_action(study_id: int, number: int, action: str):
    if action not in ("open", "close"):
        abort(404, "a run can be opened or closed")
    db = database.session()
    status = "open" if action == "open" else "closed"
    run = database.commit_or_abort(lambda: set_run_status(db, _study(study_id), number, status), StudyActionError)
    return jsonify(number=run.number, status=run.status)


@bp.get("/studies/<int:study_id>/workers")
@token_required
def workers(study_id: int):
    return jsonify(worker_table(database.session(), _study(study_id)))


@bp.post("/studies/<int:study_id>/workers/<int:worker_id>/<action>")
@token_required
def worker_action(study_id: int, worker_id: int, action: str):
    if action not in ("block", "unblock"):
        abort(404, "a worker can be blocked or unblocked")
    db = database.session()
    worker = database.commit_or_abort(lambda: set_blocked(db, _study(study_id), worker_id, action == "block"),
                                      StudyActionError, 404)
    return jsonify(worker=worker.external_id, blocked=worker.blocked)


def _table(study_id: int, rows_of, csv_of) -> Response:
    """A study's rows as JSON, or as CSV with ``?format=csv``; any other format is refused before any read."""
    fmt = request.args.get("format", "json")
    if fmt not in ANSWER_FORMATS:
        abort(400, f"format must be {' or '.join(ANSWER_FORMATS)}, got {fmt!r}")
    rows = rows_of(database.session(), _study(study_id))
    return Response(csv_of(rows), mimetype="text/csv") if fmt == "csv" else jsonify(rows)


@bp.get("/studies/<int:study_id>/answers")
@token_required
def answers(study_id: int):
    return _table(study_id, answer_rows, to_csv)


@bp.get("/studies/<int:study_id>/payments")
@token_required
def payments(study_id: int):
    """Per worker: HITs, platform ids, codes, answers, gold and skilled verdicts, a suggested approve or reject."""
    return _table(study_id, payment_rows, payments_csv)
