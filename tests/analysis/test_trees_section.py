"""The report's attribute-inference section, from folders that `mi-harness trees` and `warfarin` wrote."""
from click.testing import CliRunner

from mi_harness.cli import main
from tests.survey_app.conftest import answer_lineups, new_study


def test_the_report_gains_the_tree_results_and_refuses_a_wrong_folder(app, database, bundle_dir, tmp_path):
    if not database.startswith("sqlite"):
        return  # the section does not depend on the database
    runner = CliRunner()
    trees = tmp_path / "steak"
    assert runner.invoke(main, ["trees", "--survey", "fivethirtyeight", "--trees", "2", "--out",
                                str(trees)]).exit_code == 0
    warfarin = tmp_path / "warfarin"
    assert runner.invoke(main, ["warfarin", "--repeats", "1", "--out", str(warfarin)]).exit_code == 0
    study = new_study(app, bundle_dir, name="with-trees", hit_size=42)
    answer_lineups(app, study, "w1", 42, lambda k, c: c[0])
    out = tmp_path / "report"
    result = runner.invoke(main, ["analyze", "with-trees", "--database", database, "--out", str(out),
                                  "--trees", str(trees), "--trees", str(warfarin)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "Attribute inference from decision trees" in page and "fredrikson2014" in page
    assert "332 complete responses" in page and page.count("data:image/png;base64") >= 4
    assert (out / "tables" / "trees_steak_attacks.csv").read_text() == (trees / "attacks.csv").read_text()
    assert (out / "tables" / "trees_warfarin_warfarin.csv").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    bad = runner.invoke(main, ["analyze", "with-trees", "--database", database, "--out", str(tmp_path / "r2"),
                               "--trees", str(empty)])
    assert bad.exit_code == 1 and "holds none of attacks.csv" in bad.output and not (tmp_path / "r2").exists()


def test_the_report_shows_an_attriguard_folder_with_its_explanation(app, database, bundle_dir, tmp_path):
    if not database.startswith("sqlite"):
        return  # the section does not depend on the database
    runner = CliRunner()
    guard = tmp_path / "attriguard"
    assert runner.invoke(main, ["attriguard", "--survey", "fivethirtyeight", "--betas", "1", "--draws", "1",
                                "--out", str(guard)]).exit_code == 0
    study = new_study(app, bundle_dir, name="with-attriguard", hit_size=42)
    answer_lineups(app, study, "w1", 42, lambda k, c: c[0])
    out = tmp_path / "report"
    result = runner.invoke(main, ["analyze", "with-attriguard", "--database", database, "--out", str(out),
                                  "--trees", str(guard)])
    assert result.exit_code == 0, result.output
    page = (out / "report.html").read_text()
    assert "<h4>attriguard</h4>" in page and "Jia and Gong" in page and "randomised response" in page
    assert "balanced_accuracy" in page and "kl_to_target" in page and "<th>policy</th>" not in page
    assert page.count('alt="attriguard"') == 1 and "539 respondents gave" in page
    assert (out / "tables" / "trees_attriguard_attriguard.csv").read_text() == (guard / "attriguard.csv").read_text()
    (guard / "attriguard.csv").write_text("survey,beta\nfivethirtyeight,1\n")
    bad = runner.invoke(main, ["analyze", "with-attriguard", "--database", database, "--out", str(tmp_path / "r2"),
                               "--trees", str(guard)])
    assert bad.exit_code == 1 and "not a `mi-harness attriguard` table" in bad.output and not (tmp_path / "r2").exists()
