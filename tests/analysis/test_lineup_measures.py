"""Confidence (CAC, ROC with partial AUC), photo roles and lineup fairness, on hand-made and synthetic answers;
each is skipped cleanly when its column is absent."""
import numpy as np
import pandas as pd
import pytest

from analysis.clustered import accuracy_by_photo_role
from analysis.confidence import confidence_accuracy, partial_auc, roc_analysis
from analysis.lineup_fairness import lineup_fairness, tredoux_e, tredoux_e_interval
from analysis.load import COLUMNS, tidy
from analysis.metrics import accuracy_table
from tests.analysis.synthetic import synthetic_study


def answer(present=True, choice="1", confidence=None, countermeasure="none", item="i1", worker="w1", **extra):
    target = 1 if present else None
    return {"study": "s", "run": 1, "worker": worker, "hit": 1, "item": item, "subject": "s1", "model": "softmax",
            "attack": "mi-face", "countermeasure": countermeasure, "blur": "", "gold": False, "control": False,
            "control_of": "", "target_present": present, "target_position": target, "photo": "", "photo_role": "",
            "filler_policy": "random", "choice": choice, "correct": choice == ("1" if present else "absent"),
            "confidence": confidence, "confidence_scale": 3, "skilled": True, "response_ms": 1, "shown_at": None,
            "answered_at": None, **extra}


def frame(rows):
    return tidy(pd.DataFrame(rows, columns=COLUMNS))


def test_roc_points_and_partial_auc_by_hand():
    # target-present: 10 answers; 4 hits at confidence 3, 2 at 2, 1 at 1, 3 wrong faces
    rows = ([answer(confidence=3)] * 4 + [answer(confidence=2)] * 2 + [answer(confidence=1)]
            + [answer(choice="2", confidence=1)] * 3)
    # target-absent: 10 answers; face picks: 1 at confidence 3, 2 at 2, 2 at 1; 5 "absent"
    rows += ([answer(present=False, choice="3", confidence=3)] + [answer(present=False, choice="3", confidence=2)] * 2
             + [answer(present=False, choice="4", confidence=1)] * 2 + [answer(present=False, choice="absent",
                                                                               confidence=3)] * 5)
    points, summary = roc_analysis(frame(rows), bootstrap=300)
    assert points["hit_rate"].tolist() == pytest.approx([0, 0.4, 0.6, 0.7])
    assert points["false_id_rate"].tolist() == pytest.approx([0, 0.02, 0.06, 0.10])  # picks / 5 / 10 lineups
    row = summary.iloc[0]
    # one group: the cutoff is its own largest false-ID rate; trapezoids by hand
    by_hand = 0.02 * 0.4 / 2 + 0.04 * (0.4 + 0.6) / 2 + 0.04 * (0.6 + 0.7) / 2
    assert row.cutoff == pytest.approx(0.10) and row.pauc == pytest.approx(by_hand)
    assert row.pauc_low <= row.pauc <= row.pauc_high
    x, y = np.array([0, 0.02, 0.06, 0.10]), np.array([0, 0.4, 0.6, 0.7])
    assert partial_auc(x, y, 0.04) == pytest.approx(0.02 * 0.4 / 2 + 0.02 * (0.4 + 0.5) / 2)  # cut by interpolation
    assert np.isnan(partial_auc(x, y, 0.2))  # the curve stops short
    cac = confidence_accuracy(frame(rows)).set_index("confidence")
    assert cac.loc[3, "target_ids"] == 4 and cac.loc[3, "innocent_ids"] == pytest.approx(0.2)
    assert cac.loc[3, "suspect_id_accuracy"] == pytest.approx(4 / 4.2)


def test_better_reconstructions_have_the_larger_partial_auc_and_the_common_cutoff():
    study = synthetic_study(items=30, answers_per_item=8, workers=60, controls=0, seed=2)
    points, summary = roc_analysis(study, bootstrap=200)
    summary = summary.set_index(["model", "countermeasure", "attack"])
    assert summary["cutoff"].nunique() == 1
    assert summary["cutoff"].iloc[0] == pytest.approx(summary["max_false_id_rate"].min())
    strong, weak = summary.loc[("softmax", "none", "mi-face")], summary.loc[("mlp", "round:0.01", "mi-face")]
    assert strong.pauc > weak.pauc and strong.pauc_low > weak.pauc_high * 0.5
    assert set(points.columns) >= {"model", "attack", "countermeasure", "blur", "criterion", "hit_rate"}


def test_photo_roles_are_compared_only_where_both_occur():
    study = synthetic_study(items=16, answers_per_item=6, workers=40, controls=0, seed=3)
    table = accuracy_by_photo_role(study, bootstrap=50)
    assert set(table["photo_role"]) == {"train", "validation"}
    assert (table.groupby(["model", "attack", "countermeasure", "blur"])["photo_role"].nunique() == 2).all()
    assert (table["ci_low"] <= table["ci_high"]).all()
    one_role = study.assign(photo_role=study["photo_role"].replace("train", "validation"))
    assert accuracy_by_photo_role(one_role).empty
    assert accuracy_by_photo_role(study.drop(columns="photo_role")).empty


def test_tredoux_e_and_functional_size_by_hand():
    assert tredoux_e(np.array([2, 2, 2, 2, 2])) == pytest.approx(5)
    assert tredoux_e(np.array([10, 0, 0, 0, 0])) == pytest.approx(1)
    assert tredoux_e(np.array([4, 2, 2, 1, 1])) == pytest.approx(100 / 26)
    low, high = tredoux_e_interval(np.array([4, 2, 2, 1, 1]), 0.05)
    assert 1 <= low < 100 / 26 < high <= 5
    # one control lineup: 10 mock witnesses, target (place 1) picked 4 times, 2 said absent
    choices = ["1"] * 4 + ["2", "3", "3", "5"] + ["absent"] * 2
    rows = [answer(choice=c, item="ctl", control=True, control_of="i1", worker=f"w{k}") for k, c in enumerate(choices)]
    rows += [answer(choice="1", item="i1")]  # the real item: not part of the fairness tables
    lineups, groups = lineup_fairness(frame(rows))
    lineup = lineups.iloc[0]
    assert lineup["lineup"] == "i1" and lineup.mock_witnesses == 10 and lineup.face_choices == 8
    assert lineup.functional_size == pytest.approx(8 / 4) and lineup.target_picked == pytest.approx(0.4)
    assert lineup.functional_size_low < 2 < lineup.functional_size_high
    assert lineup.tredoux_e == pytest.approx(64 / (16 + 1 + 4 + 0 + 1))
    overall = groups.iloc[0]
    assert overall.model == "all" and overall.mean_tredoux_e == pytest.approx(lineup.tredoux_e)
    # control answers never count as identifications of the reconstruction
    assert accuracy_table(frame(rows)).iloc[0].answers == 1


def test_a_fair_and_a_revealing_lineup_are_told_apart():
    fair = synthetic_study(items=2, answers_per_item=20, workers=40, controls=4, control_target_share=0.15, seed=5)
    unfair = synthetic_study(items=2, answers_per_item=20, workers=40, controls=4, control_target_share=0.7, seed=5)
    fair_all = lineup_fairness(fair)[1].iloc[0]
    unfair_all = lineup_fairness(unfair)[1].iloc[0]
    assert unfair_all.functional_size_high < 2 < fair_all.functional_size_low
    assert unfair_all.mean_tredoux_e < fair_all.mean_tredoux_e


def test_old_exports_without_the_new_columns_skip_the_new_analyses():
    old = tidy(pd.DataFrame([answer(confidence=2)] * 3, columns=COLUMNS)).drop(
        columns=["control", "control_of", "photo", "photo_role", "confidence", "confidence_scale"])
    assert roc_analysis(old)[1].empty and confidence_accuracy(old).empty
    assert lineup_fairness(old)[1].empty and accuracy_by_photo_role(old).empty
    assert accuracy_table(old).iloc[0].answers == 3
    unrated = frame([answer(confidence=None), answer(present=False, choice="absent", confidence=None)])
    assert roc_analysis(unrated)[1].empty and confidence_accuracy(unrated).empty
