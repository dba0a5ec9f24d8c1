"""The worker's signed session cookie and the CSRF token of their forms: Flask's and Flask-WTF's own formats, with
their signing serializers built once.

Per request, Flask builds a new itsdangerous serializer for the session (twice when the session changes: to read it
and to write it), and Flask-WTF one for the CSRF token of every page; each new serializer builds a new signer for
every use, and each signer derives its key again, and building costs more than signing. Here each is built once per
key, and its signer derives each key once (Flask-WTF's check of a form's token is its own, unchanged). And nothing
is compressed: a session or a token is a few hundred bytes, and zlib lets go of the GIL, which under load hands the
process to another thread and back for every request. Both formats read the same either way (the payload says
whether it is compressed), so cookies and tokens from before an upgrade still work, and Flask's and Flask-WTF's own
code reads ours.
"""
from __future__ import annotations

import json
from functools import cached_property, lru_cache

from flask import current_app, g, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf
from itsdangerous import Serializer, TimestampSigner, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

CSRF_SALT = "wtf-csrf-token"
"""Flask-WTF's salt for its tokens (flask_wtf.csrf), which it checks every form with."""


class _Signer(TimestampSigner):
    """A signer whose derived keys are computed once (its keys and salt never change)."""

    @cached_property
    def _derived(self) -> dict[bytes, bytes]:
        return {}

    def derive_key(self, secret_key=None) -> bytes:
        key = self.secret_keys[-1] if secret_key is None else secret_key
        derived = self._derived.get(key)
        if derived is None:
            derived = self._derived[key] = super().derive_key(secret_key)
        return derived


class _Serializer(URLSafeTimedSerializer):
    """itsdangerous' URL-safe timed serializer with one signer per salt, made once, and an uncompressed payload."""
    default_signer = _Signer

    @cached_property
    def _signers(self) -> dict:
        return {}

    def make_signer(self, salt=None):
        salt = self.salt if salt is None else salt
        signer = self._signers.get(salt)
        if signer is None:
            signer = self._signers[salt] = super().make_signer(salt)
        return signer

    def dump_payload(self, obj) -> bytes:
        return base64_encode(Serializer.dump_payload(self, obj))


class _SessionJSON:
    """Flask's tagged JSON for the session, skipped when the session holds nothing it would tag (text, numbers,
    lists, dictionaries with text keys: what the survey keeps), as its walk over every value costs more than the
    JSON itself. Reading is always the tagged reader's, which reads both."""

    def __init__(self, tagged) -> None:
        self.tagged = tagged

    def dumps(self, value) -> str:
        return json.dumps(value, separators=(",", ":")) if self._plain(value) else self.tagged.dumps(value)

    def loads(self, value):
        return self.tagged.loads(value)

    def _plain(self, value) -> bool:
        kind = type(value)
        if kind in (str, int, float, bool) or value is None:
            return True
        if kind is list:
            return all(self._plain(item) for item in value)
        if kind is dict:
            return (all(type(key) is str for key in value)
                    and not (len(value) == 1 and next(iter(value)) in self.tagged.tags)  # would read as a tag
                    and all(self._plain(item) for item in value.values()))
        return False


class SigningSessions(SecureCookieSessionInterface):
    def get_signing_serializer(self, app):
        if not app.secret_key:
            return None
        keys = (*(app.config.get("SECRET_KEY_FALLBACKS") or ()), app.secret_key)
        cached = app.extensions.get("survey_session_serializer")
        if cached is None or cached[0] != keys:  # the keys changed (a test's app, a rotated key): build anew
            serializer = _Serializer(list(keys), salt=self.salt, serializer=_SessionJSON(self.serializer),
                                     signer_kwargs={"key_derivation": self.key_derivation,
                                                    "digest_method": self.digest_method})
            cached = app.extensions["survey_session_serializer"] = (keys, serializer)
        return cached[1]


def csrf_token() -> str:
    """Flask-WTF's ``generate_csrf()``, signed by a serializer built once per key: the token the task page carries,
    checked by Flask-WTF's CSRFProtect like any other. Flask-WTF itself makes the session's secret when it has none
    yet, and answers when this request has its token already."""
    field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    secret = session.get(field)
    key = current_app.config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
    if not isinstance(secret, str) or not key or field in g:
        return generate_csrf()
    cached = current_app.extensions.get("survey_csrf_serializer")
    if cached is None or cached[0] != key:
        cached = current_app.extensions["survey_csrf_serializer"] = (key, _Serializer(key, salt=CSRF_SALT))
    if current_app.config.get("WTF_CSRF_TIME_LIMIT", 3600) is None:  # a token never expires: sign it once
        token = _signed_once(cached[1], secret)
    else:
        token = cached[1].dumps(secret)
    setattr(g, field, token)
    return token


@lru_cache(maxsize=8192)
def _signed_once(serializer: _Serializer, secret: str) -> str:
    """A session's CSRF token, for the pages of the workers at work, where tokens do not expire (config.py)."""
    return serializer.dumps(secret)
