"""The small corrections of issue 12: undefined precision over trees, MI-Face's plateau at i = beta, and the warfarin
"ideal" baseline that sees no more than the attacker."""
import numpy as np
import pandas as pd
import pytest
import torch

from attack.mi_face import MIFace, MIFaceConfig
from attack.prediction_api import PredictionAPI
from attack.trees.experiment import depth_table, run_table
from attack.trees.surveys import load_survey
from attack.warfarin import CYP2C9, GENOTYPES, design, ideal_inputs, load_patients, run

from .tiny_models import TinyLinear


def test_means_over_trees_skip_undefined_precision_and_count_the_trees_that_had_one():
    table = run_table(load_survey("fivethirtyeight"), count=4, progress=False).set_index(["population", "attack"])
    # always "no" never guesses "yes": no tree has a precision, so there is no mean (the paper printed 0)
    assert table.loc[("test", "most-common"), "precision_trees"] == 0
    assert np.isnan(table.loc[("test", "most-common"), "precision_mean"])
    # the random guess says "yes" on every tree: all four count, and the mean is a real number
    assert table.loc[("training", "random"), "precision_trees"] == 4
    assert 0 < table.loc[("training", "random"), "precision_mean"] < 1
    assert (table["precision_trees"] <= table["trees"]).all()


def test_the_depth_table_counts_trees_with_a_precision():
    table = depth_table(load_survey("fivethirtyeight"), [None], count=2, progress=False)
    assert {"training_precision_trees", "test_precision_trees"} <= set(table.columns)
    assert 0 <= table.loc[0, "training_precision_trees"] <= 2


@pytest.mark.parametrize("beta", [1, 3, 7])
def test_plateau_can_stop_at_i_equal_beta(beta):
    """Zero gradient: every cost equals c(x_0), so c(x_beta) >= max(c(x_0..beta-1)) already at i = beta."""
    api = PredictionAPI(TinyLinear([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))
    [result] = MIFace(api, MIFaceConfig(alpha=1000, beta=beta), show_progress=False).invert([0])
    assert (result.stopped_by, result.iterations) == ("plateau", beta)


def test_plateau_compares_with_x0_at_i_equal_beta_and_not_before():
    """Costs fall for two steps from c(x_0), then rise above both but stay under c(x_0): with beta = 3 the test at
    i = 3 must count c(x_0) in its window (so it does not fire), and at i = 4 (c(x_0) has left it) it fires."""
    costs = iter([0.3, 0.2, 0.45, 0.45, 0.1])  # c(x_1) ..., set by a PROCESS; c(x_0) = 0.5 at x_0 = 0
    api = PredictionAPI(TinyLinear([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]))  # f_0 = sigmoid(x[0]), c = 1 - f_0

    def scripted(x):
        c = next(costs)
        return torch.full_like(x, float(np.log((1 - c) / c)))

    config = MIFaceConfig(alpha=10, beta=3, gamma=0.999, lam=0.1)  # the PROCESS decides x
    [result] = MIFace(api, config, process=scripted, show_progress=False).invert([0], keep_history=True)
    assert result.history[:5] == pytest.approx([0.5, 0.3, 0.2, 0.45, 0.45], abs=1e-5)
    assert (result.stopped_by, result.iterations) == ("plateau", 4)


def test_the_ideal_warfarin_baseline_sees_cyp2c9_only_when_the_attacker_does():
    patients = load_patients(None).frame.head(50)
    known, unknown = ideal_inputs(patients, True), ideal_inputs(patients, False)
    assert known.shape[1] - unknown.shape[1] == len(CYP2C9) - 1
    # what is left is everything but the CYP2C9 levels: shuffling CYP2C9 changes nothing the baseline sees
    shuffled = patients.assign(cyp2c9=patients["cyp2c9"].sample(frac=1, random_state=1).to_numpy())
    assert (ideal_inputs(shuffled, False) == unknown).all()
    assert not (ideal_inputs(shuffled, True) == known).all()
    # and no VKORC1: its genotype changes nothing either
    flipped = patients.assign(vkorc1=GENOTYPES[-1])
    assert (ideal_inputs(flipped, True) == known).all()
    assert known.shape[1] == design(patients).shape[1] - (len(GENOTYPES) - 1) + 1


def test_the_warfarin_table_without_cyp2c9():
    table = run(load_patients(None), repeats=1, know_cyp2c9=False).set_index(["population", "attack"])
    assert not table["knows_cyp2c9"].any()
    assert 0 < table.loc[("test", "ideal"), "accuracy"] < 1
    assert isinstance(table, pd.DataFrame)
