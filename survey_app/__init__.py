"""The lineup survey: a Flask application that stands in for Mechanical Turk."""
from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from flask import Flask, current_app, request, url_for
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.security import safe_join

from . import db, inputs, migrate
from .config import Config
from .sessions import SigningSessions

csrf = CSRFProtect()
STATIC_MAX_AGE = 365 * 24 * 3600


@lru_cache(maxsize=64)
def _static_version(folder: str, filename: str) -> str | None:
    """The first 12 hex digits of the file's SHA-256; None for a name outside the static folder or no file."""
    path = safe_join(folder, filename)
    if path is None or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def static_url(filename: str) -> str:
    """The URL of a static file, versioned by its content, so a browser may keep it for a year."""
    return _static_url(request.script_root, filename)


@lru_cache(maxsize=64)
def _static_url(_script_root: str, filename: str) -> str:
    return url_for("static", filename=filename, v=_static_version(current_app.static_folder, filename))


class SurveyApp(Flask):
    request_class = inputs.SurveyRequest  # its JSON parser refuses what the database cannot store (inputs.py)
    session_interface = SigningSessions()

    def get_send_file_max_age(self, filename: str | None) -> int | None:
        """A versioned static URL (as ``static_url`` writes it) never changes: cache it for a year. Any other URL is
        revalidated each time by its ETag."""
        version = request.args.get("v")
        if filename and version and version == _static_version(self.static_folder, filename):
            return STATIC_MAX_AGE
        return None


def create_app(test_config: dict | None = None) -> Flask:
    app = SurveyApp(__name__)
    app.url_map.converters["int"] = inputs.IdConverter  # before any route: every <int:...> fits the database
    app.config.from_object(Config)
    if test_config:
        app.config.update(test_config)
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    migrate.check_current(url)
    db.init_app(app)
    if not app.config.get("SECRET_KEY"):
        app.secret_key = db.secret_key(app.extensions["survey_db"])
    app.jinja_env.globals["static_url"] = static_url
    if app.config["PROXY_HOPS"]:
        hops = app.config["PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)
    app.before_request(inputs.limit_body)  # these two before CSRFProtect's hook, which reads the form
    app.before_request(inputs.screen_request)
    csrf.init_app(app)

    from . import admin, api, errors, worker

    app.register_blueprint(worker.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)  # the API authenticates with a bearer token, never with the cookie
    errors.init_app(app)

    @app.get("/hello")
    def hello():
        """The cheapest response the server can give: the ceiling the load benchmark compares against."""
        return "hello"

    return app

