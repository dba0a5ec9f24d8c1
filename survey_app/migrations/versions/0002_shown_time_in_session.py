"""the time a lineup was first shown moves from assignment.shown_at to the worker's signed session

The task page no longer writes: the answer's own transaction stores answer.shown_at from the signed session
cookie (survey_app/shown.py), so assignment.shown_at is never written or read. Downgrading brings the column
back, empty. Plain ALTER TABLE ... DROP/ADD COLUMN (SQLite 3.35 and later has both): rebuilding the table, as
Alembic's batch mode would, drops a table that answers reference.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_column('assignment', 'shown_at')


def downgrade() -> None:
    op.add_column('assignment', sa.Column('shown_at', sa.DateTime(), nullable=True))
