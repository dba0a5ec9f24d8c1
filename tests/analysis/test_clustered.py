"""The mixed model and the cluster bootstrap: known parameters come back, and the intervals cover as they claim."""
import numpy as np
import pytest

from analysis.clustered import cluster_bootstrap, clustered_accuracy, clustered_contrasts
from analysis.glmm import fit_crossed, population_accuracy
from analysis.plan import Design, simulate_answers
from bench.bench_intervals import DESIGNS, as_frame, coverage


def test_the_model_recovers_the_variances_and_effects_it_was_simulated_with():
    design = Design(0.4, 0.8, items_per_condition=100, answers_per_item=6, runs=2, sd_worker=0.7, sd_item=1.2)
    answers = simulate_answers(design, np.random.default_rng(3))
    fit = fit_crossed(answers["correct"].to_numpy(float), np.eye(2)[answers["condition"]],
                      {"worker": answers["worker"].to_numpy(), "item": answers["item"].to_numpy()})
    assert fit.converged
    assert fit.sd["worker"] == pytest.approx(0.7, abs=0.2) and fit.sd["item"] == pytest.approx(1.2, abs=0.25)
    assert fit.population_accuracy(fit.beta) == pytest.approx([0.4, 0.8], abs=0.06)
    assert design.log_odds(0.4) < 0 < design.log_odds(0.8)
    assert float(population_accuracy(design.log_odds(0.8), design.total_sd)) == pytest.approx(0.8)


def test_without_clustering_the_model_agrees_with_the_binomial():
    rng = np.random.default_rng(0)
    y = (rng.random(1000) < 0.3).astype(float)
    fit = fit_crossed(y, np.ones((1000, 1)), {"worker": np.arange(1000) % 40, "item": np.arange(1000) % 37})
    assert fit.sd["worker"] < 0.1 and fit.sd["item"] < 0.1
    se = np.sqrt(fit.cov[0, 0])
    p = y.mean()
    assert fit.population_accuracy(fit.beta)[0] == pytest.approx(p, abs=0.01)
    assert se == pytest.approx(1 / np.sqrt(1000 * p * (1 - p)), rel=0.02)  # the logit's binomial standard error


def test_the_tables_lead_with_the_clustered_interval_and_keep_the_naive_one_beside_it():
    frame = as_frame(simulate_answers(Design(0.5, 0.9, items_per_condition=20), np.random.default_rng(1)))
    table, model = clustered_accuracy(frame, bootstrap=200)
    assert list(table["countermeasure"]) == ["none", "round:0.01"]
    for row in table.itertuples():
        assert row.ci_low < row.model_accuracy < row.ci_high and row.naive_low < row.accuracy < row.naive_high
        assert row.ci_high - row.ci_low > 1.3 * (row.naive_high - row.naive_low)  # clustered intervals are wider
        assert row.boot_low < row.accuracy < row.boot_high
    assert model["sd_item"] > 0.3 and model["items"] == 40
    contrasts = clustered_contrasts(frame, bootstrap=200)
    row = contrasts.iloc[0]
    assert (row.model, row.attack, row.countermeasure, row.baseline) == ("softmax", "mi-face", "round:0.01", "none")
    assert row.ci_low < row.difference < row.ci_high and row.difference > 0.2 and row.significant
    assert row.boot_low < row.difference < row.boot_high
    assert row.p_adjusted == pytest.approx(row.p)  # one contrast: Holm leaves it alone


def test_the_bootstrap_resamples_workers_and_items_within_conditions():
    frame = as_frame(simulate_answers(Design(0.3, 0.7, items_per_condition=5), np.random.default_rng(2)))
    draws = cluster_bootstrap(frame, ("countermeasure",), draws=300, seed=1)
    observed = frame.groupby("countermeasure")["correct"].mean().to_numpy()
    assert draws.shape == (300, 2) and not np.isnan(draws).any()
    assert np.abs(draws.mean(axis=0) - observed).max() < 0.05
    assert (draws.std(axis=0) > 0.03).all()


def test_a_condition_everyone_got_right_stays_finite():
    frame = as_frame(simulate_answers(Design(0.5, 0.9, items_per_condition=6), np.random.default_rng(4)))
    frame.loc[frame["countermeasure"] == "round:0.01", "correct"] = True
    table, _ = clustered_accuracy(frame, bootstrap=50)
    row = table.set_index("countermeasure").loc["round:0.01"]
    assert row.accuracy == 1 and 0.5 < row.ci_low < row.ci_high <= 1


@pytest.mark.slow
def test_clustered_intervals_cover_the_true_accuracy_and_naive_ones_do_not():
    """200 simulated studies (400 intervals) of the bench's first design: two conditions of 15 items, 5 answers per
    item in each of 3 runs, worker sd 0.8 and item sd 1.0 (log-odds). bench/bench_intervals.py runs more."""
    result = coverage(next(iter(DESIGNS.values())), simulations=200, bootstrap=200)
    assert 0.90 <= result["mixed model"] <= 0.98
    assert 0.90 <= result["cluster bootstrap"] <= 0.99
    assert result["naive Wilson"] < 0.80
