"""More than one server (issue 11, item 6): two `mi-harness serve` nodes on loopback ports behind nginx (Debian's
package, run unprivileged from its own prefix in a temporary folder) on one PostgreSQL database. A simulated panel
takes a study through the proxy; one node is killed with SIGKILL mid-run; every answer the server acknowledged
(the 303 after the answer form) is stored exactly once, and the panel sees no error.

nginx may send a request on to the other node when the first fails, the answer form (a POST) included
(``proxy_next_upstream ... non_idempotent``): that is safe because the survey stores a resent answer once.
The simulated panel is not people; this measures the servers, not recognition.
"""
from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from survey_app.server import ServerProcess, free_port
from survey_app.simulate import Bot, personas
from tests.survey_app.conftest import POSTGRES, make_bundle, new_study, postgres_schema_url

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_CONF = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{ worker_connections 512; }}
http {{
    log_format upstream '$request_method|$uri|$status|$upstream_addr|$upstream_status';
    access_log {prefix}/access.log upstream;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    client_max_body_size 200m;
    upstream survey {{
        server 127.0.0.1:{port_a} max_fails=1 fail_timeout=60s;
        server 127.0.0.1:{port_b} max_fails=1 fail_timeout=60s;
        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://survey;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""
"""The deployment README's "Deploying a crowd study" describes, with the paths of a temporary prefix."""


class Nginx:
    """nginx in the foreground from its own prefix and config, as an unprivileged user (nobody, when the tests run
    as root), in front of ``upstreams`` (ports); stopped with the test."""

    def __init__(self, port_a: int, port_b: int) -> None:
        self.prefix = Path(tempfile.mkdtemp(prefix="mi-nginx-"))
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        conf = self.prefix / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=self.prefix, port=self.port, port_a=port_a, port_b=port_b))
        user = None
        if os.geteuid() == 0:
            user = "nobody"
            nobody = pwd.getpwnam(user)
            os.chown(self.prefix, nobody.pw_uid, nobody.pw_gid)
        self.process = subprocess.Popen([NGINX, "-p", str(self.prefix), "-c", str(conf), "-e",
                                         str(self.prefix / "error.log")], user=user,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        for _ in range(100):
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.errors()}")
            try:
                if requests.get(self.base + "/hello", timeout=1).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer: {self.errors()}")

    def errors(self) -> str:
        path = self.prefix / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def access(self) -> list[list[str]]:
        """(method, path, status, the nodes tried ("A, B" when nginx went on to B), their statuses) per request."""
        return [line.split("|") for line in (self.prefix / "access.log").read_text().splitlines()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        shutil.rmtree(self.prefix, ignore_errors=True)


def kill_node(server: ServerProcess) -> None:
    """SIGKILL the node's gunicorn master and its workers at once, as when its machine dies."""
    pid = server.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for process in [pid, *map(int, children)]:
        os.kill(process, signal.SIGKILL)
    server.process.wait()


@pytest.fixture
def postgres_database(tmp_path):
    from survey_app.migrate import upgrade

    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    url = postgres_schema_url(schema)
    upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


class CountingBot(Bot):
    """A bot that notes each answer the server acknowledged: the 303 to the next task after its answer form."""

    def __init__(self, *args, acknowledged: list, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.acknowledged = acknowledged

    def _post(self, path: str, data: dict) -> requests.Response:
        response = super()._post(path, data)
        if path.endswith("/answer") and response.history and response.history[0].status_code == 303:
            self.acknowledged.append((data["assignment"], data["choice"]))
        return response


def test_behind_a_proxy_the_links_the_server_writes_have_the_clients_scheme(faces, tmp_path):
    """With MI_SURVEY_PROXY_HOPS=1 the admin page's worker link says https when nginx received https; without it,
    X-Forwarded-* headers are not trusted (anyone could send them)."""
    from survey_app import create_app
    from survey_app.migrate import upgrade
    from tests.survey_app.conftest import csrf_of
    from tests.survey_app.test_admin import PASSWORD, make_admin

    url = f"sqlite:///{tmp_path / 'survey.db'}"
    upgrade(url)
    bundle = make_bundle(faces, tmp_path / "bundle")
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9", "Host": "survey.example"}
    for hops, scheme in ((1, "https"), (0, "http")):
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "k", "PROXY_HOPS": hops})
        if hops:
            make_admin(app)
            study = new_study(app, bundle, open_runs=())
        client = app.test_client()
        csrf = csrf_of(client.get("/admin/login", headers=forwarded).text)
        assert client.post("/admin/login", headers=forwarded, data={"csrf_token": csrf, "username": "ada",
                                                                    "password": PASSWORD}).status_code == 303
        page = client.get(f"/admin/studies/{study.id}", headers=forwarded).text
        assert f"<code>{scheme}://survey.example/s/{study.slug}/</code>" in page


@pytest.mark.slow
@pytest.mark.skipif(not Path(NGINX).exists(), reason="nginx is not installed (Debian: apt-get install nginx)")
def test_a_panel_through_nginx_survives_a_node_killed_mid_run(faces, tmp_path, postgres_database, monkeypatch):
    from survey_app import create_app

    app = create_app({"DATABASE_URL": postgres_database})
    study = new_study(app, make_bundle(faces, tmp_path / "bundle"), runs=1, open_runs=(1,), answers_per_item=3,
                      hit_size=6)
    needed = 42 * 3
    monkeypatch.setenv("MI_SURVEY_PROXY_HOPS", "1")  # as README's recipe says
    node_a = ServerProcess(postgres_database, workers=2, threads=4)
    node_b = ServerProcess(postgres_database, workers=2, threads=4)
    proxy = Nginx(node_a.port, node_b.port)
    acknowledged: list[tuple[str, str]] = []
    killed_at: list[int] = []

    def kill_a_third_of_the_way() -> None:
        while len(acknowledged) < needed // 3:
            time.sleep(0.01)
        kill_node(node_a)
        killed_at.append(len(acknowledged))

    try:
        killer = threading.Thread(target=kill_a_third_of_the_way, daemon=True)
        killer.start()
        panel = personas(30, seed=11)
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda p: CountingBot(proxy.base, study.slug, p, 2,
                                                          acknowledged=acknowledged).run(), panel))
        killer.join(timeout=5)
        routed = proxy.access()
    finally:
        proxy.stop()
        node_a.stop()
        log_b = node_b.stop()
    assert killed_at and 0 < killed_at[0] < len(acknowledged), "the node was not killed mid-run"
    assert not [r.error for r in results if r.error]
    assert "Traceback" not in log_b
    served = {addr for *_, tried, _ in routed for addr in tried.split(", ")}
    assert served == {f"127.0.0.1:{node_a.port}", f"127.0.0.1:{node_b.port}"}, "both nodes served the panel"

    engine = create_engine(postgres_database)
    with engine.connect() as connection:
        stored = connection.execute(text(
            "SELECT s.token FROM answer a JOIN assignment s ON s.id = a.assignment_id")).scalars().all()
        duplicates = connection.execute(text(
            "SELECT count(*) FROM (SELECT run_id, worker_id, lineup_id FROM answer GROUP BY 1, 2, 3 "
            "HAVING count(*) > 1) d")).scalar()
    engine.dispose()
    tokens = [token for token, _choice in acknowledged]
    assert len(set(tokens)) == len(tokens), "a task's answer was acknowledged twice"
    times_stored = Counter(stored)
    assert [token for token in tokens if times_stored[token] != 1] == [], "an acknowledged answer was lost or stored " \
        "twice"
    assert duplicates == 0 and len(stored) == len(acknowledged) == needed
    retried = [line for line in routed if "," in line[3]]  # nginx tried A, then B: "A, B"
    print(f"two nodes: {len(acknowledged)} answers acknowledged, {len(stored)} stored, {duplicates} duplicates; "
          f"node A killed after {killed_at[0]}; nginx sent {len(retried)} requests on to the other node: "
          f"{sorted(line[0] + ' ' + line[1].rsplit('/', 1)[-1] for line in retried)}")
