"""Property-based fuzzing of every route (the worker pages, the admin pages, the API, images and static files) on
SQLite and PostgreSQL, as a stranger, a worker and a logged-in admin (Hypothesis builds the requests):

- no request is answered with a 5xx;
- a refused request (4xx) changes no row;
- a request that carries a poison (a control character in any text, an id or a JSON integer beyond the database's
  INTEGER, JSON nested too deeply, NaN) is refused with a 4xx.

The default run sends ``FAST`` requests per route (seconds); the ``slow`` run ``THOROUGH`` per route (minutes).
"""
from __future__ import annotations

import base64
import functools
import io
import json
import re
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from survey_app.inputs import CONTROL, DB_INT_MAX, JSON_MAX_DEPTH, UPLOAD_ENDPOINTS
from survey_app.simulate import parse

from .conftest import csrf_of, join, new_study
from .test_admin import api_token, login, make_admin
from .test_bad_input import BAD_ZIPS, snapshot

FAST, THOROUGH = 15, 150
FIELDS = ["csrf_token", "assignment", "choice", "confidence", "worker_id", "consent", "username", "password", "name",
          "bundle", "folder", "csv", "keep_unusable", "settings", "open_runs", "runs", "hit_size", "seed",
          "allow_absent", "target_share", "answers_per_item", "skilled_min_accuracy"]
"""Field names the app's forms and JSON bodies read, so the fuzz reaches past "missing field"."""
POISON_TEXT = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f"]
CONTENT_TYPES = ["application/json", "application/x-www-form-urlencoded", "multipart/form-data", "text/plain",
                 "application/octet-stream", "application/json; charset=utf-16"]


class World:
    """The study, the three roles' session cookies and bearer token, and the values a valid request would carry."""

    def __init__(self, app, bundle_dir) -> None:
        make_admin(app)
        self.app = app
        self.study = new_study(app, bundle_dir, open_runs=(1, 2))
        admin = app.test_client()
        login(admin)
        self.bearer = api_token(admin)["Authorization"]
        worker = app.test_client()
        join(worker, self.study, "W1")
        page = worker.get(f"/s/{self.study.slug}/task").text
        self.cookies = {"stranger": None, "worker": worker.get_cookie("session").value,
                        "admin": admin.get_cookie("session").value}
        self.csrf = {"stranger": csrf_of(app.test_client().get(f"/s/{self.study.slug}/").text),
                     "worker": csrf_of(page), "admin": csrf_of(admin.get("/admin/").text)}
        shown = parse(page)  # as the simulated panel reads a task page
        self.tokens = [shown.inputs.get("assignment", "none"), *shown.choices]
        with app.extensions["survey_db"]() as db:
            from survey_app.models import Worker

            self.worker_id = db.query(Worker.id).scalar()
        self.valid = {"slug": self.study.slug, "study_id": self.study.id, "worker_id": self.worker_id, "number": 1,
                      "action": "open", "fmt": "csv", "filename": "style.css"}
        self.rules = sorted(app.url_map.iter_rules(), key=lambda r: r.rule)

    def client(self, role: str):
        client = self.app.test_client()
        if self.cookies[role]:
            client.set_cookie("session", self.cookies[role])
        return client


# --- strategies -------------------------------------------------------------------------------------------------
# Each request is either clean (well-formed text and numbers, so it reaches the views' own checks) or hostile (any of
# its texts may hold a control character, its numbers may be beyond INTEGER, its JSON may nest too deeply).

CLEAN_CHARACTERS = st.characters(exclude_categories=("Cc", "Cs"))


def built_once(builder):
    """Strategies are built once for each set of arguments: building them on every draw is most of the time."""
    return functools.lru_cache(maxsize=None)(builder)


@built_once
def texts(world: World, hostile: bool, max_size: int = 30):
    valid = st.sampled_from([*world.tokens, world.study.slug, "W1", "absent", "on", "yes", "1", "3", "0.5", "csv"])
    if not hostile:
        return st.one_of(valid, st.text(CLEAN_CHARACTERS, max_size=max_size))
    poisoned = st.builds(lambda a, p, b: a + p + b, st.text(max_size=8), st.sampled_from(POISON_TEXT),
                         st.text(max_size=8))
    return st.one_of(valid, st.text(max_size=max_size), poisoned)


@built_once
def header_texts(hostile: bool):
    return st.text(st.characters(codec="latin-1", exclude_characters="\r\n",
                                 exclude_categories=() if hostile else ("Cc",)), max_size=20)


@built_once
def ints(hostile: bool, low: int = -DB_INT_MAX - 1):
    small = st.one_of(st.integers(max(low, -3), 12), st.integers(low, DB_INT_MAX))
    if not hostile:
        return small
    return st.one_of(small, st.sampled_from([2**31, 2**63, 10**30]), st.integers(DB_INT_MAX + 1, 2**80),
                     st.integers(-(2**80), low - 1) if low < 0 else st.nothing())


@built_once
def json_values(world: World, hostile: bool):
    leaves = st.one_of(st.none(), st.booleans(), ints(hostile),
                       st.floats(allow_nan=hostile, allow_infinity=hostile), texts(world, hostile))
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(FIELDS), texts(world, hostile)), inner, max_size=4)),
        max_leaves=12)


@built_once
def json_bodies(world: World, hostile: bool):
    """(raw JSON text, poisoned?): objects with the fields the API reads, any JSON, and (hostile) JSON nested past
    the limit."""
    objects = st.dictionaries(st.sampled_from(FIELDS), json_values(world, hostile), max_size=5)
    plain = st.one_of(objects, objects, json_values(world, hostile)).map(lambda v: (json.dumps(v), json_poisoned(v)))
    if not hostile:
        return plain
    return st.one_of(plain, st.integers(JSON_MAX_DEPTH + 1, 5000).map(
        lambda n: ('{"settings": ' + "[" * n + "]" * n + "}", True)))


def json_poisoned(value) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, int):
        return not -DB_INT_MAX - 1 <= value <= DB_INT_MAX
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, str):
        return bool(CONTROL.search(value))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    return any(json_poisoned(v) or (isinstance(k, str) and json_poisoned(k)) for k, v in items)


@st.composite
def http_requests(draw, world: World, rule):
    """One request to ``rule``: (role, method, URL, keyword arguments for client.open, poisoned?)."""
    hostile = draw(st.sampled_from([False, False, True]))
    role = draw(st.sampled_from(["admin", "admin", "worker", "stranger"]))  # most routes are the admin's
    methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
    method = draw(st.sampled_from(methods * 5 + ["GET", "POST", "PATCH", "PUT", "DELETE"]))
    found = []  # the texts sent, to see whether any holds a control character
    path = rule.rule
    poisoned = False
    for name in rule.arguments:
        if f"<int:{name}>" in rule.rule:
            value = draw(st.just(world.valid[name]) | ints(hostile, low=0))
            poisoned |= value > DB_INT_MAX
            text = str(value)
        else:
            text = draw(st.just(str(world.valid[name])) | texts(world, hostile))
            found.append(text)
            text = quote(text, safe="") or "x"
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", text.replace("\\", "\\\\"), path)
    query = draw(st.dictionaries(st.sampled_from(["format", "workerId", "next", "more", "v"]) | texts(world, hostile),
                                 texts(world, hostile), max_size=3))
    found += [*query, *query.values()]
    url = path + ("?" + urlencode(query) if query else "")
    headers = {}
    auth = draw(st.sampled_from(["role's own", "role's own", "basic", "junk"]))
    if auth == "role's own" and role == "admin" and rule.rule.startswith("/api/"):
        headers["Authorization"] = world.bearer
    elif auth == "basic":
        user, password = draw(texts(world, hostile)), draw(texts(world, hostile))
        found += [user, password]
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    elif auth == "junk":
        headers["Authorization"] = draw(header_texts(hostile))
    if draw(st.booleans()):
        headers["X-Fuzz"] = draw(header_texts(hostile))
    found += headers.values()
    uploads = rule.endpoint in UPLOAD_ENDPOINTS
    kind = draw(st.sampled_from(["upload", "upload", "form", "json", "raw"] if uploads else
                                ["none", "form", "form", "json", "json", "raw"]))
    kwargs: dict = {"headers": headers}
    if kind == "form":
        form = draw(st.dictionaries(st.sampled_from(FIELDS) | texts(world, hostile), texts(world, hostile),
                                    max_size=6))
        if draw(st.sampled_from([True, True, False])):
            form["csrf_token"] = world.csrf[role]
        found += [*form, *form.values()]
        kwargs["data"] = form
    elif kind == "json":
        text, bad = draw(json_bodies(world, hostile))
        poisoned |= bad
        kwargs.update(data=text.encode(), content_type="application/json")
    elif kind == "raw":
        kwargs.update(data=draw(st.binary(max_size=300)), content_type=draw(st.sampled_from(CONTENT_TYPES)))
    elif kind == "upload":
        data = draw(st.sampled_from([zip_bytes for zip_bytes, _ in BAD_ZIPS.values()]) | st.binary(max_size=200))
        fields = draw(st.dictionaries(st.sampled_from(["name", "settings", "open_runs", "keep_unusable"]),
                                      texts(world, hostile), max_size=3))
        found += fields.values()
        kwargs.update(data={**fields, "csrf_token": world.csrf[role], "bundle_zip": (io.BytesIO(data), "b.zip")},
                      content_type="multipart/form-data")
    poisoned |= any(CONTROL.search(text) for text in found)
    return role, method, url, kwargs, poisoned


# --- every route, every method, fixed junk ---------------------------------------------------------------------

JUNK = [{"data": b"\xff\xfe{not json", "content_type": "application/json"},
        {"data": {"choice": "x", "assignment": "y", "csrf_token": "z"}},
        {"data": {"name": "\x00" * 10, "bundle": "../../etc"}},
        {"data": b'{"name": ["x"], "settings": {"seed": 1e999}, "open_runs": [99999999999]}',
         "content_type": "application/json"},
        {"data": b"[" * 10_000 + b"]" * 10_000, "content_type": "application/json"}]

AUTH_JUNK = [" =,0", "0", "Basic", "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer",
             "Bearer  ", "Digest realm", "Digest a=, b", 'x a="unterminated', "x ,,,=,"]
"""Authorization headers werkzeug parses oddly (a parameter with no value parses to None, a token may be absent)."""


def test_every_route_and_method_answers_fixed_junk_below_500(app, bundle_dir):
    """The sweep the fuzz samples from: each route with valid path values, each method, each role, each junk."""
    world = World(app, bundle_dir)
    checked = 0
    for rule in world.rules:
        path = rule.rule
        for name in rule.arguments:
            path = re.sub(rf"<(?:[a-z]+:)?{name}>", str(world.valid[name]), path)
        for role in ("stranger", "worker", "admin"):
            headers = {"Authorization": world.bearer} if role == "admin" else {}
            for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                for junk in JUNK:
                    response = world.client(role).open(path, method=method, headers=headers, **junk)
                    assert response.status_code < 500, (role, method, path, response.status_code, response.text[:300])
                    checked += 1
                for header in AUTH_JUNK:
                    response = world.client(role).open(path, method=method, headers={"Authorization": header})
                    assert response.status_code < 500, (role, method, path, header, response.status_code)
                    checked += 1
    assert checked > 1000


# --- the property -----------------------------------------------------------------------------------------------

def fuzz_every_route(app, bundle_dir, per_route: int) -> int:
    world = World(app, bundle_dir)
    state = {"rows": snapshot(app), "sent": 0}

    for rule in world.rules:
        @settings(max_examples=per_route, deadline=None, derandomize=False,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                         HealthCheck.function_scoped_fixture])
        @given(request=http_requests(world, rule))
        def answers_below_500_and_refusals_change_nothing(request):
            role, method, url, kwargs, poisoned = request
            response = world.client(role).open(url, method=method, **kwargs)
            state["sent"] += 1
            status = response.status_code
            assert status < 500, (role, method, url[:200], status, response.text[:300])
            if poisoned:
                assert 400 <= status < 500, (role, method, url[:200], status, "a poisoned request was not refused")
            rows = snapshot(app)
            if status >= 400:
                assert rows == state["rows"], (role, method, url[:200], status, "a refused request changed rows")
            state["rows"] = rows

        answers_below_500_and_refusals_change_nothing()
    return state["sent"]


def test_fuzz_every_route(app, bundle_dir):
    sent = fuzz_every_route(app, bundle_dir, FAST)
    assert sent >= FAST * 20


@pytest.mark.slow
def test_fuzz_every_route_thoroughly(app, bundle_dir):
    sent = fuzz_every_route(app, bundle_dir, THOROUGH)
    assert sent >= THOROUGH * 20
