"""Tree inversion: the estimators on the paper's hand-sized tree for y = not x1 and x2, the tree's JSON form,
the surveys' cleaning, and a reduced run of the paper's table on the real steak survey."""
import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.tree import DecisionTreeClassifier

from attack.trees import estimators as est
from attack.trees.experiment import run_table
from attack.trees.privacy_cart import train_with_feature_at
from attack.trees.surveys import SurveyError, load_gss, load_steak, load_survey, with_sensitive
from attack.trees.tree_model import Feature, TreeError, TreeModel, from_sklearn
from mi_harness.cli import main

NO, YES = 0, 1


def paper_tree(counts_x1_true: int = 30, counts_neither: int = 50) -> TreeModel:
    """y = not x1 and x2: the root tests x1 (x1 = yes: leaf y = 0); else x2 decides (x2 = yes: y = 1).

    node 0: x1 in {no} -> node 1, else node 2 (leaf, y=0, counts_x1_true rows)
    node 1: x2 in {no} -> node 3 (leaf, y=0, counts_neither rows), else node 4 (leaf, y=1, 20 rows)
    """
    return TreeModel.from_json({
        "format": "mi-harness/tree", "version": 1, "classes": ["0", "1"],
        "features": [{"name": "x1", "values": ["no", "yes"]}, {"name": "x2", "values": ["no", "yes"]}],
        "nodes": [{"feature": "x1", "left_values": ["no"], "left": 1, "right": 2,
                   "counts": [counts_x1_true + counts_neither, 20]},
                  {"feature": "x2", "left_values": ["no"], "left": 3, "right": 4, "counts": [counts_neither, 20]},
                  {"counts": [counts_x1_true, 0]}, {"counts": [counts_neither, 0]}, {"counts": [0, 20]}]})


def test_the_tree_answers_as_the_formula_and_knows_its_paths():
    tree = paper_tree()
    rows = np.array([[NO, NO], [NO, YES], [YES, NO], [YES, YES]])
    assert tree.predict(rows).tolist() == [0, 1, 0, 0]
    assert tree.apply(rows).tolist() == [3, 4, 2, 2]
    assert tree.allowed(0)[[2, 3, 4]].tolist() == [[False, True], [True, False], [True, False]]
    assert tree.depth_of(0) == [0] and tree.depth_of(1) == [1]


def test_each_estimator_gives_the_answer_worked_out_by_hand():
    tree = paper_tree()
    prior = np.array([0.7, 0.3])  # x1 = no is more common
    # x2 = yes, y = 1: only x1 = no leads to y = 1.  x2 = yes, y = 0: only x1 = yes does.
    # x2 = no, y = 0: both paths output 0; x1 = no's leaf holds 50 rows, x1 = yes's 30: 50 * 0.7 > 30 * 0.3, no.
    rows = np.array([[-1, YES], [-1, YES], [-1, NO]])
    labels = np.array([1, 0, 0])
    assert est.white_box_with_counts(tree, rows, labels, 0, prior).tolist() == [NO, YES, NO]
    assert est.white_box_with_counts(paper_tree(counts_x1_true=110), rows, labels, 0, prior).tolist() == \
        [NO, YES, NO]  # 110 * 0.3 = 33 < 35
    flipped = paper_tree(counts_x1_true=150)  # now the x1 = yes leaf outweighs: 150 * 0.3 = 45 > 50 * 0.7
    assert est.white_box_with_counts(flipped, rows, labels, 0, prior).tolist() == [NO, YES, YES]
    # black box: C[y, y'] = Pr[true y | said y']; a perfect model's matrix is the identity
    perfect = np.eye(2)
    assert est.black_box(tree, rows, labels, 0, prior, perfect).tolist() == [NO, YES, NO]
    # with the same prediction for both values, the prior decides: C[0, 0] * 0.7 > C[0, 0] * 0.3
    noisy = np.array([[0.8, 0.4], [0.2, 0.6]])
    assert est.black_box(tree, rows[2:], labels[2:], 0, prior, noisy).tolist() == [NO]
    # a label no path gives: no consistent path, so the prior's choice
    assert est.white_box_with_counts(tree, np.array([[-1, NO]]), np.array([1]), 0, prior).tolist() == [NO]


def test_wbwc_shares_a_path_that_does_not_fix_the_feature_by_the_prior():
    """A tree that never tests x1: every value reaches the same leaf, so the prior alone decides."""
    tree = TreeModel.from_json({
        "format": "mi-harness/tree", "version": 1, "classes": ["0", "1"],
        "features": [{"name": "x1", "values": ["a", "b", "c"]}, {"name": "x2", "values": ["no", "yes"]}],
        "nodes": [{"feature": "x2", "left_values": ["no"], "left": 1, "right": 2, "counts": [10, 10]},
                  {"counts": [10, 0]}, {"counts": [0, 10]}]})
    guesses = est.white_box_with_counts(tree, np.array([[0, 0], [0, 1]]), np.array([0, 1]), 0,
                                        np.array([0.2, 0.5, 0.3]))
    assert guesses.tolist() == [1, 1]


def test_scores_and_baselines():
    truth = np.array([1, 1, 0, 0, 0])
    assert est.scores(truth, np.array([1, 0, 0, 0, 1]), 1) == {"accuracy": 0.6, "precision": 0.5, "recall": 0.5}
    never = est.scores(truth, np.zeros(5, dtype=int), 1)  # no "yes" guessed: precision undefined, not 0
    assert never["accuracy"] == 0.6 and np.isnan(never["precision"]) and never["recall"] == 0.0
    prior = est.priors(np.array([0, 0, 0, 1]), 3)
    assert prior.tolist() == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert est.most_common(3, prior).tolist() == [0, 0, 0]
    assert set(est.random_guess(300, prior, seed=1)) == {0, 1, 2}


def test_a_scikit_learn_tree_converts_and_survives_its_json_form(tmp_path):
    rng = np.random.default_rng(0)
    rows = rng.integers(0, [2, 3, 4], size=(200, 3))
    labels = ((rows[:, 1] >= 1) & (rows[:, 2] != 2)).astype(int)
    classifier = DecisionTreeClassifier(random_state=0).fit(rows, labels)
    features = [Feature("a", ["n", "y"]), Feature("b", ["lo", "mid", "hi"]), Feature("c", ["1", "2", "3", "4"])]
    tree = from_sklearn(classifier, features, ["neg", "pos"])
    assert (tree.predict(rows) == classifier.predict(rows)).all()
    assert tree.counts[0].tolist() == np.bincount(labels).tolist()
    tree.save(tmp_path / "tree.json")
    again = TreeModel.load(tmp_path / "tree.json")
    assert (again.apply(rows) == tree.apply(rows)).all() and again.to_json() == tree.to_json()


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(format="other"), "not a tree model"),
    (lambda d: d.update(version=2), "version 2"),
    (lambda d: d["nodes"][0].update(feature="x9"), "node 0: unknown feature 'x9'"),
    (lambda d: d["nodes"][1].update(left_values=["maybe"]), "node 1: x2 has no value 'maybe'"),
    (lambda d: d["nodes"][0].update(left=0), "node 0: left and right must be later nodes"),
    (lambda d: d["nodes"][2].update(counts=[1]), "node 2: counts must list one number per class"),
])
def test_a_malformed_tree_is_refused_naming_the_problem(change, message):
    data = paper_tree().to_json()
    change(data)
    with pytest.raises(TreeError, match=message):
        TreeModel.from_json(json.loads(json.dumps(data)))


def test_the_surveys_are_cleaned_as_their_sources_say():
    steak = load_survey("fivethirtyeight")
    assert len(steak.frame) == 332 and steak.sensitive == "cheated" and steak.target == "steak"
    assert (steak.frame != "").all().all() and "Response" not in set(steak.frame["smoke"])
    assert steak.values["steak"] == ["Rare", "Medium rare", "Medium", "Medium Well", "Well"]
    gss = load_survey("gss")
    assert gss.positive == "x_yes" and not gss.frame["age"].isin(["99"]).any()
    assert not gss.frame["educ"].isin(["98", "99"]).any() and not gss.frame["relig"].isin(["noanswer"]).any()
    assert gss.values["age"][:2] == ["18", "19"] and "not the paper's 51,020-row" in gss.note
    assert with_sensitive(steak, "gamble").positive == "Yes"
    with pytest.raises(SurveyError, match="unknown sensitive feature 'weight'"):
        with_sensitive(steak, "weight")
    with pytest.raises(SurveyError, match="unknown survey"):
        load_survey("census")


def test_a_csv_that_is_not_the_survey_is_named(tmp_path):
    (tmp_path / "steak.csv").write_text("RespondentID,Q\n1,2\n")
    with pytest.raises(SurveyError, match="not the FiveThirtyEight steak survey data: no column"):
        load_steak(tmp_path / "steak.csv")
    (tmp_path / "gss.csv").write_text("year,sex\n2000,male\n")
    with pytest.raises(SurveyError, match="no column 'marital'"):
        load_gss(tmp_path / "gss.csv")
    with pytest.raises(SurveyError, match="no GSS extract CSV"):
        load_gss(tmp_path / "absent.csv")


def test_a_reduced_table_on_the_steak_survey():
    table = run_table(load_survey("fivethirtyeight"), count=5, progress=False).set_index(["population", "attack"])
    # always "no": the share of people who never cheated (275 of 332), with no positive guess
    assert table.loc[("test", "most-common"), "accuracy_mean"] == pytest.approx(275 / 332, abs=0.01)
    assert table.loc[("test", "most-common"), "recall_mean"] == 0
    # on the people the tree was trained on, reading the tree beats the base rate; on others it does not
    assert table.loc[("training", "white-box"), "accuracy_mean"] > table.loc[("training", "most-common"),
                                                                             "accuracy_mean"]
    assert table.loc[("training", "white-box"), "recall_mean"] > table.loc[("test", "white-box"), "recall_mean"]
    assert table.loc[("training", "random"), "accuracy_mean"] == pytest.approx(0.5, abs=0.1)


def test_the_depth_forcing_trainer_puts_the_feature_where_asked():
    steak = load_survey("fivethirtyeight")
    rows, labels = steak.codes(), steak.codes([steak.target])[:, 0]
    features = [Feature(f, steak.values[f]) for f in steak.features]
    cheated = steak.features.index("cheated")
    for depth in (0, 1, 3):
        tree = train_with_feature_at(rows, labels, features, steak.values["steak"], cheated, depth)
        assert set(tree.depth_of(cheated)) == {depth}
        # every training row whose path reaches that depth is split on it there
        reached = tree.allowed(cheated)  # a node tests it: its children allow one value each
        assert all(reached[tree.left[n]].sum() == 1 for n in np.flatnonzero(tree.feature == cheated))
    bottom = train_with_feature_at(rows, labels, features, steak.values["steak"], cheated, None)
    tested = np.flatnonzero(bottom.feature == cheated)
    assert len(tested) and all(bottom.is_leaf[bottom.left[n]] and bottom.is_leaf[bottom.right[n]] for n in tested)
    plain = from_sklearn(DecisionTreeClassifier(random_state=0).fit(np.delete(rows, cheated, 1), labels),
                         [f for f in features if f.name != "cheated"], steak.values["steak"])
    assert (bottom.predict(rows) == labels).mean() >= (plain.predict(np.delete(rows, cheated, 1)) == labels).mean()
    with pytest.raises(ValueError, match="depth must be 0"):
        train_with_feature_at(rows, labels, features, steak.values["steak"], cheated, -1)


def test_trees_command_writes_its_tables_and_names_bad_input(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["trees", "--survey", "fivethirtyeight", "--trees", "3", "--countermeasure", "depth",
                                  "--depths", "top,2,bottom", "--out", str(out)])
    assert result.exit_code == 0, result.output
    attacks = pd.read_csv(out / "attacks.csv")
    assert set(attacks["attack"]) == {"white-box", "black-box", "black-box-confidence", "ideal", "most-common",
                                      "random"}
    assert attacks.loc[(attacks["population"] == "training") & (attacks["attack"] == "white-box"),
                       "paper_accuracy"].item() == 86.4
    only = runner.invoke(main, ["trees", "--survey", "fivethirtyeight", "--trees", "2", "--attack", "white-box",
                                "--attack", "most-common", "--out", str(tmp_path / "only")])
    assert only.exit_code == 0, only.output
    assert sorted(pd.read_csv(tmp_path / "only" / "attacks.csv")["attack"].unique()) == ["most-common", "white-box"]
    depth = pd.read_csv(out / "depth.csv")
    assert list(depth["depth"]) == ["top", "2", "bottom"] and (out / "figures" / "depth.svg").is_file()
    assert (out / "figures" / "attacks.png").is_file()
    for args, message in ((["--sensitive", "weight"], "unknown sensitive feature 'weight'"),
                          (["--countermeasure", "round:2"], "round:R needs 0 < R < 1"),
                          (["--countermeasure", "depth", "--depths", "top,middle"], "'middle'"),
                          (["--min-samples-leaf", "0"], "at least 1"),
                          (["--data", str(tmp_path)], "no FiveThirtyEight steak survey CSV")):
        bad = runner.invoke(main, ["trees", "--survey", "fivethirtyeight", "--trees", "2", "--out", str(out), *args])
        assert bad.exit_code in (1, 2) and message in bad.output, bad.output


def test_rounded_confidences_leave_the_confidence_reader_only_the_prior():
    """x1 = no leads to a leaf 70% sure of y = 0, x1 = yes to one 40% sure: the confidence of the known label
    y = 0 points to no (0.7 * 0.4 > 0.4 * 0.6), though yes is likelier a priori. Rounded to 0.5 both say 0.5, and
    the prior decides."""
    tree = TreeModel.from_json({
        "format": "mi-harness/tree", "version": 1, "classes": ["0", "1"],
        "features": [{"name": "x1", "values": ["no", "yes"]}],
        "nodes": [{"feature": "x1", "left_values": ["no"], "left": 1, "right": 2, "counts": [11, 9]},
                  {"counts": [7, 3]}, {"counts": [4, 6]}]})
    prior, person, label = np.array([0.4, 0.6]), np.array([[-1]]), np.array([0])
    assert est.confidences(tree, np.array([[NO], [YES]])).tolist() == [[0.7, 0.3], [0.4, 0.6]]
    assert est.confidences(tree, np.array([[NO], [YES]]), rounding=0.5).tolist() == [[0.5, 0.5], [0.5, 0.5]]
    assert est.black_box_confidence(tree, person, label, 0, prior).tolist() == [NO]
    assert est.black_box_confidence(tree, person, label, 0, prior, rounding=0.5).tolist() == [YES]


def test_the_2014_estimator_recovers_a_genotype_the_dose_reveals():
    """A made-up clinic where sqrt(dose) drops by 1 per A allele, plus a little noise: the estimator reads the
    genotype back from the dose for nearly everyone, where always guessing the most common gets a third."""
    from attack.warfarin import GENOTYPES, DoseModel, fredrikson2014

    rng = np.random.default_rng(0)
    n = 600
    frame = pd.DataFrame({"age_decades": rng.integers(2, 9, n), "height": rng.normal(170, 10, n),
                          "weight": rng.normal(75, 12, n), "race": rng.choice(["White", "Asian"], n),
                          "inducer": 0, "amiodarone": 0, "cyp2c9": "*1/*1",
                          "vkorc1": rng.choice(GENOTYPES, n)})
    alleles = frame["vkorc1"].map(GENOTYPES.index)
    frame["dose"] = (7 - alleles + 0.01 * (frame["weight"] - 75) + rng.normal(0, 0.1, n)) ** 2
    model = DoseModel(frame)
    assert model.sigma == pytest.approx(0.1, abs=0.02)
    guess = fredrikson2014(model, frame, np.full(3, 1 / 3))
    assert (guess == alleles).mean() > 0.98
    # a strong prior for G/G only wins where the dose cannot tell the genotypes apart: here it always can
    assert (fredrikson2014(model, frame, np.array([0.98, 0.01, 0.01])) == alleles).mean() > 0.95


def test_warfarin_command_on_the_iwpc_data(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["warfarin", "--repeats", "2", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "warfarin.csv").set_index(["population", "attack"])
    assert table.loc[("training", "fredrikson2014"), "accuracy"] > table.loc[("training", "most-common"), "accuracy"]
    (tmp_path / "bad.csv").write_text("Age,Gender\n40 - 49,male\n")
    bad = runner.invoke(main, ["warfarin", "--data", str(tmp_path / "bad.csv"), "--out", str(tmp_path)])
    assert bad.exit_code == 1 and "not the IWPC warfarin data: no column 'Race (OMB)'" in bad.output


def test_a_tree_saved_as_json_is_attacked_as_a_tree_from_elsewhere(tmp_path):
    runner = CliRunner()
    saved = tmp_path / "tree.json"
    result = runner.invoke(main, ["trees", "--survey", "fivethirtyeight", "--trees", "1", "--save-tree", str(saved),
                                  "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    steak = load_survey("fivethirtyeight")
    tree = TreeModel.load(saved)
    attacked = runner.invoke(main, ["trees", "--survey", "fivethirtyeight", "--tree", str(saved), "--out",
                                    str(tmp_path / "b")])
    assert attacked.exit_code == 0, attacked.output
    table = pd.read_csv(tmp_path / "b" / "attacks.csv").set_index("attack")
    rows, labels = steak.codes(), steak.codes(["steak"])[:, 0]
    j = steak.features.index("cheated")
    expected = est.scores(rows[:, j], est.white_box_with_counts(tree, rows, labels, j, est.priors(rows[:, j], 2)), 1)
    assert table.loc["white-box", "recall_mean"] == pytest.approx(expected["recall"])
    assert table.loc["most-common", "accuracy_mean"] == pytest.approx(275 / 332)
    wrong = runner.invoke(main, ["trees", "--survey", "gss", "--tree", str(saved), "--out", str(tmp_path / "c")])
    assert wrong.exit_code == 1 and "the tree's feature 'lottery' is not a column of gss" in wrong.output
    assert "more)" in wrong.output
