"""Alembic environment: the URL comes from the caller (survey_app.migrate) or $MI_SURVEY_DATABASE_URL."""
from __future__ import annotations

import os

from alembic import context

from survey_app.db import make_engine
from survey_app.models import Base

config = context.config
url = config.attributes.get("database_url") or os.environ.get("MI_SURVEY_DATABASE_URL")
if not url:
    raise RuntimeError("no database URL: set MI_SURVEY_DATABASE_URL or use `mi-harness db upgrade`")
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
