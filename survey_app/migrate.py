"""Alembic, driven from code: the schema of a database comes only from ``survey_app/migrations/``, which ships
inside the installed package (so a non-editable install can upgrade a database)."""
from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from .db import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class SchemaOutOfDate(RuntimeError):
    pass


def alembic_config(url: str) -> AlembicConfig:
    if not (MIGRATIONS / "env.py").is_file():
        raise RuntimeError(f"the Alembic migrations are not at {MIGRATIONS}: the installation is incomplete")
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head() -> str:
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


def current(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def check_current(url: str) -> None:
    """Refuse a database that is behind (or ahead of) the code's migrations, naming the command that fixes it."""
    at, wanted = current(url), head()
    if at != wanted:
        raise SchemaOutOfDate(f"the database {_redacted(url)} is at schema revision {at or 'none (empty)'}, "
                              f"this version of mi-harness needs {wanted}: run `mi-harness db upgrade`")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
