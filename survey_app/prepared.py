"""Hot statements compiled once per dialect and run on the driver's connection, past SQLAlchemy's per-statement work.

SQLAlchemy runs each execution through a cache lookup whose key it builds by walking the whole statement, an
execution context, and a result object: for the task page's one SELECT that was about 110 microseconds on SQLite, the
query itself 25. The hottest statements keep their Core definition (hits.py), and ``Prepared`` compiles each once
per dialect with SQLAlchemy, then runs the SQL with SQLAlchemy's own bind and result processing for each column's
type (public ``TypeEngine`` API) on the DBAPI connection underneath a SQLAlchemy ``Connection``. The Connection
stays the owner of the transaction: on SQLite the reader's statement runs outside any transaction (its own
snapshot), and on PostgreSQL in the autocommit the reader's Connection set. Driver errors are re-raised as
SQLAlchemy's, so the app's handlers (a 503 for a database that is down or busy) see what they always saw, and the
engine's ``before_cursor_execute`` and ``after_cursor_execute`` listeners are called (with no execution context, and
what they return is not used).
"""
from __future__ import annotations

import threading
from collections import namedtuple
from dataclasses import dataclass

from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import DBAPIError

AUTOCOMMIT_ENGINE = "survey_autocommit"
"""The execution option of an engine whose connections are always in autocommit (``db.make_engine(url,
autocommit=True)``): there a write is its own transaction and ``Prepared`` begins none. SQLAlchemy's own execution
begins one anyway, a Python object made and committed around every answer without a word to the database, and the
engine's isolation level is not among a connection's execution options, so the engine says it this way."""


def inserts_in_with(dialect: Dialect) -> bool:
    """Whether the database runs an INSERT inside a statement's WITH (PostgreSQL does, SQLite does not): the one rule
    behind every statement that stores and reads, or stores twice, in one round trip."""
    return dialect.name == "postgresql"


@dataclass
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # positional paramstyles: the parameters in order; None: named
    compiled: object  # SQLAlchemy's compiled statement: construct_params adds the statement's own bound values
    binds: dict  # parameter name -> the type's bind processor
    row: type
    execute: dict  # the driver's options for each run (psycopg: prepare=False for a statement planned each run)
    results: tuple | None = None  # (column's place, its type's result processor) for the columns that have one; set
    # at the first run, from the driver's description of the columns, which some processors need (psycopg's Numeric)


class Prepared:
    """``statement`` (a Core SELECT, or an INSERT or UPDATE with RETURNING), compiled at its first run on each
    dialect and driver. A SELECT runs within whatever transaction ``connection`` is in, and starts none (on SQLite the
    reader's statement is its own snapshot); an INSERT or UPDATE, or a SELECT that ``writes`` (an INSERT in its WITH),
    begins one where ``connection`` has none and is not in autocommit, as SQLAlchemy's own execution would, so that a
    write never escapes a transaction. ``planned_each_run``: psycopg never prepares it, so PostgreSQL plans it for
    each run's values rather than settling on a generic plan, for a statement whose cheap path depends on them."""

    def __init__(self, statement, writes: bool | None = None, planned_each_run: bool = False) -> None:
        self.statement = statement
        self.writes = statement.is_dml if writes is None else writes
        self.planned_each_run = planned_each_run
        self._compiled: dict[tuple[str, str], _Compiled] = {}
        self._lock = threading.Lock()

    def all(self, connection: Connection, params: dict) -> list:
        """The statement's rows (named tuples, values as SQLAlchemy would give them) on ``connection``."""
        dialect = connection.dialect
        compiled = self._compiled.get((dialect.name, dialect.driver)) or self._compile(dialect)
        if self.writes and not connection.in_transaction():
            options = connection.get_execution_options()
            if options.get("isolation_level") != "AUTOCOMMIT" and not options.get(AUTOCOMMIT_ENGINE):
                connection.begin()  # on SQLite BEGIN IMMEDIATE, the writer lock (db.py)
        values = compiled.compiled.construct_params(params)
        for name, process in compiled.binds.items():
            values[name] = process(values[name])
        arguments = values if compiled.names is None else tuple(values[name] for name in compiled.names)
        driver = connection.connection.driver_connection
        cursor = driver.cursor()
        events = connection.dispatch  # the engine's cursor events still see the statement (logging, tests)
        try:
            for listener in events.before_cursor_execute:
                listener(connection, cursor, compiled.sql, arguments, None, False)
            cursor.execute(compiled.sql, arguments, **compiled.execute)
            for listener in events.after_cursor_execute:
                listener(connection, cursor, compiled.sql, arguments, None, False)
            rows = cursor.fetchall()
            if compiled.results is None:
                compiled.results = self._results(dialect, cursor.description)
        except dialect.loaded_dbapi.Error as exc:
            raise DBAPIError.instance(compiled.sql, arguments, exc, dialect.loaded_dbapi.Error) from exc
        finally:
            cursor.close()
        make, results = compiled.row._make, compiled.results
        if not results:
            return [make(row) for row in rows]
        made = []
        for row in rows:
            row = list(row)
            for i, process in results:
                row[i] = process(row[i])
            made.append(make(row))
        return made

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        if compiled.insert_prefetch or compiled.update_prefetch:  # SQLAlchemy computes these per execution
            names = ", ".join(column.name for column in (*compiled.insert_prefetch, *compiled.update_prefetch))
            raise ValueError(f"a prepared statement cannot fill Python-side column defaults ({names}): "
                             "give those columns a value in the statement")
        binds = {}
        escaped = getattr(compiled, "escaped_bind_names", None) or {}
        for bind, name in compiled.bind_names.items():  # the names construct_params gives, as SQLAlchemy's own
            process = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds[escaped.get(name, name)] = process
        names = [str(column.key) for column in self.statement.exported_columns]  # unnamed (a count): _<its place>
        execute = {"prepare": False} if self.planned_each_run and dialect.driver == "psycopg" else {}
        made = _Compiled(str(compiled), tuple(compiled.positiontup) if compiled.positional else None, compiled,
                         binds, namedtuple("Row", names, rename=True), execute)
        with self._lock:
            self._compiled[(dialect.name, dialect.driver)] = made
        return made

    def _results(self, dialect: Dialect, description) -> tuple:
        """Each column's result processor, given the driver's type code for it, as SQLAlchemy's result does."""
        columns = list(self.statement.exported_columns)  # a SELECT's columns, or what an INSERT or UPDATE returns
        processors = (column.type.dialect_impl(dialect).result_processor(dialect, described[1])
                      for column, described in zip(columns, description))
        return tuple((i, process) for i, process in enumerate(processors) if process is not None)


def first(connection: Connection, statement, params: dict):
    """The first row of ``statement`` (a ``Prepared`` one, or any Core statement) on ``connection``, or None."""
    if isinstance(statement, Prepared):
        rows = statement.all(connection, params)
        return rows[0] if rows else None
    return connection.execute(statement, params).first()
