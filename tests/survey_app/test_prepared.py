"""A prepared statement gives what SQLAlchemy's own execution gives (values, types, errors, events), in the
transaction its connection is in, on SQLite and on the machine's PostgreSQL."""
import json
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    bindparam,
    cast,
    event,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from survey_app import db as database
from survey_app.db import make_engine
from survey_app.group_commit import answer_writer
from survey_app.hits import TASK_PAGE, TASK_PAGE_PREPARED
from survey_app.models import Worker, utcnow
from survey_app.prepared import Prepared

from .conftest import join, new_study

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True), Column("name", String(20), unique=True),
               Column("at", DateTime), Column("doc", JSON), Column("flag", Boolean))
ADD = Prepared(insert(things).values(id=bindparam("id"), name=bindparam("name"), at=bindparam("at"),
                                     doc=bindparam("doc"), flag=bindparam("flag")).returning(things.c.id, things.c.at))
LATER = select(things.c.name, things.c.at, things.c.doc, things.c.flag).where(things.c.at > bindparam("after")) \
    .order_by(things.c.id)


@pytest.fixture
def engine(empty_database):
    engine = make_engine(empty_database)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


def add(connection, id_, name, at, doc=None, flag=False):
    return ADD.all(connection, {"id": id_, "name": name, "at": at, "doc": doc, "flag": flag})


def test_rows_and_types_are_sqlalchemys(engine):
    when = datetime(2026, 12, 6, 17, 5, 4, 123456)
    with engine.begin() as connection:
        assert add(connection, 1, "a", when, {"k": [1, "x"]}, True) == [(1, when)]
        add(connection, 2, "b", datetime(2020, 1, 1), None, False)
    with engine.connect() as connection:
        params = {"after": datetime(2021, 1, 1)}
        prepared = Prepared(LATER).all(connection, params)
        assert prepared == [tuple(row) for row in connection.execute(LATER, params)]
        assert prepared == [("a", when, {"k": [1, "x"]}, True)] and prepared[0].flag is True
        assert prepared[0].at == when and prepared[0]._fields == ("name", "at", "doc", "flag")


def test_it_runs_in_the_connections_transaction(engine):
    with engine.connect() as connection:
        connection.begin()
        add(connection, 1, "a", utcnow())
        connection.rollback()
        assert connection.execute(select(things.c.id)).all() == []


def test_a_write_on_a_connection_without_a_transaction_begins_one_as_sqlalchemy_would(engine):
    """Not left to the driver: on PostgreSQL its own transaction would be rolled back unseen when the connection
    goes back to the pool, and on SQLite the write would commit alone, outside the writer lock."""
    for keep in (False, True):
        with engine.connect() as connection:
            add(connection, 1, "a", utcnow())
            assert connection.in_transaction()
            connection.commit() if keep else connection.rollback()
        with engine.connect() as connection:
            assert connection.execute(select(things.c.id)).scalars().all() == ([1] if keep else [])
    with engine.connect() as connection:  # a SELECT starts none (the reader's statement is its own snapshot)
        Prepared(LATER).all(connection, {"after": datetime(2000, 1, 1)})
        assert not connection.in_transaction()


def test_a_column_whose_processing_needs_the_drivers_type_code_is_processed(engine):
    """psycopg's Numeric processor reads the type code the driver describes the column with."""
    with engine.begin() as connection:
        add(connection, 7, "a", utcnow())
    price = select(cast(things.c.id, Numeric(10, 2)).label("price"), (things.c.id * 1.5).label("half"))
    with engine.connect() as connection:
        prepared = Prepared(price).all(connection, {})
        assert prepared == [tuple(row) for row in connection.execute(price)] == [(Decimal("7.00"), 10.5)]


def test_a_driver_error_is_sqlalchemys_and_events_see_the_statement(engine):
    seen = []
    event.listen(engine, "before_cursor_execute", lambda conn, cursor, statement, *rest: seen.append(statement))
    with engine.connect() as connection:
        connection.begin()
        add(connection, 1, "a", utcnow())
        with pytest.raises(IntegrityError):  # the unique name: what the group commit takes for a duplicate
            add(connection, 2, "a", utcnow())
    assert len(seen) == 2 and all(statement.lstrip().upper().startswith("INSERT") for statement in seen)


def test_the_answer_writer_takes_prepared_statements(engine):
    """Stored, duplicate (a unique key), matched nothing: the three outcomes the answer path tells apart."""
    value = bindparam("id", type_=Integer)
    store = Prepared(insert(things).from_select(["id", "name"], select(value, bindparam("name", type_=String))
                                                .where(value >= 0)).returning(things.c.id))
    writer = answer_writer(engine)
    outcomes = [writer.store(store, {"id": i, "name": name}) for i, name in ((1, "a"), (2, "a"), (-1, "b"))]
    assert outcomes == [True, False, None]
    with engine.connect() as connection:
        assert connection.execute(select(things.c.id)).scalars().all() == [1]


def test_the_task_pages_statement_prepared_is_the_same_as_run_by_sqlalchemy(app, client, db, bundle_dir):
    study = new_study(app, bundle_dir, hit_size=2)
    join(client, study, "W1")
    client.get(f"/s/{study.slug}/task")  # hands out the HIT
    join(app.test_client(), study, "W2")  # a worker without a HIT: one row, no task
    workers = dict(db.execute(select(Worker.external_id, Worker.id)).all())
    with app.app_context(), database.reader().connect() as connection:
        # a task's five faces; a worker without a HIT (one row, no task); a study that is not theirs (no row)
        for worker, slug, rows in (("W1", study.slug, 5), ("W2", study.slug, 1), ("W1", "nope", 0)):
            params = {"worker_id": workers[worker], "slug": slug, "now": utcnow()}
            prepared = TASK_PAGE_PREPARED.all(connection, params)
            assert prepared == [tuple(row) for row in connection.execute(TASK_PAGE, params)]
            assert len(prepared) == rows
            if prepared:
                assert prepared[0].blocked is False and json.loads(prepared[0].settings)["hit_size"] == 2


def test_a_python_side_default_it_cannot_fill_is_refused_by_name(engine):
    stamped = Table("stamped", MetaData(), Column("id", Integer, primary_key=True),
                    Column("at", DateTime, default=utcnow))
    stamped.create(engine)
    with engine.begin() as connection, pytest.raises(ValueError, match=r"defaults \(at\)"):
        Prepared(insert(stamped).values(id=bindparam("id")).returning(stamped.c.id)).all(connection, {"id": 1})
    with engine.begin() as connection:  # with the value given, it runs
        given = Prepared(insert(stamped).values(id=bindparam("id"), at=bindparam("when")).returning(stamped.c.at))
        assert given.all(connection, {"id": 1, "when": datetime(2026, 1, 2)}) == [(datetime(2026, 1, 2),)]


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
def test_a_statement_planned_each_run_is_never_prepared_on_postgresql_and_the_others_are(engine):
    with engine.begin() as connection:
        add(connection, 1, "a", datetime(2026, 1, 1))
    statements = [Prepared(select(things.c.name.label(label)).where(things.c.at > bindparam("after")),
                           planned_each_run=label == "planned_each_run") for label in ("planned_each_run", "prepared")]
    with engine.connect() as connection:
        for _ in range(8):  # psycopg prepares a statement at its fifth run
            for statement in statements:
                assert statement.all(connection, {"after": datetime(2020, 1, 1)}) == [("a",)]
        held = connection.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars().all()
    assert [label for label in ("planned_each_run", "prepared") if any(f"AS {label}" in sql for sql in held)] \
        == ["prepared"], held


@pytest.mark.parametrize("empty_database", ["postgresql"], indirect=True)
def test_a_write_on_the_autocommit_engine_is_its_own_transaction_and_begins_none(empty_database):
    """The answers' engine on PostgreSQL (db.make_engine(url, autocommit=True)): SQLAlchemy is told nothing to commit,
    and the row is in the database as soon as the statement returns."""
    engine = make_engine(empty_database, autocommit=True)
    try:
        metadata.create_all(engine)
        with engine.connect() as connection, engine.connect() as other:
            add(connection, 1, "a", utcnow())
            assert not connection.in_transaction()
            assert other.execute(select(things.c.name)).scalars().all() == ["a"]
        with engine.connect() as connection:
            assert connection.execute(select(things.c.name)).scalars().all() == ["a"]
    finally:
        engine.dispose()
