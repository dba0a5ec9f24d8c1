"""What a request may carry: the app's general defences against malformed input, each in one place.

Every route reads its input through these, so a malformed request is refused with a 4xx that names the problem
before any view runs a query, and nothing is stored:

- ids and numbers in URLs fit the database's INTEGER, else the URL matches no route (``IdConverter``);
- a body without a Content-Length (chunked) is held to the same size limit as one with it (``limit_body``);
- no text (path, query, header, basic-auth name, form field, file name, JSON string) holds a control character
  other than tab and line breaks, nor a lone surrogate: PostgreSQL refuses NUL in text, and neither can be encoded
  for it (``screen_request``);
- JSON bodies nest at most ``JSON_MAX_DEPTH`` levels, hold no NaN or Infinity, and their integers fit the
  database's INTEGER (``StrictJSON``, the request's JSON parser);
- a JSON field has the type its route expects (``typed_fields``).
"""
from __future__ import annotations

import json
import math
import re
import tempfile

from flask import Request, abort, current_app, request
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, UnsupportedMediaType
from werkzeug.routing import IntegerConverter, ValidationError

DB_INT_MAX = 2**31 - 1
"""PostgreSQL's INTEGER, the type of every id and run number (SQLite's is wider)."""
JSON_MAX_DEPTH = 32
"""Deeper than any body the API takes; a deeper one would exhaust the parser's recursion."""
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
"""Control characters but tab, line feed and carriage return (a textarea sends those), and lone surrogates."""
UPLOAD_ENDPOINTS = ("admin.create", "api.create_study")
"""The two routes that take a zipped bundle, with their own, larger size limit."""
SPOOL_BYTES = 1024 * 1024
"""A chunked body is buffered in memory up to this size, then in a temporary file."""


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: digits that fit the database's INTEGER, else the URL matches no route (404)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = None, max: int | None = DB_INT_MAX,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)

    def to_python(self, value: str) -> int:
        if len(value) > len(str(DB_INT_MAX)):  # before int(): Python refuses to convert 4300 digits and more
            raise ValidationError()
        return super().to_python(value)


def database_int(value, what: str) -> int:
    """``value`` (an int, or a string of digits from a form) as an int the database's INTEGER holds."""
    try:
        number = int(value) if isinstance(value, int) or (isinstance(value, str) and len(value) <= 12) else None
    except ValueError:
        number = None
    if isinstance(value, bool) or number is None or not -DB_INT_MAX - 1 <= number <= DB_INT_MAX:
        raise ValueError(f"{what} must be a whole number between {-DB_INT_MAX - 1} and {DB_INT_MAX}, got {value!r}")
    return number


def limit_body() -> None:
    """Before every request: small bodies everywhere but the two upload routes. A chunked body (no Content-Length)
    is read here, up to the limit, and refused whole (413) past it: Werkzeug would otherwise cut it at the limit
    without a word when the server (gunicorn) marks its input as terminated."""
    if request.endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = current_app.config["MAX_UPLOAD_BYTES"]
    environ = request.environ
    if not (environ.get("wsgi.input_terminated") and "chunked" in request.headers.get("Transfer-Encoding", "").lower()):
        return
    limit = request.max_content_length
    stream, body, size = environ["wsgi.input"], tempfile.SpooledTemporaryFile(SPOOL_BYTES), 0
    while chunk := stream.read(64 * 1024):
        size += len(chunk)
        if limit is not None and size > limit:
            body.close()
            raise RequestEntityTooLarge()
        body.write(chunk)
    body.seek(0)
    environ["wsgi.input"] = body  # still marked terminated: it ends where the client's body ended


def screen_request() -> None:
    """Before every request (after ``limit_body``): refuse a control character anywhere in the request's text,
    naming where, and parse a JSON body with ``StrictJSON`` whichever route it was sent to. Headers are read from
    the WSGI environ as the server gave them (Werkzeug's header view renames each one on every read), and the query
    and authorization only parsed when the request has them: this runs before every request."""
    environ = request.environ
    places = [("path", request.path)]
    if environ.get("QUERY_STRING"):
        places += [("query parameter", text) for item in request.args.items(multi=True) for text in item]
    places += [("header", text) for key, value in environ.items()
               if key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH") for text in (key, value)]
    if "HTTP_AUTHORIZATION" in environ and (auth := request.authorization) is not None:
        # a parameter without a value (``Authorization: x a,b=``) parses to None: there is no text to check
        places += [("authorization", text or "") for text in (*auth.parameters.values(), auth.token)]
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        places += [("form field", text) for item in request.form.items(multi=True) for text in item]
        places += [("file name", f.filename or "") for f in request.files.values()]
    if CONTROL.search("\t".join(text for _, text in places)):  # one search, and only then where it is
        for where, text in places:
            _check_text(text, f"the request's {where}")
    if request.is_json and request.get_data(cache=True):
        request.get_json()  # parsed (and checked) here, for every route, and kept for the view


def _check_text(text: str, where: str) -> None:
    found = CONTROL.search(text)
    if found:
        abort(400, f"{where} holds the control character U+{ord(found.group()):04X}: text may hold tabs and line "
                   "breaks but no other control characters")


class JSONRefused(ValueError):
    """A JSON body the app does not read; the message says why (the request answers 400 with it)."""


TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]', re.S)
"""A JSON string (an unterminated one runs to the end) or a bracket: strings are skipped whole, in one pass."""


def _check_depth(text: str) -> None:
    depth = 0
    for token in TOKENS.finditer(text):
        mark = token.group()
        if mark in ("[", "{"):
            depth += 1
            if depth > JSON_MAX_DEPTH:
                raise JSONRefused(f"the JSON nests deeper than {JSON_MAX_DEPTH} levels")
        elif mark in ("]", "}"):
            depth -= 1


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > len(str(DB_INT_MAX)) or not -DB_INT_MAX - 1 <= int(digits) <= DB_INT_MAX:
        raise JSONRefused(f"the JSON integer {digits[:20]}{'...' if len(digits) > 20 else ''} is beyond what the "
                          f"database stores (-{DB_INT_MAX + 1} to {DB_INT_MAX})")
    return int(digits)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONRefused(f"the JSON number {text[:20]} is too large")
    return value


def _refuse_constant(name: str):
    raise JSONRefused(f"{name} is not a JSON number")


def _check_strings(value, path: str = "$") -> None:
    if isinstance(value, str):
        found = CONTROL.search(value)
        if found:
            raise JSONRefused(f"the JSON string at {path} holds the control character U+{ord(found.group()):04X}")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, path)
            _check_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for k, item in enumerate(value):
            _check_strings(item, f"{path}[{k}]")


class StrictJSON:
    """The JSON parser of request bodies (``SurveyRequest.json_module``): json.loads behind the checks above.
    The session cookie keeps Flask's own parser (it holds milliseconds since 1970, beyond INTEGER)."""

    @staticmethod
    def loads(data: str | bytes, **kwargs):
        text = data.decode(json.detect_encoding(data)) if isinstance(data, (bytes, bytearray)) else data
        _check_depth(text)
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_refuse_constant,
                           **kwargs)
        _check_strings(value)
        return value

    dumps = staticmethod(json.dumps)


class SurveyRequest(Request):
    """Flask's request, reading JSON bodies with StrictJSON and saying why it refuses one."""

    @property
    def json_module(self):
        return StrictJSON

    @json_module.setter
    def json_module(self, _provider) -> None:
        """Flask sets the app's JSON provider on every request; request bodies keep StrictJSON."""

    def on_json_loading_failed(self, e: ValueError | None):
        """Say why (Flask's own answer, outside debug mode, is a bare "could not understand")."""
        if e is None:
            raise UnsupportedMediaType("send the body as JSON (Content-Type: application/json)")
        raise BadRequest(str(e) if isinstance(e, JSONRefused) else f"the body is not valid JSON: {e}")


def typed_fields(data: dict, spec: dict[str, tuple]) -> dict:
    """``data`` when every field is in ``spec`` (name: (description, *allowed types)) with an allowed type, or null
    (absent); else 400 naming each unknown field and each field of the wrong type. ``true`` is not a number here."""
    problems = [f"unknown field {key!r} (known: {', '.join(spec)})" for key in data if key not in spec]
    for key, (description, *allowed) in spec.items():
        value = data.get(key)
        if value is not None and (not isinstance(value, tuple(allowed)) or (isinstance(value, bool)
                                                                            and bool not in allowed)):
            problems.append(f"{key} must be {description}, got {JSON_TYPE_NAMES.get(type(value), 'something else')}")
    if problems:
        abort(400, "; ".join(problems))
    return data


JSON_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false",
                   list: "a list", dict: "an object"}
