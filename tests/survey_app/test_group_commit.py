"""Answers that arrive while a commit runs share the next one (SQLite), each with its own outcome, and a failed
commit fails every answer it carried: nothing is acknowledged that was not stored."""
import threading
import time

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, event, insert, select

from survey_app.db import make_engine
from survey_app.group_commit import DirectCommit, GroupCommit, answer_writer

metadata = MetaData()
rows = Table("rows", metadata, Column("id", Integer, primary_key=True))


def store_statement():
    """INSERT ... SELECT :id WHERE :id >= 0 RETURNING id: a negative id matches nothing (a refused answer), a repeated
    one breaks the primary key (a duplicate)."""
    value = bindparam("id", type_=Integer)
    return insert(rows).from_select(["id"], select(value).where(value >= 0)).returning(rows.c.id)


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'g.db'}")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def stored(engine) -> list[int]:
    with engine.connect() as connection:
        return sorted(connection.scalars(select(rows.c.id)))


def run_at_once(writer, ids: list[int]) -> list:
    """Each id stored from its own thread, all started together; the outcome or the exception, in order."""
    results, start = [None] * len(ids), threading.Barrier(len(ids))
    statement = store_statement()

    def one(k):
        start.wait()
        try:
            results[k] = writer.store(statement, {"id": ids[k]})
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[k] = exc

    threads = [threading.Thread(target=one, args=(k,)) for k in range(len(ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def slow_commits(engine, seconds: float, fail: bool = False) -> tuple[list, callable]:
    """Make each commit take ``seconds`` (so answers queue behind it) and, with ``fail``, fail. Returns the list that
    counts commits and the function that ends all this."""
    commits = []

    def _commit(connection):
        commits.append(1)
        time.sleep(seconds)
        if fail:
            raise RuntimeError("the disk is full")

    event.listen(engine, "commit", _commit)
    return commits, lambda: event.remove(engine, "commit", _commit)


def test_answers_sent_during_a_commit_share_the_next_and_each_gets_its_own_outcome(engine):
    commits, _ = slow_commits(engine, 0.05)
    sent = []
    event.listen(engine, "before_cursor_execute", lambda *args: sent.append(args[2].split()[0].upper()))
    ids = [*range(1, 21), 5, 6, -1, -2]  # 20 answers, two duplicates, two that match nothing
    results = run_at_once(GroupCommit(engine), ids)
    assert results.count(True) == 20 and results.count(False) == 2 and results.count(None) == 2
    assert [r for i, r in zip(ids, results) if i < 0] == [None, None]
    assert stored(engine) == list(range(1, 21))
    assert len(commits) < 12, f"{len(commits)} commits for 24 answers: they were not grouped"
    # SQLite undoes a duplicate's statement alone: the answers sharing its transaction need no savepoints
    assert "SAVEPOINT" not in sent and sent.count("INSERT") == 24


def test_a_failed_commit_fails_every_answer_it_carried_and_stores_none(engine):
    _, recover = slow_commits(engine, 0.02, fail=True)
    writer = GroupCommit(engine)
    results = run_at_once(writer, list(range(1, 11)))
    assert all(isinstance(r, RuntimeError) for r in results), results
    assert stored(engine) == []
    recover()  # the disk recovers: no transaction or writer lock was left behind
    assert run_at_once(writer, list(range(1, 11))) == [True] * 10 and stored(engine) == list(range(1, 11))


def test_one_answer_alone_is_committed_at_once_and_a_repeat_is_refused(engine):
    writer = GroupCommit(engine)
    statement = store_statement()
    assert writer.store(statement, {"id": 7}) is True
    assert stored(engine) == [7]  # committed before store returned: another connection sees it
    assert writer.store(statement, {"id": 7}) is False
    assert writer.store(statement, {"id": -7}) is None
    assert stored(engine) == [7]


def test_direct_commit_has_the_same_outcomes(engine):
    writer = DirectCommit(engine)
    statement = store_statement()
    assert [writer.store(statement, {"id": i}) for i in (3, 3, -3)] == [True, False, None]
    assert stored(engine) == [3]


def test_on_postgresql_an_answer_is_one_autocommitted_statement_and_durable_when_stored(empty_database):
    """The machine's PostgreSQL (the SQLite run of this parametrised fixture checks the grouped writer instead)."""
    engine, single = make_engine(empty_database), make_engine(empty_database, autocommit=True)  # as the app's
    try:
        metadata.create_all(engine)
        writer = answer_writer(single)
        sent = []
        event.listen(writer.engine, "before_cursor_execute", lambda *args: sent.append(args[2]))
        statement = store_statement()
        outcomes = [writer.store(statement, {"id": i}) for i in (4, 4, -4)]
        assert outcomes == [True, False, None] and stored(engine) == [4]  # another connection sees it at once
        if engine.dialect.name == "postgresql":
            assert isinstance(writer, DirectCommit) and len(sent) == 3
            with writer.engine.connect() as connection:  # psycopg sends no BEGIN and no COMMIT around them
                assert connection.connection.dbapi_connection.autocommit is True
        else:
            assert isinstance(writer, GroupCommit)
    finally:
        metadata.drop_all(engine)
        engine.dispose()
        single.dispose()


def test_the_apps_answers_and_reads_on_postgresql_are_in_autocommit_and_its_sessions_not(app):
    """The answer and the pages that only read run single statements on an engine of their own, always in
    autocommit; the request's session (hand-outs, consent, the admin) keeps transactions."""
    from survey_app import db as database

    with app.app_context():
        engines = {"answers": app.extensions["survey_answers"].engine, "reader": database.reader(),
                   "session": app.extensions["survey_engine"]}
        modes = {}
        for name, engine in engines.items():
            with engine.connect() as connection:
                modes[name] = getattr(connection.connection.dbapi_connection, "autocommit", None)
    if app.extensions["survey_engine"].dialect.name == "postgresql":
        assert modes == {"answers": True, "reader": True, "session": False}
    else:  # pysqlite's own transaction handling is off (db.make_engine issues BEGIN itself)
        assert isinstance(app.extensions["survey_answers"], GroupCommit)
