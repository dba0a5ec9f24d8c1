"""The schema comes from the migrations alone, they go both ways, and the app refuses a database behind them."""
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from survey_app import create_app
from survey_app.db import make_engine
from survey_app.migrate import SchemaOutOfDate, current, downgrade, head, upgrade
from survey_app.models import Base

TABLES = {"admin", "meta", "study", "image", "item", "lineup", "lineup_face", "run", "worker", "hit", "assignment",
          "answer", "run_lineup"}


def tables(url):
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_matches_the_models_and_downgrade_removes_everything(empty_database):
    assert tables(empty_database) == set() and current(empty_database) is None
    upgrade(empty_database)
    assert current(empty_database) == head()
    assert tables(empty_database) == TABLES
    engine = make_engine(empty_database)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection, opts={"compare_type": True}),
                                       Base.metadata)
    engine.dispose()
    assert differences == [], "the models and the migrations disagree: write a migration"
    downgrade(empty_database, "base")
    assert tables(empty_database) == set() and current(empty_database) is None


def test_the_app_refuses_a_database_behind_the_migrations(empty_database):
    with pytest.raises(SchemaOutOfDate, match="mi-harness db upgrade"):
        create_app({"DATABASE_URL": empty_database})
    upgrade(empty_database)
    create_app({"DATABASE_URL": empty_database})  # at head: starts
