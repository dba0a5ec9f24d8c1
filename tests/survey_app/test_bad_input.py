"""Bad input, by class (issue 11): each class gets a 4xx that names the problem, on SQLite and on PostgreSQL, and
changes no row. The classes: integers beyond the database's INTEGER in URLs and JSON; control characters in any
text; deeply nested JSON; damaged or hostile zips; chunked bodies past the size limit; JSON fields of the wrong
type; fixed settings sent to the settings form; unknown export formats."""
from __future__ import annotations

import base64
import html
import io
import json
import struct
import warnings
import zipfile

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import LargeBinary, func, select

from survey_app.inputs import JSONRefused, StrictJSON
from survey_app.models import Base, Study
from survey_app.uploads import ImportProblem, unpack_zip

from .conftest import csrf_of, join, new_study
from .test_admin import PASSWORD, api_token, login, make_admin, zipped


def snapshot(app) -> dict:
    """Every row of every table (binary columns by their length), to compare before and after a request."""
    out = {}
    with app.extensions["survey_engine"].connect() as connection:
        for table in Base.metadata.sorted_tables:
            columns = [func.length(c) if isinstance(c.type, LargeBinary) else c for c in table.columns]
            query = select(*columns).order_by(*table.primary_key.columns)
            out[table.name] = [tuple(row) for row in connection.execute(query)]
        connection.rollback()
    return out


@pytest.fixture
def world(app, bundle_dir):
    """An admin (logged-in client and API token), a study with run 1 open, and a worker who has seen a task."""
    make_admin(app)
    study = new_study(app, bundle_dir)
    admin = app.test_client()
    login(admin)
    worker = app.test_client()
    join(worker, study, "W1")
    worker.get(f"/s/{study.slug}/task")
    return {"study": study, "admin": admin, "headers": api_token(admin), "worker": worker,
            "csrf": csrf_of(admin.get("/admin/").text)}


def refused(app, before, response, status=400, says=""):
    assert response.status_code == status, (response.status_code, response.text[:400])
    text = response.json["error"] if response.is_json else html.unescape(response.text)
    assert says in text, text[:400]
    assert snapshot(app) == before


def int_routes(app):
    return [rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule]


def test_ids_beyond_the_databases_integer_match_no_route(app, world):
    before = snapshot(app)
    routes = int_routes(app)
    assert len(routes) >= 12
    for number in (str(2**31), str(2**63), str(10**30), "9" * 5000):
        for rule in routes:
            path = rule.rule
            for name in rule.arguments:
                path = path.replace(f"<int:{name}>", number).replace(f"<{name}>", "open")
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                for headers in ({}, world["headers"]):
                    response = world["admin"].open(path, method=method, headers=headers,
                                                   data={"csrf_token": world["csrf"]})
                    assert response.status_code == 404, (method, path[:80], response.status_code)
    assert snapshot(app) == before


def test_numbers_in_json_beyond_the_database_are_refused(app, world, bundle_dir):
    before, headers, study = snapshot(app), world["headers"], world["study"]
    admin = world["admin"]
    for body in ({"name": "big", "bundle": str(bundle_dir), "open_runs": [2**31]},
                 {"name": "big", "bundle": str(bundle_dir), "settings": {"seed": 2**63}}):
        refused(app, before, admin.post("/api/v1/studies", headers=headers, json=body), says="beyond what the database")
    for raw, says in ((b'{"hit_size": 100000000000000000000}', "beyond what the database"),
                      (b'{"hit_size": -99999999999}', "beyond what the database"),
                      (b'{"skilled_min_accuracy": 1e999}', "too large"), (b'{"hit_size": NaN}', "NaN is not"),
                      (b'{"hit_size": Infinity}', "Infinity is not"),
                      (b'{"hit_size": 1' + b"0" * 5000 + b"}", "beyond")):
        refused(app, before, admin.patch(f"/api/v1/studies/{study.id}/settings", headers=headers, data=raw,
                                         content_type="application/json"), says=says)
    form = {"name": "big", "open_runs": "99999999999", "bundle_zip": (io.BytesIO(zipped(bundle_dir)), "b.zip")}
    refused(app, before, admin.post("/api/v1/studies", headers=headers, data=form, content_type="multipart/form-data"),
            says="between")


def test_control_characters_anywhere_in_a_request_are_refused(app, world):
    for char in ("\x00", "\x01", "\x1b", "\x7f"):
        control_character_refused_everywhere(app, world, char)


def control_character_refused_everywhere(app, world, char):
    before, study, admin, worker = snapshot(app), world["study"], world["admin"], world["worker"]
    basic = base64.b64encode(f"ada{char}:{PASSWORD}".encode()).decode()
    stranger = app.test_client()
    consent = csrf_of(stranger.get(f"/s/{study.slug}/").text)
    cases = [
        ("path", stranger.get(f"/s/{study.slug}{char}/")),
        ("path", stranger.get(f"/static/abc{char}.css")),
        ("path", worker.post(f"/s/{study.slug}{char}/answer", data={"assignment": "x", "choice": "y"})),
        ("query parameter", stranger.get(f"/s/{study.slug}/?workerId=W{char}2")),
        ("query parameter", admin.get(f"/api/v1/studies/{study.id}/answers?format=csv{char}",
                                      headers=world["headers"])),
        ("form field", stranger.post(f"/s/{study.slug}/consent",
                                     data={"csrf_token": consent, "worker_id": f"W{char}9", "consent": "yes"})),
        ("form field", stranger.post(f"/s/{study.slug}/consent",
                                     data={"csrf_token": consent, "worker_id": "W9", "consent": "yes", char: "x"})),
        ("form field", app.test_client().post("/admin/login", data={"username": f"ada{char}", "password": "x"})),
        ("form field", admin.post(f"/admin/studies/{study.id}/settings",
                                  data={"csrf_token": world["csrf"], "hit_size": f"7{char}"})),
        ("file name", admin.post("/api/v1/studies", headers=world["headers"], content_type="multipart/form-data",
                                 data={"name": "n", "bundle_zip": (io.BytesIO(b"PK"), f"b{char}.zip")})),
        ("header", stranger.get(f"/s/{study.slug}/", headers={"X-Note": f"a{char}b"})),
        ("authorization", stranger.post("/api/v1/token", headers={"Authorization": f"Basic {basic}"})),
        ("JSON string", admin.post("/api/v1/studies", headers=world["headers"],
                                   json={"name": f"n{char}", "bundle": "."})),
        ("JSON string", admin.patch(f"/api/v1/studies/{study.id}/settings", headers=world["headers"],
                                    json={f"hit{char}size": 3})),
    ]
    for where, response in cases:
        refused(app, before, response, says=f"U+{ord(char):04X}")
        assert where in (response.json["error"] if response.is_json else html.unescape(response.text))


def test_lone_surrogates_in_json_are_refused_and_tabs_and_line_breaks_are_text(app, world):
    before, admin, headers = snapshot(app), world["admin"], world["headers"]
    refused(app, before, admin.post("/api/v1/studies", headers=headers, data=b'{"name": "a\\ud800b", "bundle": "."}',
                                    content_type="application/json"), says="U+D800")
    fine = admin.post("/api/v1/studies", headers=headers, json={"name": "a\tb\r\nc", "bundle": "/nonexistent"})
    assert fine.status_code == 400 and "control character" not in fine.json["error"]


def test_deeply_nested_json_is_refused_by_its_depth(app, world):
    before, admin, headers, study = snapshot(app), world["admin"], world["headers"], world["study"]
    deep = b"[" * 100_000 + b"]" * 100_000
    for response in (
            admin.patch(f"/api/v1/studies/{study.id}/settings", headers=headers, data=deep,
                        content_type="application/json"),
            admin.post("/api/v1/studies", headers=headers, content_type="application/json",
                       data=b'{"name": "x", "settings": {"seed": ' + deep + b"}}"),
            admin.post("/api/v1/studies", headers=headers, content_type="multipart/form-data",
                       data={"name": "x", "settings": deep.decode(), "bundle_zip": (io.BytesIO(b"PK"), "b.zip")}),
            world["worker"].post(f"/s/{study.slug}/answer", data=deep, content_type="application/json")):
        refused(app, before, response, says="nests deeper than 32 levels")
    # brackets inside strings are text, not depth; 32 levels are fine
    assert admin.patch(f"/api/v1/studies/{study.id}/settings", headers=headers,
                       json={"hit_size": 5, "x": "[" * 1000}).json["error"].startswith("unknown setting")
    nested_32 = "[" * 31 + "]" * 31
    assert "nests" not in admin.patch(f"/api/v1/studies/{study.id}/settings", headers=headers,
                                      content_type="application/json",
                                      data='{"hit_size": ' + nested_32 + "}").json["error"]


def test_json_depth_counts_brackets_outside_strings_only():
    assert StrictJSON.loads("[" * 32 + "]" * 32) == json.loads("[" * 32 + "]" * 32)
    with pytest.raises(JSONRefused, match="deeper than 32"):
        StrictJSON.loads("[" * 33 + "]" * 33)
    text = json.dumps({"a": "[" * 100 + '\\"' + "{" * 100, "b": ["]]]", "\\"]})
    assert StrictJSON.loads(text) == json.loads(text)
    with pytest.raises(JSONRefused, match="deeper"):  # an unterminated string hides no brackets after it
        StrictJSON.loads("[" * 40 + '"abc')


CLEAN_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs")))
CLEAN_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | st.floats(allow_nan=False, allow_infinity=False)
    | CLEAN_TEXT, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(CLEAN_TEXT, inner, max_size=4),
    max_leaves=30)


@settings(max_examples=200, deadline=None)
@given(value=CLEAN_JSON)
def test_strict_json_reads_every_clean_document_as_json_does(value):
    text = json.dumps(value)
    assert StrictJSON.loads(text) == json.loads(text) and StrictJSON.loads(text.encode("utf-16")) == json.loads(text)


# --- zips ------------------------------------------------------------------------------------------------------

def stored_zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def patch_headers(data: bytes, flags: int = 0, method: int | None = None) -> bytes:
    """``data`` (a zip) with ``flags`` or-ed into, and ``method`` written over, every entry's local and central
    header: what a zip with encrypted entries or an exotic compression says of itself."""
    out = bytearray(data)
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = out.find(signature)
        while start != -1:
            (current,) = struct.unpack_from("<H", out, start + flag_at)
            struct.pack_into("<H", out, start + flag_at, current | flags)
            if method is not None:
                struct.pack_into("<H", out, start + flag_at + 2, method)
            start = out.find(signature, start + 4)
    return bytes(out)


def bad_crc(data: bytes) -> bytes:
    """``data`` (a stored zip) with one byte of the last entry's contents changed: its CRC no longer matches."""
    last = zipfile.ZipFile(io.BytesIO(data)).infolist()[-1]
    name_length, extra_length = struct.unpack_from("<HH", data, last.header_offset + 26)
    out = bytearray(data)
    out[last.header_offset + 30 + name_length + extra_length + 5] ^= 0xFF
    return bytes(out)


MANIFEST = json.dumps({"format": "mi-harness/bundle", "version": 1}).encode()
BAD_ZIPS = {
    "bad CRC": (bad_crc(stored_zip({"b/manifest.json": MANIFEST, "b/items/a.png": b"\x89PNG" + b"x" * 200})),
                "is damaged"),
    "encrypted": (patch_headers(stored_zip({"b/manifest.json": MANIFEST}), flags=0x1), "is encrypted"),
    "compression method 98 (PPMd)": (patch_headers(stored_zip({"b/manifest.json": MANIFEST}), method=98),
                                     "compression method 98"),
    "a file and a folder of one name": (stored_zip({"b/manifest.json": MANIFEST, "b/items": b"x",
                                                    "b/items/a.png": b"y"}), "both a file and a folder"),
    "a file and a folder entry of one name": (stored_zip({"b/manifest.json": MANIFEST, "b/items/": b"",
                                                          "b/items": b"y"}), "both a file and a folder"),
    "a path outside": (stored_zip({"../evil.json": MANIFEST}), "outside its folder"),
    "an absolute path": (stored_zip({"/etc/evil.json": MANIFEST}), "outside its folder"),
    "not a zip": (b"PK\x03\x04 not really", "not a zip file"),
}


def twice_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate, and writes it
        archive.writestr("b/manifest.json", MANIFEST)
        archive.writestr("b/manifest.json", MANIFEST)
    return buffer.getvalue()


BAD_ZIPS["the same name twice"] = (twice_zip(), "twice")


@pytest.mark.parametrize("kind", sorted(BAD_ZIPS))
def test_unpacking_a_damaged_or_hostile_zip_is_an_import_problem_naming_it(kind, tmp_path):
    data, says = BAD_ZIPS[kind]
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(ImportProblem, match=says):
        unpack_zip(data, work)
    assert [p.name for p in tmp_path.iterdir()] == ["work"]


def test_damaged_or_hostile_zips_are_refused_by_name_through_the_api_and_the_page(app, world):
    before = snapshot(app)
    for kind, (data, says) in BAD_ZIPS.items():
        api = world["admin"].post("/api/v1/studies", headers=world["headers"], content_type="multipart/form-data",
                                  data={"name": kind, "bundle_zip": (io.BytesIO(data), "b.zip")})
        refused(app, before, api, says=says)
        page = world["admin"].post("/admin/studies", content_type="multipart/form-data",
                                   data={"csrf_token": world["csrf"], "name": kind,
                                         "bundle_zip": (io.BytesIO(data), "b.zip")})
        refused(app, before, page, says=says)


SMALL_BUNDLE_ZIP = stored_zip({"b/manifest.json": MANIFEST, "b/items/a.png": b"\x89PNG\r\n" + bytes(range(256)),
                               "b/gallery/s1/1.png": b"\x89PNG\r\n" + b"z" * 300})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=st.lists(st.tuples(st.integers(0, len(SMALL_BUNDLE_ZIP) - 1), st.integers(0, 255)), min_size=1,
                      max_size=6),
       keep=st.just(len(SMALL_BUNDLE_ZIP)) | st.integers(1, len(SMALL_BUNDLE_ZIP)))
def test_any_corruption_of_a_zip_is_an_import_problem_or_a_clean_unpack(tmp_path_factory, edits, keep):
    """Bytes overwritten anywhere (headers, sizes, offsets, data), then cut after ``keep`` bytes."""
    data = bytearray(SMALL_BUNDLE_ZIP)
    for at, value in edits:
        data[at] = value
    work = tmp_path_factory.mktemp("unzip")
    try:
        folder = unpack_zip(bytes(data[:keep]), work)
    except ImportProblem:
        return
    assert folder.resolve().is_relative_to(work.resolve()) and (folder / "manifest.json").is_file()


# --- chunked bodies ---------------------------------------------------------------------------------------------

def chunks(data: bytes, size: int = 64 * 1024):
    for k in range(0, len(data), size):
        yield data[k:k + size]


def multipart(fields: dict[str, str], file: bytes, tail: bytes = b"") -> tuple[bytes, str]:
    boundary = "mi-harness-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="bundle_zip"; filename="b.zip"\r\n'
                 "Content-Type: application/zip\r\n\r\n".encode() + file + b"\r\n")
    if tail:
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="padding"\r\n\r\n'.encode() + tail
                     + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.slow
def test_a_chunked_body_past_the_limit_is_refused_whole_by_the_real_server(app, database, bundle_dir, monkeypatch):
    """gunicorn hands Werkzeug a chunked body as a terminated stream, which Werkzeug cut at the limit without a word:
    a form or an upload past the limit was read in part and stored. Now it is a 413, as with a Content-Length."""
    from survey_app.server import ServerProcess

    make_admin(app)
    study = new_study(app, bundle_dir)
    before = snapshot(app)
    upload = zipped(bundle_dir)
    monkeypatch.setenv("MI_SURVEY_MAX_UPLOAD_MB", str(1 + len(upload) // 2**20))
    limit = (1 + len(upload) // 2**20) * 2**20
    with ServerProcess(database, workers=1, threads=2) as server:
        basic = base64.b64encode(f"ada:{PASSWORD}".encode()).decode()
        token = requests.post(server.base + "/api/v1/token", headers={"Authorization": f"Basic {basic}"}).json()
        headers = {"Authorization": f"Bearer {token['token']}"}
        before = snapshot(app)
        settings_url = f"{server.base}/api/v1/studies/{study.id}/settings"
        big_json = json.dumps({"hit_size": 7, "pad": "x" * 300_000}).encode()
        response = requests.patch(settings_url, data=chunks(big_json), headers={
            **headers, "Content-Type": "application/json"})
        assert response.status_code == 413, response.text
        body, content_type = multipart({"name": "chunked"}, upload, tail=b"p" * (limit - len(upload) + 1000))
        response = requests.post(server.base + "/api/v1/studies", data=chunks(body),
                                 headers={**headers, "Content-Type": content_type})
        assert response.status_code == 413, response.text
        form = b"username=ada&password=" + b"x" * 300_000
        response = requests.post(server.base + "/admin/login", data=chunks(form),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 413, response.text
        assert snapshot(app) == before
        # within the limit, a chunked body is read whole
        response = requests.patch(settings_url, data=chunks(json.dumps({"hit_size": 7}).encode(), 3),
                                  headers={**headers, "Content-Type": "application/json"})
        assert response.status_code == 200 and response.json()["hit_size"] == 7
        body, content_type = multipart({"name": "chunked", "open_runs": "1"}, upload)
        response = requests.post(server.base + "/api/v1/studies", data=chunks(body),
                                 headers={**headers, "Content-Type": content_type})
        assert response.status_code == 201 and response.json()["items"] == 42, response.text
    with app.extensions["survey_db"]() as session:
        assert session.scalars(select(Study.name).order_by(Study.id)).all() == ["study", "chunked"]


# --- JSON types, the settings form, export formats --------------------------------------------------------------

def test_the_api_refuses_a_json_field_of_the_wrong_type_naming_it(app, world, bundle_dir):
    before, admin, headers = snapshot(app), world["admin"], world["headers"]
    bundle = str(bundle_dir)
    for body, says in (({"name": ["x"], "bundle": bundle}, "name must be a string, got a list"),
                       ({"name": 5, "bundle": bundle}, "name must be a string, got a whole number"),
                       ({"name": {"a": 1}, "bundle": bundle}, "name must be a string, got an object"),
                       ({"name": True, "bundle": bundle}, "name must be a string, got true or false"),
                       ({"name": "x", "bundle": [bundle]}, "bundle must be a path"),
                       ({"name": "x", "bundle": bundle, "settings": "runs=2"}, "settings must be an object"),
                       ({"name": "x", "bundle": bundle, "open_runs": {"1": 1}}, "open_runs must be a list"),
                       ({"name": "x", "bundle": bundle, "open_runs": [True]}, "open_runs"),
                       ({"name": "x", "bundle": bundle, "open_runs": [1.5]}, "open_runs"),
                       ({"name": "x", "bundle": bundle, "keep_unusable": "yes"}, "keep_unusable must be true or fa"),
                       ({"name": "x", "bundle": bundle, "keep_unusable": 1}, "keep_unusable must be true or false"),
                       ({"name": "x", "bundle": bundle, "where": ["a"]}, "where must be an object"),
                       ({"nmae": "x", "bundle": bundle}, "unknown field 'nmae'")):
        refused(app, before, admin.post("/api/v1/studies", headers=headers, json=body), says=says)
    for raw in (b'["x"]', b'"x"', b"3", b"null"):
        refused(app, before, admin.post("/api/v1/studies", headers=headers, data=raw, content_type="application/json"),
                says="must be a JSON object")
    study = world["study"]
    for body, says in (({"hit_size": [3]}, "hit_size must be a whole number, got a list"),
                       ({"hit_size": "10"}, "hit_size must be a whole number, got a string"),
                       ({"skilled_min_accuracy": "0.5"}, "skilled_min_accuracy must be a number, got a string"),
                       ({"allow_absent": 3}, "allow_absent must be true or false, got a whole number"),
                       ({"allow_absent": "yes"}, "allow_absent must be true or false, got a string"),
                       ({"hit_size": True}, "hit_size must be a whole number, got true or false"),
                       ({"filler_policy": ["random"]}, "filler_policy must be a string, got a list"),
                       ({"seed": None}, "seed must be")):
        refused(app, before, admin.patch(f"/api/v1/studies/{study.id}/settings", headers=headers, json=body),
                says=says)
    refused(app, before, admin.post("/api/v1/studies", headers=headers,
                                    json={"name": "x", "bundle": bundle, "settings": {"runs": "2"}}),
            says="runs must be a whole number, got a string")
    assert admin.patch(f"/api/v1/studies/{study.id}/settings", headers=headers,
                       json={"skilled_min_accuracy": 1}).json["skilled_min_accuracy"] == 1.0  # 1 is a number


def test_the_settings_form_refuses_a_fixed_setting_by_name_and_saves_nothing(app, world, db):
    before, admin, study = snapshot(app), world["admin"], world["study"]
    form = {"csrf_token": world["csrf"], "hit_size": "7", "allow_absent": "on"}
    for extra, says in (({"runs": "5"}, "runs decides the lineups"), ({"seed": "9"}, "seed decides the lineups"),
                        ({"target_share": "0.5"}, "target_share decides"), ({"bogus": "1"}, "unknown setting 'bogus'"),
                        ({"allow_absent": "perhaps"}, "allow_absent must be true or false")):
        refused(app, before, admin.post(f"/admin/studies/{study.id}/settings", data={**form, **extra}), says=says)
    saved = admin.post(f"/admin/studies/{study.id}/settings", data={**form, "runs": "3"}, follow_redirects=True)
    assert saved.status_code == 200 and "settings saved" in saved.text
    assert db.get(Study, study.id).settings["hit_size"] == 7


def test_answers_in_an_unknown_format_are_a_400_naming_the_formats(app, world):
    admin, headers, study = world["admin"], world["headers"], world["study"]
    response = admin.get(f"/api/v1/studies/{study.id}/answers?format=xml", headers=headers)
    assert response.status_code == 400 and "json or csv" in response.json["error"] and "'xml'" in response.json["error"]
    assert admin.get(f"/api/v1/studies/{study.id}/answers?format=csv", headers=headers).mimetype == "text/csv"
    assert admin.get(f"/api/v1/studies/{study.id}/answers", headers=headers).is_json
    assert admin.get(f"/admin/studies/{study.id}/answers.xml").status_code == 404


def test_a_name_longer_than_the_column_is_refused_before_the_database(app, world, bundle_dir):
    before = snapshot(app)
    refused(app, before, world["admin"].post("/api/v1/studies", headers=world["headers"],
                                             json={"name": "n" * 500, "bundle": str(bundle_dir)}), says="1 to 120")

