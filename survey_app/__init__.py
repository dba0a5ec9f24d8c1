"""The lineup survey: a Flask application that stands in for Mechanical Turk."""
from __future__ import annotations

from pathlib import Path

from flask import Flask, current_app, request
from flask_wtf.csrf import CSRFProtect

from . import db, migrate
from .config import Config

csrf = CSRFProtect()


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(__name__)
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
    app.before_request(_limit_body)  # before CSRFProtect's hook, which reads the form
    csrf.init_app(app)

    from . import admin, api, errors, images, worker

    app.register_blueprint(worker.bp)
    app.register_blueprint(images.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(api.bp)
    csrf.exempt(api.bp)  # the API authenticates with a bearer token, never with the cookie
    errors.init_app(app)

    @app.get("/hello")
    def hello():
        """The cheapest response the server can give: the ceiling the load benchmark compares against."""
        return "hello"

    return app


UPLOAD_ENDPOINTS = ("admin.create", "api.create_study")


def _limit_body() -> None:
    """Small bodies everywhere but the two routes that take a zipped bundle."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = current_app.config["MAX_UPLOAD_BYTES"]
