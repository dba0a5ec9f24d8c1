"""The machine evaluator's CSV beside the people's accuracy."""
import csv

import pandas as pd
import pytest
from click.testing import CliRunner

from analysis.load import AnswersError
from analysis.machine import read_machine_scores, screening_table, side_by_side
from mi_harness.cli import main
from tests.survey_app.conftest import answer_lineups, new_study

HEADER = "model,attack,countermeasure,blur,n,top1_pixel,top5_pixel,top1_eigen,top5_eigen,ssim,confidence\n"


def test_the_evaluators_csv_is_read_and_a_wrong_file_named(tmp_path):
    good = tmp_path / "machine.csv"
    good.write_text(HEADER + "softmax,mi-face,none,-,40,1.0,1.0,0.95,1.0,0.39,0.99\n"
                    "softmax,deblur,none,gaussian:8,10,0.9,1.0,0.8,1.0,0.5,\n")
    table = read_machine_scores(good)
    assert list(table["blur"]) == ["", "gaussian:8"] and table["top1_eigen"].tolist() == [0.95, 0.8]
    with pytest.raises(AnswersError, match="no machine evaluation at"):
        read_machine_scores(tmp_path / "absent.csv")
    wrong = tmp_path / "wrong.csv"
    wrong.write_text("model,attack,countermeasure,n\nsoftmax,mi-face,none,40\n")
    with pytest.raises(AnswersError, match="no column top1_pixel"):
        read_machine_scores(wrong)


def test_people_and_machine_are_joined_group_by_group():
    people = pd.DataFrame([
        {"model": "softmax", "attack": "mi-face", "countermeasure": "none", "blur": "", "answers": 50,
         "accuracy": 0.8, "ci_low": 0.67, "ci_high": 0.89, "hit_rate": 0.85, "hit_ci_low": 0.7, "hit_ci_high": 0.93},
        {"model": "mlp", "attack": "mi-face", "countermeasure": "none", "blur": "", "answers": 50,
         "accuracy": 0.4, "ci_low": 0.28, "ci_high": 0.54, "hit_rate": 0.45, "hit_ci_low": 0.3, "hit_ci_high": 0.6}])
    skilled = people.iloc[[0]].assign(answers=20, accuracy=0.9, hit_rate=0.95)
    machine = pd.DataFrame([
        {"model": "softmax", "attack": "mi-face", "countermeasure": "none", "blur": "", "n": 40, "top1_pixel": 1.0,
         "top5_pixel": 1.0, "top1_eigen": 0.95, "top5_eigen": 1.0, "ssim": 0.4},
        {"model": "dae", "attack": "mi-face", "countermeasure": "none", "blur": "", "n": 40, "top1_pixel": 0.9,
         "top5_pixel": 1.0, "top1_eigen": 0.9, "top5_eigen": 1.0, "ssim": 0.3}])
    table = side_by_side(people, skilled, machine).set_index("model")
    assert list(table.index) == ["softmax", "mlp"]  # the DAE was evaluated but never shown to people
    assert table.loc["softmax", "skilled_accuracy"] == 0.9 and table.loc["softmax", "top1_eigen"] == 0.95
    assert table.loc["softmax", "machine_items"] == 40 and table.loc["softmax", "accuracy"] == 0.8
    assert pd.isna(table.loc["mlp", "top1_eigen"]) and pd.isna(table.loc["mlp", "skilled_accuracy"])


def test_the_report_puts_the_machine_beside_the_people(app, database, bundle_dir, tmp_path):
    if not database.startswith("sqlite"):
        return  # the join does not depend on the database
    study = new_study(app, bundle_dir, name="both", hit_size=42)
    answer_lineups(app, study, "w1", 42, lambda k, c: c[k % 5])
    machine = tmp_path / "machine.csv"
    machine.write_text(HEADER + "softmax,mi-face,none,-,10,1.0,1.0,0.9,1.0,0.4,0.99\n")
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["analyze", "both", "--database", database, "--out", str(out),
                                       "--machine", str(machine)])
    assert result.exit_code == 0, result.output
    rows = {(r["model"], r["countermeasure"], r["attack"]): r
            for r in csv.DictReader(open(out / "tables" / "people_and_machine.csv"))}
    assert rows[("softmax", "none", "mi-face")]["top1_eigen"] == "0.9"
    assert rows[("mlp", "none", "mi-face")]["top1_eigen"] == ""
    accuracy = {(r["model"], r["countermeasure"], r["attack"]): r["accuracy"]
                for r in csv.DictReader(open(out / "tables" / "accuracy_all.csv"))}
    assert rows[("softmax", "none", "mi-face")]["accuracy"] == accuracy[("softmax", "none", "mi-face")]
    page = (out / "report.html").read_text()
    assert "People and the machine judges" in page and "a face recogniser would name them" in page
    assert (out / "figures" / "people_against_machine.svg").is_file()
    screening = list(csv.DictReader(open(out / "tables" / "screening.csv")))  # the study's record, shown
    assert sum(int(r["items"]) for r in screening) == 42 and "Screening found 0 of 42" in page
    # the deep judge answered the study's own 42 lineups; its per-group accuracy is the mean of its answers
    answers = list(csv.DictReader(open(out / "tables" / "deep_lineup_answers.csv")))
    assert len(answers) == 42 and {a["choice"] for a in answers} <= {"1", "2", "3", "4", "5", "absent"}
    softmax = [a for a in answers if (a["model"], a["countermeasure"], a["attack"]) == ("softmax", "none", "mi-face")]
    assert float(rows[("softmax", "none", "mi-face")]["deep_lineup_accuracy"]) == pytest.approx(
        sum(a["correct"] == "True" for a in softmax) / len(softmax))
    bad = CliRunner().invoke(main, ["analyze", "both", "--database", database, "--out", str(out),
                                    "--machine", str(tmp_path / "nope.csv")])
    assert bad.exit_code == 1 and "no machine evaluation at" in bad.output


def test_the_screening_record_becomes_a_table_per_condition():
    settings = {"screening": {"kept_unusable": False, "items": 12, "unusable": 3, "left_out": 3, "by_condition": [
        {"model": "mlp", "attack": "mi-face", "countermeasure": "none", "blur": "", "items": 10, "unusable": 3,
         "left_out": 3, "reasons": {"grain": 2, "constant": 1}},
        {"model": "softmax", "attack": "mi-face", "countermeasure": "none", "blur": "", "items": 2, "unusable": 0,
         "left_out": 0, "reasons": {}}]}}
    table = screening_table(settings).set_index("model")
    assert table.loc["mlp", "left_out"] == 3 and table.loc["mlp", "reasons"] == "constant 1, grain 2"
    assert table.loc["softmax", "reasons"] == "" and screening_table({}).empty
