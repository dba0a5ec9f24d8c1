"""The session cookie and the CSRF token are Flask's and Flask-WTF's own formats, signed by serializers built once:
each side reads the other's, a wrong or rotated-out key is refused, and Flask-WTF accepts the tokens the task page
carries."""
from __future__ import annotations

from unittest.mock import patch

import pytest
from flask import Flask, session
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect, generate_csrf, validate_csrf
from hypothesis import example, given, settings
from hypothesis import strategies as st
from itsdangerous import BadSignature
from wtforms import ValidationError

from survey_app.sessions import SigningSessions, csrf_token

KEY = "the-key-" * 4
LEAVES = (st.none() | st.booleans() | st.integers(-2 ** 53, 2 ** 53) | st.text(max_size=30) | st.binary(max_size=20)
          | st.tuples(st.integers(), st.text(max_size=5)))
VALUES = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=12)


def app_with(key=KEY, fallbacks=()) -> Flask:
    app = Flask(__name__)
    app.secret_key = key
    app.config["SECRET_KEY_FALLBACKS"] = list(fallbacks)
    return app


def ours(app):
    return SigningSessions().get_signing_serializer(app)


def flasks(app):
    return SecureCookieSessionInterface().get_signing_serializer(app)


@settings(max_examples=200)
@given(data=st.dictionaries(st.text(max_size=12), VALUES, max_size=5))
@example(data={"a": {" t": [1, 2]}, " di": {" t": "x"}})  # dictionaries that read like Flask's tags
@example(data={"shown": {"s": ["token", 1765000000000, 1]}, "workers": {"s": 3}, "csrf_token": "f" * 40})
def test_flask_reads_our_cookie_and_we_read_flasks(data):
    app = app_with()
    assert flasks(app).loads(ours(app).dumps(data)) == data
    assert ours(app).loads(flasks(app).dumps(data)) == data


def test_a_long_session_flask_compressed_is_read_and_ours_is_not_compressed():
    app = app_with()
    data = {"shown": {"s": ["a" * 200, 1, 0]}, "csrf_token": "b" * 40}
    theirs = flasks(app).dumps(data)
    assert theirs.startswith(".")  # zlib: Flask's own format says so with a leading dot
    assert ours(app).loads(theirs) == data
    assert not ours(app).dumps(data).startswith(".")


def test_a_cookie_under_another_key_is_refused_unless_that_key_is_a_fallback():
    cookie = ours(app_with("old-" * 8)).dumps({"workers": {"s": 1}})
    with pytest.raises(BadSignature):
        ours(app_with()).loads(cookie)
    assert ours(app_with(fallbacks=["old-" * 8])).loads(cookie) == {"workers": {"s": 1}}
    tampered = cookie.replace("1", "2", 1) if "1" in cookie.split(".")[0] else "x" + cookie
    with pytest.raises(BadSignature):
        ours(app_with("old-" * 8)).loads(tampered)


def test_the_serializer_follows_a_changed_key():
    app = app_with()
    cookie = ours(app).dumps({"a": 1})
    app.secret_key = "another-" * 4
    with pytest.raises(BadSignature):
        ours(app).loads(cookie)


def csrf_app() -> Flask:
    app = app_with()
    CSRFProtect(app)
    return app


def test_flask_wtf_accepts_our_token_and_refuses_it_in_another_session():
    app = csrf_app()
    with app.test_request_context("/"):
        generate_csrf()  # Flask-WTF makes the session's secret
        secret = session["csrf_token"]
    with app.test_request_context("/"):  # a later request of that session
        session["csrf_token"] = secret
        ours_token = csrf_token()
        validate_csrf(ours_token)
        assert generate_csrf() == csrf_token() == ours_token  # one token a request, whoever asks
    with app.test_request_context("/"):
        session["csrf_token"] = "another secret"
        with pytest.raises(ValidationError):
            validate_csrf(ours_token)


def test_a_token_that_expires_is_signed_anew_for_each_request():
    app = csrf_app()
    app.config["WTF_CSRF_TIME_LIMIT"] = 3600
    with app.test_request_context("/"):
        session["csrf_token"] = "s" * 40
        with patch("time.time", return_value=1_700_000_000):
            first = csrf_token()
    with app.test_request_context("/"):
        session["csrf_token"] = "s" * 40
        with patch("time.time", return_value=1_700_000_100):
            later = csrf_token()
            validate_csrf(later)
    assert first != later  # a new timestamp: a kept token would expire an hour after the first page


def test_a_session_without_a_secret_gets_one_from_flask_wtf():
    app = csrf_app()
    with app.test_request_context("/"):
        token = csrf_token()
        assert session["csrf_token"]
        validate_csrf(token)
