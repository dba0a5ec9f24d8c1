"""The survey's fixtures (a real bundle, migrated SQLite and PostgreSQL databases, the app), reused: the
analysis is tested on studies the survey really ran."""
from tests.survey_app.conftest import app, bundle_dir, database, empty_database  # noqa: F401
