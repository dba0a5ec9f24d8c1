"""Answers load the same from the survey's database (read-only) and from its export, on SQLite and PostgreSQL."""
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from analysis.load import AnswersError, from_database, from_export, read_only_engine
from survey_app.export import answer_rows, to_csv
from tests.survey_app.conftest import answer_lineups, new_study

COMPARED = ["study", "run", "worker", "hit", "item", "subject", "model", "attack", "countermeasure", "blur", "gold",
            "target_present", "target_position", "choice", "correct", "skilled"]


def test_the_database_and_the_export_give_the_same_answers(app, database, tmp_path, bundle_dir):
    study = new_study(app, bundle_dir, name="loaded", hit_size=6, gold_items=4, gold_per_hit=1,
                      skilled_min_tasks=3, skilled_min_accuracy=0.0)
    answer_lineups(app, study, "A", 7, lambda k, c: c[k % 5])
    answer_lineups(app, study, "B", 2, lambda k, c: "absent")
    answer_lineups(app, study, "C", 5, lambda k, c: c[0])
    with app.extensions["survey_db"]() as session:
        rows = answer_rows(session, session.merge(study))
    (tmp_path / "answers.csv").write_text(to_csv(rows))
    from_db = from_database(database, "loaded")
    exported = from_export(tmp_path / "answers.csv")
    assert len(from_db) == len(exported) == 14
    pd.testing.assert_frame_equal(from_db[COMPARED], exported[COMPARED], check_dtype=False)
    assert (abs(from_db["response_ms"] - exported["response_ms"]) <= 1).all()
    assert set(from_db.loc[from_db["worker"] == "B", "choice"]) == {"absent"}
    assert from_db["chose_absent"].sum() == 2 and from_db["gold"].sum() >= 1  # A answered a whole HIT
    assert set(from_db.loc[from_db["worker"] == "B", "skilled"]) == {False}  # two tasks, fewer than three
    assert set(from_db.loc[from_db["worker"] == "A", "skilled"]) == {True}


def test_the_loader_cannot_write_and_names_what_is_missing(app, database, tmp_path, bundle_dir):
    new_study(app, bundle_dir, name="real")
    engine = read_only_engine(database)
    with engine.connect() as connection, pytest.raises(DBAPIError):
        connection.execute(text("DELETE FROM answer"))
    engine.dispose()
    with pytest.raises(AnswersError, match="no study named 'nope'.*real"):
        from_database(database, "nope")
    assert from_database(database, "real").empty  # a study nobody has answered yet
    bad = tmp_path / "bad.csv"
    bad.write_text("study,run\nx,1\n")
    with pytest.raises(AnswersError, match="not a survey export: no column worker"):
        from_export(bad)
    with pytest.raises(AnswersError, match="no export at"):
        from_export(tmp_path / "missing.csv")
