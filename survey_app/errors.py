"""Every error is a 4xx (or 503 when the database is busy) with a message that names the problem:
HTML for people, JSON for the API."""
from __future__ import annotations

from flask import jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge


def respond(status: int, message: str):
    if request.path.startswith("/api/"):
        return jsonify(error=message, status=status), status
    return render_template("message.html", title=f"Error {status}", message=message), status


def init_app(app) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return respond(400, f"the form's security token is missing or invalid ({exc.description}); "
                            "reload the page and try again")

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(_exc):
        return respond(413, "the request body is larger than this server accepts")

    @app.errorhandler(HTTPException)
    def http_error(exc):
        return respond(exc.code or 400, exc.description or exc.name)

    @app.errorhandler(OperationalError)
    def database_busy(_exc):
        body, status = respond(503, "the database is busy; nothing was stored, please retry")
        return body, status, {"Retry-After": "1"}
