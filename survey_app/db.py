"""Engines and sessions: SQLite in WAL mode with a busy timeout, or PostgreSQL through psycopg.

SQLite transactions start with BEGIN IMMEDIATE: a request that reads and then writes (claiming lineups
for a HIT, say) holds the write lock from its first statement, so two processes cannot both read the
same free slots and then both take them, and nobody meets SQLITE_BUSY half-way through.
"""
from __future__ import annotations

import secrets

from flask import current_app, g
from sqlalchemy import create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .models import Meta

BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})

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
        def _begin_immediate(connection):
            if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def init_app(app) -> None:
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["survey_db"] = sessionmaker(engine, expire_on_commit=False)
    app.extensions["survey_engine"] = engine
    app.teardown_appcontext(_close_session)


def session() -> Session:
    """The request's database session, opened on first use and closed (rolled back if uncommitted) at teardown."""
    if "db" not in g:
        g.db = current_app.extensions["survey_db"]()
    return g.db


def _close_session(_exc) -> None:
    db = g.pop("db", None)
    if db is not None:
        db.close()


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
