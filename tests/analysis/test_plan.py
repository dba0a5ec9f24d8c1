"""`mi-harness plan`: power by simulation from the mixed model, and its recommendation."""
import numpy as np
import pytest
from click.testing import CliRunner

from analysis.plan import Design, power, recommend, simulate_answers
from mi_harness.cli import main
from survey_app.export import to_csv
from tests.analysis.synthetic import synthetic_study


def test_a_simulated_study_is_served_as_the_survey_serves_one():
    design = Design(0.5, 0.7, items_per_condition=10, answers_per_item=4, runs=2, hit_size=8, hits_per_worker=2)
    answers = simulate_answers(design, np.random.default_rng(0))
    assert len(answers) == 2 * 10 * 4 * 2
    assert (answers.groupby("item").size() == 4 * 2).all()
    assert answers.groupby("worker").size().max() == 16  # two HITs of eight
    assert set(answers.groupby("item")["condition"].nunique()) == {1}


@pytest.mark.slow
def test_no_difference_is_found_about_as_often_as_alpha_and_a_large_one_nearly_always():
    null = power(Design(0.6, 0.6, items_per_condition=15), simulations=100, seed=1)
    assert null["power"] <= 0.12
    large = power(Design(0.4, 0.85, items_per_condition=15), simulations=40, seed=1)
    assert large["power"] >= 0.9


def test_more_answers_help_until_the_items_limit_and_the_recommendation_is_the_first_that_suffices():
    design = Design(0.5, 0.75, items_per_condition=30)
    table, best = recommend(design, [1, 4], target=0.6, simulations=30, seed=2)
    assert table["power"].iloc[1] > table["power"].iloc[0]
    assert best == (1 if table["power"].iloc[0] >= 0.6 else 4 if table["power"].iloc[1] >= 0.6 else None)
    with pytest.raises(ValueError, match="accuracy_b must be a proportion"):
        Design(0.5, 1.2)


def test_the_plan_command_prints_power_and_takes_variances_from_a_pilot(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["plan", "--accuracy", "0.7", "--difference", "-0.3", "--items", "10",
                                  "--answers-per-item", "2,6", "--simulations", "20"])
    assert result.exit_code == 0, result.output
    assert "worker sd 0.80, item sd 1.00" in result.output and "answers/item/run" in result.output
    assert "recommended:" in result.output or "no candidate reaches" in result.output
    pilot = synthetic_study(items=15, answers_per_item=6, workers=30, controls=0, sd_worker=0.1, sd_item=1.5)
    path = tmp_path / "pilot.csv"
    rows = pilot.drop(columns=["chose_absent", "measures_skill"]).to_dict("records")
    for row in rows:  # as the survey writes them: a place, or nothing in a target-absent lineup
        row["target_position"] = int(row["target_position"]) if row["target_present"] else None
    path.write_text(to_csv(rows))
    result = runner.invoke(main, ["plan", "--accuracy", "0.7", "--difference", "-0.3", "--items", "10",
                                  "--answers-per-item", "2", "--simulations", "10", "--pilot", str(path)])
    assert result.exit_code == 0, result.output
    assert "fitted to the pilot" in result.output and "worker sd 0.80" not in result.output
    bad = runner.invoke(main, ["plan", "--accuracy", "0.9", "--difference", "0.2"])
    assert bad.exit_code == 2 and "accuracy_b must be a proportion" in bad.output
    bad = runner.invoke(main, ["plan", "--accuracy", "0.5", "--difference", "0.2", "--answers-per-item", "two"])
    assert bad.exit_code == 2 and "whole numbers" in bad.output
