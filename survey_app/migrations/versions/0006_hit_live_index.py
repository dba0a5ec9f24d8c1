"""a partial index on the run's unfinished HITs (run_id, expires_at): handing out a HIT counts the open tasks of the
live HITs, and without it read every HIT the run ever had

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
from alembic import op
from sqlalchemy import text

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

UNFINISHED = text("completed_at IS NULL")


def upgrade() -> None:
    op.create_index('ix_hit_live', 'hit', ['run_id', 'expires_at'], sqlite_where=UNFINISHED,
                    postgresql_where=UNFINISHED)


def downgrade() -> None:
    op.drop_index('ix_hit_live', table_name='hit')
