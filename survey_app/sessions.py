"""The worker's signed session cookie: Flask's own format, with its signing serializer built once per app.

Flask builds a new itsdangerous serializer for every request's session, twice when the session changes (to read it
and to write it), and building one costs more than using it (it serializes an empty dict to learn whether its
serializer returns text). Cookies are byte for byte Flask's own, so a server upgraded mid-study keeps its workers'
sessions.
"""
from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface


class SigningSessions(SecureCookieSessionInterface):
    def get_signing_serializer(self, app):
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = app.extensions.get("survey_session_serializer")
        if cached is None or cached[0] != keys:  # the keys changed (a test's app, a rotated key): build anew
            cached = app.extensions["survey_session_serializer"] = (keys, super().get_signing_serializer(app))
        return cached[1]
