"""The survey's commands, through the real `mi-harness` entry point."""
import csv
import io
import json

import requests
from click.testing import CliRunner

from mi_harness.cli import main
from survey_app.server import ServerProcess as Server

from .conftest import csrf_of, task_form


def run(*args, env=None):
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result


def test_database_admin_and_study_commands(tmp_path, bundle_dir):
    url = f"sqlite:///{tmp_path / 'sub' / 'survey.db'}"
    refused = run("study", "list", "--database", url)
    assert refused.exit_code == 1 and "mi-harness db upgrade" in refused.output
    assert run("serve", "--database", url).exit_code == 1  # refuses before starting any server
    upgraded = run("db", "upgrade", "--database", url)
    from survey_app.migrate import head

    assert upgraded.exit_code == 0 and f"revision {head()}" in upgraded.output
    assert f"database: {head()}; code: {head()}" in run("db", "current", "--database", url).output
    made = run("admin", "create", "ada", "--database", url, env={"MI_SURVEY_ADMIN_PASSWORD": "long enough pw"})
    assert made.exit_code == 0, made.output
    short = run("admin", "create", "bob", "--database", url, env={"MI_SURVEY_ADMIN_PASSWORD": "short"})
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    created = run("study", "create", "--database", url, "--name", "cli", "--bundle", str(bundle_dir),
                  "--set", "runs=2", "--set", "hit_size=3", "--open-run", "1")
    assert created.exit_code == 0, created.output
    info = json.loads(created.stdout)
    assert info["items"] == 42 and info["link"].startswith("/s/")
    bad = run("study", "create", "--database", url, "--name", "bad", "--bundle", str(bundle_dir), "--set", "runs")
    assert bad.exit_code == 2 and "KEY=VALUE" in bad.output
    listed = run("study", "list", "--database", url).stdout
    assert "cli" in listed and "run 1 open 0/210" in listed and "run 2 pending" in listed
    assert "run 2 of 'cli' is open" in run("study", "run", "--database", url, str(info["id"]), "2", "open").output
    assert run("study", "run", "--database", url, "99", "1", "open").exit_code == 1

    server = Server(url, workers=1, threads=2)  # answer one lineup through the real server, then export it
    try:
        session = requests.Session()
        page = session.get(server.base + info["link"] + "?workerId=CLI1")
        session.post(server.base + info["link"] + "consent",
                     data={"csrf_token": csrf_of(page.text), "worker_id": "CLI1", "consent": "yes"})
        csrf, token, choices = task_form(session.get(server.base + info["link"] + "task").text)
        assert session.post(server.base + info["link"] + "answer",
                            data={"csrf_token": csrf, "assignment": token, "choice": "absent"}).status_code == 200
    finally:
        server.stop()
    exported = run("study", "export", "--database", url, str(info["id"]))
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == 1 and rows[0]["worker"] == "CLI1" and rows[0]["choice"] == "absent"
    assert rows[0]["correct"] == str(rows[0]["target_present"] == "False")
    out = tmp_path / "answers.json"
    run("study", "export", "--database", url, str(info["id"]), "--format", "json", "--out", str(out))
    assert json.loads(out.read_text())[0]["item"] == rows[0]["item"]
