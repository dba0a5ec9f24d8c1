"""Engines and sessions: SQLite in WAL mode with a busy timeout, or PostgreSQL through psycopg.

SQLite transactions start with BEGIN IMMEDIATE: a request that reads and then writes (claiming lineups
for a HIT, say) holds the write lock from its first statement, so two processes cannot both read the
same free slots and then both take them, and nobody meets SQLITE_BUSY half-way through.

A page that only reads (the task page a worker loads or reloads) opens its connection with the execution
option ``survey_read_only``: on SQLite a plain deferred BEGIN, which in WAL mode reads a snapshot beside the writer
and never queues for the lock; on PostgreSQL autocommit, so each statement reads its own snapshot and a page costs
its SELECTs alone, not a BEGIN and a ROLLBACK round trip besides (the pages that read compose no statements
that must agree: the task page is one statement, and images never change).

SQLite's own wait for that lock is a sleep-and-retry loop (1, 2, 5, 10 ... 100 ms), which under a crowd
leaves the CPUs idle while requests queue; so the server's connections also take an advisory lock on
``<database>.writelock`` (flock) for the length of each transaction, which the kernel hands on the moment
it is released. Other programs writing the file (the CLI, a backup) still meet the busy timeout.
"""
from __future__ import annotations

import os
import secrets
import sqlite3

try:
    import fcntl
except ImportError:  # Windows: the busy timeout alone
    fcntl = None

from flask import abort, current_app, g
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .group_commit import answer_writer
from .models import Meta
from .prepared import AUTOCOMMIT_ENGINE

BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "survey_read_only"


class _LockedConnection(sqlite3.Connection):
    """A pysqlite connection that holds ``<database>.writelock`` from BEGIN to COMMIT or ROLLBACK."""

    def __init__(self, database, *args, **kwargs):
        super().__init__(database, *args, **kwargs)
        path = os.fspath(database)
        self._lock_fd = None
        if fcntl is not None and path != ":memory:" and not path.startswith("file:"):
            self._lock_fd = os.open(path + ".writelock", os.O_RDWR | os.O_CREAT, 0o600)
        self._locked = False

    def begin_immediate(self) -> None:
        if self._lock_fd is not None and not self._locked:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            self._locked = True
        self.execute("BEGIN IMMEDIATE")

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


def make_engine(url: str, autocommit: bool = False) -> Engine:
    """``autocommit`` (PostgreSQL): an engine whose connections are always in autocommit, for statements that are
    each their own transaction; SQLite ignores it."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False,
                                                  "factory": _LockedConnection})

        @event.listens_for(engine, "connect")
        def _sqlite_settings(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged answer survives a power cut
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection):
            options = connection.get_execution_options()
            if options.get("isolation_level") == "AUTOCOMMIT":
                return
            if options.get(READ_ONLY):
                connection.connection.dbapi_connection.execute("BEGIN")
            else:
                connection.connection.dbapi_connection.begin_immediate()

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    # No pre-ping (a round trip on every checkout): after a server restart the pool drops the dead connection
    # on its first error, which reaches the client as a 503 "retry", and the retry gets a fresh one. Last in, first
    # out: a process's few busy connections are reused, so each soon runs every statement often enough for psycopg
    # to prepare it (its fifth run) and PostgreSQL stops planning it anew, where first in, first out spread the
    # statements over all ten.
    pool = {"pool_size": 10, "max_overflow": 20, "pool_recycle": 3600, "pool_use_lifo": True}
    if not autocommit:
        return create_engine(url, **pool)
    # In autocommit no transaction is ever left open on a connection: nothing to roll back on its return.
    engine = create_engine(url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None, **pool)
    return engine.execution_options(**{AUTOCOMMIT_ENGINE: True})


def init_app(app) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["survey_db"] = sessionmaker(engine, expire_on_commit=False)
    app.extensions["survey_engine"] = engine
    # On PostgreSQL the pages that only read, and the answers (one statement each), use an engine of their own in
    # autocommit: the same engine's connections switched to autocommit for them were switched back on every return
    # to its pool, and again on the next checkout.
    single = make_engine(app.config["DATABASE_URL"], autocommit=True) if engine.dialect.name == "postgresql" else engine
    app.extensions["survey_reader"] = single.execution_options(**{READ_ONLY: True})
    app.extensions["survey_answers"] = answer_writer(single)
    app.teardown_appcontext(_close_session)


def reader() -> Engine:
    """The engine for requests that only read: they never take the writer lock (see the module's docstring)."""
    return current_app.extensions["survey_reader"]


def session() -> Session:
    """The request's database session, opened on first use and closed (rolled back if uncommitted) at teardown."""
    if "db" not in g:
        g.db = current_app.extensions["survey_db"]()
    return g.db


def read_session() -> Session:
    """A session for a request that only reads: like ``session()``, but outside the writer lock (``reader``)."""
    if "read_db" not in g:
        g.read_db = Session(reader(), expire_on_commit=False)
    return g.read_db


def _close_session(_exc) -> None:
    for name in ("db", "read_db"):
        db = g.pop(name, None)
        if db is not None:
            db.close()


def commit_or_abort(action, refused: type[Exception], status: int = 400):
    """Run ``action()`` in the request's session and commit; if it raises ``refused``, roll back and answer
    ``status`` with its message. Returns what ``action`` returned."""
    db = session()
    try:
        result = action()
    except refused as exc:
        db.rollback()
        abort(status, str(exc))
    db.commit()
    return result


def secret_key(factory: sessionmaker) -> str:
    """The key that signs cookies, shared by every server process because it lives in the database."""
    with factory() as db:
        row = db.get(Meta, "secret_key")
        if row is None:
            db.add(Meta(key="secret_key", value=secrets.token_hex(32)))
            try:
                db.commit()
            except IntegrityError:  # another process created it first
                db.rollback()
            row = db.scalars(select(Meta).where(Meta.key == "secret_key")).one()
        return row.value
