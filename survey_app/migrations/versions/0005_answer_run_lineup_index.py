"""an index on answer (run_id, lineup_id): handing out a HIT counts each lineup's answers in the run, and with this
index that count reads the index alone instead of every answer row of the run (it runs inside the writer lock)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_answer_run_lineup', 'answer', ['run_id', 'lineup_id'])


def downgrade() -> None:
    op.drop_index('ix_answer_run_lineup', table_name='answer')
