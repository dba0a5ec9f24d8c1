"""`mi-harness demo`, reduced, from an empty directory: the report's numbers against the database, a re-run
that redoes nothing, and an interrupted run that resumes without losing or doubling an answer."""
import csv
import json
import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from survey_app.server import mi_harness_command

pytestmark = pytest.mark.slow

# softmax: 8 white-box items, 2 x 2 black-box ones and 2 deblurring ones; the MLP of the faces setting: 8 white-box
# items; 22 items, 2 answers each per run; screening leaves out the ones no person could use (the study records which)
REDUCED = ["--models", "softmax", "--smooth-models", "", "--face-models", "mlp", "--dp", "", "--gold-items", "0",
           "--labels", "1-8",
           "--blackbox-models", "softmax", "--blackbox-labels", "1,2", "--rounding", "none,round:0.05",
           "--query-budget", "2000", "--deblur-labels", "1,2", "--answers-per-item", "2"]
BUNDLE_ITEMS, ANSWERS_PER_ITEM, RUNS = 22, 2, 3


def demo_command(tmp_path: Path) -> list[str]:
    return [*mi_harness_command(), "demo", "--work", str(tmp_path / "work"), "--models-dir",
            str(tmp_path / "models"), *REDUCED]


def run_demo(tmp_path: Path, faces_dir: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(demo_command(tmp_path), cwd=tmp_path, env={**os.environ, "MI_FACES_DIR": str(faces_dir)},
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    return result


def database(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{tmp_path / 'work' / 'survey.db'}?mode=ro", uri=True)


def answers_by_group(connection) -> dict[tuple, tuple[int, int]]:
    rows = connection.execute(
        "SELECT i.model, i.attack, i.countermeasure, coalesce(json_extract(i.params, '$.blur'), ''), count(*), "
        "sum(a.correct) FROM answer a JOIN lineup l ON l.id = a.lineup_id JOIN item i ON i.id = l.item_id "
        "WHERE NOT i.is_control GROUP BY 1, 2, 3, 4").fetchall()
    return {tuple(r[:4]): (r[4], r[5]) for r in rows}


def screening(tmp_path: Path) -> dict:
    with database(tmp_path) as connection:
        return json.loads(connection.execute("SELECT settings FROM study").fetchone()[0])["screening"]


def expected_answers(tmp_path: Path) -> int:
    """Every item the study kept, answered ANSWERS_PER_ITEM times in each run."""
    record = screening(tmp_path)
    assert record["items"] == BUNDLE_ITEMS and not record["kept_unusable"]
    with database(tmp_path) as connection:
        kept = connection.execute("SELECT count(*) FROM item WHERE NOT is_gold AND NOT is_control").fetchone()[0]
        controls = connection.execute("SELECT count(*) FROM item WHERE is_control").fetchone()[0]
    assert kept == BUNDLE_ITEMS - record["left_out"] > 0
    assert controls == min(10, BUNDLE_ITEMS // 4)  # the demo's small control condition (mock witnesses)
    return (kept + controls) * ANSWERS_PER_ITEM * RUNS


def check_complete(tmp_path: Path) -> None:
    answers = expected_answers(tmp_path)
    with database(tmp_path) as connection:
        total = connection.execute("SELECT count(*) FROM answer").fetchone()[0]
        doubled = connection.execute("SELECT count(*) FROM (SELECT run_id, worker_id, lineup_id FROM answer "
                                     "GROUP BY 1, 2, 3 HAVING count(*) > 1)").fetchone()[0]
        per_run = dict(connection.execute("SELECT r.number, count(*) FROM answer a JOIN run r ON r.id = a.run_id "
                                          "GROUP BY 1").fetchall())
    assert total == answers and doubled == 0 and per_run == {run: answers // RUNS for run in range(1, RUNS + 1)}
    with database(tmp_path) as connection:  # the bots rate their confidence on the demo's 5-point scale
        assert connection.execute("SELECT min(confidence), max(confidence), count(confidence) = count(*) "
                                  "FROM answer").fetchone() == (1, 5, 1)


def test_the_demo_from_an_empty_directory(tmp_path, faces_dir):
    first = run_demo(tmp_path, faces_dir)
    work = tmp_path / "work"
    report = work / "report" / "report.html"
    assert f"report: {report}" in first.stdout and report.is_file()
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["mlp-faces.pt", "softmax.pt"]
    check_complete(tmp_path)

    with database(tmp_path) as connection:
        expected = answers_by_group(connection)
        workers = {w for (w,) in connection.execute(
            "SELECT DISTINCT w.external_id FROM worker w JOIN answer a ON a.worker_id = w.id")}
    table = list(csv.DictReader(open(work / "report" / "tables" / "accuracy_all.csv")))
    assert {(r["model"], r["attack"], r["countermeasure"], r["blur"]): (int(r["answers"]), int(r["correct"]))
            for r in table} == expected
    conditions = {("softmax", "mi-face", "none", ""), ("mlp-faces", "mi-face+faces", "none", ""),
                  ("softmax", "mi-face-blackbox", "none", ""),
                  ("softmax", "mi-face-blackbox", "round:0.05", ""), ("softmax", "deblur", "none", "gaussian:8")}
    left_out = {(r["model"], r["attack"], r["countermeasure"], r["blur"]) for r in screening(tmp_path)["by_condition"]
                if r["left_out"] == r["items"]}
    # softmax's white-box templates, the faces setting's MLP reconstructions and the deblurred photos are faces:
    # screening must keep every one of them
    assert set(expected) == conditions - left_out
    faces = {("softmax", "mi-face"), ("mlp-faces", "mi-face+faces"), ("softmax", "deblur")}
    assert faces <= {condition[:2] for condition in expected}
    kept = {(r["model"], r["attack"]): r["left_out"] for r in screening(tmp_path)["by_condition"]}
    assert all(kept[condition] == 0 for condition in faces)
    machine = {(r["attack"], r["countermeasure"]): r for r in
               csv.DictReader(open(work / "report" / "tables" / "people_and_machine.csv"))}
    assert machine[("mi-face", "none")]["machine_items"] == "8" and machine[("deblur", "none")]["machine_items"] == "2"
    assert float(machine[("mi-face", "none")]["top1_pixel"]) == 1.0  # softmax white-box: every face named
    panel = list(csv.DictReader(open(work / "panel.csv")))
    assert {r["worker"] for r in panel if int(r["answers"])} == workers
    assert {r["profile"] for r in panel} >= {"attentive"}
    page = report.read_text()
    # accuracy per model, the machine judges beside people and the photo-beside-reconstruction figure (the
    # rounding figure only where screening kept a rounded condition)
    assert "People and the machine judges" in page and page.count("data:image/png;base64") >= 3
    assert (work / "report" / "figures" / "people_against_machine.png").is_file()

    state = json.loads((work / "state.json").read_text())
    assert {"train:softmax", "train:mlp-faces", "evaluate", "study", "panel", "report"} <= set(state["done"])
    assert sum(k.startswith("attack:") for k in state["done"]) == 5
    again = run_demo(tmp_path, faces_dir)
    assert again.stderr.count("done before, skipped") == 7  # five attacks, the evaluator, the study
    assert "reusing" in again.stderr and "every run has its answers" in again.stderr
    check_complete(tmp_path)


def test_an_interrupted_demo_resumes_without_losing_or_doubling_answers(tmp_path, faces_dir):
    env = {**os.environ, "MI_FACES_DIR": str(faces_dir)}
    # Ctrl-C's default action in the demo, even where the test runs as a background job (whose children a shell
    # starts with SIGINT ignored, and Python then never turns it into KeyboardInterrupt)
    process = subprocess.Popen(demo_command(tmp_path), cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    db = tmp_path / "work" / "survey.db"
    deadline = time.monotonic() + 600
    answered = 0
    while time.monotonic() < deadline and process.poll() is None:
        if db.exists():
            try:
                with database(tmp_path) as connection:
                    answered = connection.execute("SELECT count(*) FROM answer").fetchone()[0]
            except sqlite3.OperationalError:  # the study's tables are not there yet
                answered = 0
            if answered >= 10:
                break
        time.sleep(0.05)
    assert process.poll() is None, "the demo finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=120)
    assert process.returncode != 0, out
    with database(tmp_path) as connection:
        interrupted = connection.execute("SELECT count(*) FROM answer").fetchone()[0]
    assert 10 <= interrupted < expected_answers(tmp_path)
    state = json.loads((tmp_path / "work" / "state.json").read_text())
    assert "panel" not in state["done"] and state["panel_round_size"] > 0

    resumed = run_demo(tmp_path, faces_dir)
    assert "done before, skipped" in resumed.stderr and "round 1:" in resumed.stderr
    check_complete(tmp_path)
    with database(tmp_path) as connection:
        open_hits = connection.execute("SELECT count(*) FROM hit WHERE completed_at IS NULL").fetchone()[0]
        hits_per_worker = Counter(w for (w,) in connection.execute("SELECT worker_id FROM hit"))
    assert open_hits == 0  # the interrupted bots came back and finished the HITs they held
    assert max(hits_per_worker.values()) <= 3
