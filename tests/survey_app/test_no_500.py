"""No request produces a 500: every route, every method, with junk bodies, as a stranger, a worker and an admin."""
import pytest

from .conftest import join, new_study
from .test_admin import api_token, login, make_admin

JUNK = [None, {"choice": "x", "assignment": "y", "csrf_token": "z"}, {"name": "\x00" * 10, "bundle": "../../etc"}]


@pytest.mark.parametrize("who", ["stranger", "worker", "admin"])
def test_every_route_answers_junk_with_less_than_500(app, bundle_dir, who):
    make_admin(app)
    study = new_study(app, bundle_dir)
    client = app.test_client()
    headers = {}
    if who == "worker":
        join(client, study, "W1")
        client.get(f"/s/{study.slug}/task")
    elif who == "admin":
        login(client)
        headers = api_token(client)
    values = {"slug": study.slug, "study_id": study.id, "number": 1, "worker_id": 1, "action": "open",
              "fmt": "csv", "token": "A" * 22, "filename": "style.css"}
    checked = 0
    for rule in app.url_map.iter_rules():
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<int:{name}>", str(values[name])).replace(f"<{name}>", str(values[name]))
            path = path.replace(f"<path:{name}>", str(values[name]))
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            for body in JUNK:
                kwargs = {"data": body} if body is not None else {"data": b"\xff\xfe{not json",
                                                                   "content_type": "application/json"}
                response = client.open(path, method=method, headers=headers, **kwargs)
                assert response.status_code < 500, (method, path, body, response.status_code, response.text[:300])
                checked += 1
    assert checked > 200
