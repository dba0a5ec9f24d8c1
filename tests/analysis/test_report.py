"""`mi-harness analyze` on a study built and answered by the test, checked against the database."""
import csv
import json
import re

import pandas as pd
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from analysis.report import answer_source, write_report
from mi_harness.cli import main
from tests.analysis.synthetic import synthetic_study
from tests.survey_app.conftest import answer_lineups, new_study


def test_the_report_matches_the_database(app, database, tmp_path, bundle_dir):
    if not database.startswith("sqlite"):
        return  # the loader's PostgreSQL path is covered in test_load; one report is enough
    study = new_study(app, bundle_dir, name="reported", open_runs=(1, 2, 3), hit_size=42, answers_per_item=2,
                      multiple_runs_per_worker=True, skilled_min_tasks=5, skilled_min_accuracy=0.3)
    # a worker who always takes face 1, through all three runs, and a careless one with two answers
    answer_lineups(app, study, "steady", 3 * 42, lambda k, c: c[0])
    answer_lineups(app, study, "careless", 2, lambda k, c: "absent")
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["analyze", "reported", "--database", database, "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "Wilson score" in page and "skilled: at least 5" in page and "data:image/png;base64" in page
    assert "crossed random intercepts for worker and item" in page
    engine = create_engine(database)
    with engine.connect() as connection:
        total, correct = connection.execute(text(
            "SELECT count(*), sum(CASE WHEN correct THEN 1 ELSE 0 END) FROM answer")).one()
        present = connection.execute(text(
            "SELECT count(*) FROM answer a JOIN lineup l ON l.id = a.lineup_id WHERE l.target_present")).scalar()
    engine.dispose()
    rows = list(csv.DictReader(open(out / "tables" / "accuracy_all.csv")))
    assert sum(int(r["answers"]) for r in rows) == total == 3 * 42 + 2
    assert sum(int(r["correct"]) for r in rows) == correct
    assert sum(int(r["present"]) for r in rows) == present
    by_run = list(csv.DictReader(open(out / "tables" / "accuracy_all_by_model_run.csv")))
    assert sorted({r["run"] for r in by_run}) == ["1", "2", "3"]
    kappa = json.loads((out / "tables" / "kappa.json").read_text())
    assert kappa["all"]["kappa"] is not None and kappa["all"]["runs"] == 3
    assert (out / "figures" / "accuracy_per_condition.svg").is_file()
    for row in rows:  # the mixed model's interval leads, the naive one beside it
        assert 0 <= float(row["ci_low"]) <= float(row["ci_high"]) <= 1
        assert 0 <= float(row["naive_low"]) <= float(row["naive_high"]) <= 1
    assert page.index("<h2>Findings</h2>") < page.index("<h2>Settings and methods</h2>")
    assert "These answers came from people." in page and "simulated panel" not in page.split("<h2>")[1]
    assert (out / "figures" / "accuracy_against_rounding.png").is_file()  # none vs round:0.01 in the test bundle
    assert (out / "figures" / "reconstruction_gallery.png").is_file()
    # the deep judge answers the study's lineups by default, so people stand beside it without --machine
    assert (out / "figures" / "people_against_machine.png").is_file()
    assert page.count("data:image/png;base64") == 4


def test_empty_and_tiny_studies_get_a_message_not_a_crash(app, database, tmp_path, bundle_dir):
    study = new_study(app, bundle_dir, name="quiet")
    empty = CliRunner().invoke(main, ["analyze", "quiet", "--database", database, "--out", str(tmp_path / "a")])
    assert empty.exit_code == 1 and "has no answers yet" in empty.output
    answer_lineups(app, study, "only", 3, lambda k, c: c[1])
    tiny = CliRunner().invoke(main, ["analyze", "quiet", "--database", database, "--out", str(tmp_path / "b")])
    assert tiny.exit_code == 0, tiny.output
    page = (tmp_path / "b" / "report.html").read_text()
    words = re.sub(r"data:image/png;base64,[^\"]+", "", page)
    assert "too few to conclude anything" in words and ">nan<" not in words.lower()
    missing = CliRunner().invoke(main, ["analyze", "nope", "--database", database, "--out", str(tmp_path / "c")])
    assert missing.exit_code == 1 and "no study named 'nope'" in missing.output
    both = CliRunner().invoke(main, ["analyze", "quiet", "--out", str(tmp_path / "d")])
    assert both.exit_code == 2 and "--database" in both.output


def test_a_report_of_the_simulated_panel_says_so_first_and_shows_every_section(tmp_path):
    study = synthetic_study(items=10, answers_per_item=6, workers=30, seed=1)
    study["worker"] = study["worker"].str.replace("w", "bot2-7001-", regex=False)  # the panel's worker ids
    page = write_report(study, tmp_path, "synthetic", {"filler_policy": "matched"}, bootstrap=100).read_text()
    first = page.split("<h2>")[0]
    assert "simulated panel" in first and "not people" in first
    findings = page.split("<h2>Findings</h2>")[1].split("<h2>")[0]
    assert "workers (bots of the simulated panel, not people)" in findings and "control items" in findings
    for heading in ("Confidence", "Accuracy by the target photo's role", "Lineup fairness (control items)"):
        assert f"<h2>{heading}</h2>" in page
    assert (tmp_path / "figures" / "roc.png").is_file() and (tmp_path / "figures" / "confidence_accuracy.png").is_file()
    findings_table = pd.read_csv(tmp_path / "tables" / "findings.csv")
    assert {"ci_low", "ci_high", "control_target_picked", "skilled_accuracy"} <= set(findings_table.columns)
    assert len(findings_table) == 5
    mixed = study.assign(worker=study["worker"].where(study.index % 2 == 0, "A"))
    assert answer_source(mixed) == "mixed" and answer_source(study) == "simulated"
