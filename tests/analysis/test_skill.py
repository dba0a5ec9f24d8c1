"""The skilled subset is measured on answers other than those it reports, and the survey and analysis agree on it."""
import numpy as np
import pandas as pd

from analysis.load import COLUMNS, from_database, from_export, skilled_workers, tidy
from analysis.metrics import accuracy_table
from mi_harness.answers import measures_skill, skill_evidence
from survey_app.export import answer_rows, to_csv
from survey_app.studies import worker_table
from tests.survey_app.conftest import answer_lineups, new_study

CHOICES = ("1", "2", "3", "4", "5", "absent")
CHANCE = 1 / len(CHOICES)
"""A worker who picks one of the five faces or "not in this lineup" at random is right one time in six, in
target-present and target-absent lineups alike."""


def chance_panel(workers=500, answers=20, seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for w in range(workers):
        for k in range(answers):
            present = rng.random() < 0.8
            target = int(rng.integers(1, 6)) if present else None
            choice = CHOICES[rng.integers(0, 6)]
            rows.append({"study": "s", "run": 1, "worker": f"w{w}", "hit": w, "item": f"i{rng.integers(0, 40)}",
                         "subject": "s1", "model": "softmax", "attack": "mi-face", "countermeasure": "none",
                         "blur": "", "gold": False, "target_present": present, "target_position": target,
                         "choice": choice, "correct": choice == (str(target) if present else "absent"),
                         "skilled": False, "response_ms": 1000, "shown_at": None, "answered_at": None})
    return pd.DataFrame(rows, columns=COLUMNS)


def test_identical_chance_workers_give_a_skilled_subset_at_chance():
    panel = chance_panel()
    settings = {"skilled_min_tasks": 10, "skilled_min_accuracy": 0.3}
    skilled = skilled_workers(panel.assign(worker_key=panel["worker"]), settings)
    frame = tidy(panel.assign(skilled=panel["worker"].map(skilled)))
    chosen = frame.loc[frame["skilled"], "worker"].nunique()
    assert 50 <= chosen <= 200  # luck alone makes a good share of them "skilled"
    row = accuracy_table(frame, by=("model",), workers="skilled").iloc[0]
    assert row.answers == chosen * 10  # their held-out half only
    assert row.ci_low <= CHANCE <= row.ci_high and abs(row.accuracy - CHANCE) < 0.04
    # the old rule, skill measured on the reported answers themselves, puts the same panel far above chance
    on_all = frame.groupby("worker")["correct"].mean()
    selected = frame[frame["worker"].map(on_all >= 0.3)]
    old = accuracy_table(selected.assign(skilled=True, measures_skill=False), by=("model",), workers="skilled")
    assert old.iloc[0].ci_low > CHANCE + 0.1


def test_the_rule_alternates_without_gold_and_uses_gold_where_there_is_some():
    assert [measures_skill(k, False, on_gold=False) for k in range(4)] == [True, False, True, False]
    assert [measures_skill(k, gold, on_gold=True) for k, gold in enumerate([False, True, False])] == [False, True,
                                                                                                    False]
    assert skill_evidence([False] * 5, [True, False, True, False, False], on_gold=False) == (3, 2)
    assert skill_evidence([True, False, True], [True, True, False], on_gold=True) == (2, 1)
    # a control (mock-witness) answer is never skill evidence and does not shift the alternation
    assert skill_evidence([False] * 5, [True, True, False, False, True], on_gold=False,
                          controls=[False, True, False, False, False]) == (2, 1)
    assert not measures_skill(0, True, on_gold=True, control=True)


def test_the_survey_the_export_and_the_analysis_agree_on_who_is_skilled(app, database, tmp_path, bundle_dir):
    if not database.startswith("sqlite"):
        return  # the rule is database-independent Python; the loader's PostgreSQL path is covered in test_load
    study = new_study(app, bundle_dir, name="halves", hit_size=6, skilled_min_tasks=4, skilled_min_accuracy=0.2)
    for worker, pick in {"A": lambda k, c: c[k % 5], "B": lambda k, c: c[0], "C": lambda k, c: "absent",
                         "D": lambda k, c: c[(2 * k) % 5]}.items():
        answer_lineups(app, study, worker, 12, pick)
    with app.extensions["survey_db"]() as session:
        attached = session.merge(study)
        survey = {row["worker"]: row["skilled"] for row in worker_table(session, attached)}
        rows = answer_rows(session, attached)
    (tmp_path / "answers.csv").write_text(to_csv(rows))
    from_db, exported = from_database(database, "halves"), from_export(tmp_path / "answers.csv")
    by_hand = {}
    for worker, answers in from_db.groupby("worker"):
        halves = answers["correct"].to_numpy()[::2]  # the 1st, 3rd, ... answers
        by_hand[worker] = bool(len(answers) >= 4 and halves.mean() >= 0.2)
    assert survey == by_hand
    assert from_db.groupby("worker")["skilled"].first().to_dict() == by_hand
    assert exported.groupby("worker")["skilled"].first().to_dict() == by_hand
    assert (from_db["measures_skill"] == exported["measures_skill"]).all()
    assert from_db.groupby("worker")["measures_skill"].sum().to_dict() == {w: 6 for w in "ABCD"}
