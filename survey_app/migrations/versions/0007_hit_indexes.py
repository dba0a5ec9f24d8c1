"""the HIT indexes: a page, an answer and a hand-out read one worker's HITs, however many HITs the study has

Two indexes, neither partial, replace three: ``ix_hit_open`` (run_id, completed_at, expires_at), the run's
unfinished HITs by expiry, was a partial index on (run_id, expires_at) WHERE completed_at IS NULL and takes the place
of ``ix_hit_run_id``; ``ix_hit_worker`` (worker_id, run_id, completed_at) takes that of ``ix_hit_worker_id``. On
tables without statistics (a new study, a server without autovacuum) PostgreSQL took the partial index, or the one on
the run alone, for the cheaper path, and read every open HIT or every HIT of the run to find one: for the active HIT
of every task page, the check of every answer, the close after a HIT's last answer, and a hand-out's look at the run.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""
import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index('ix_hit_open', table_name='hit')
    op.drop_index('ix_hit_run_id', table_name='hit')
    op.drop_index('ix_hit_worker_id', table_name='hit')
    op.create_index('ix_hit_open', 'hit', ['run_id', 'completed_at', 'expires_at'])
    op.create_index('ix_hit_worker', 'hit', ['worker_id', 'run_id', 'completed_at'])


def downgrade() -> None:
    op.drop_index('ix_hit_worker', table_name='hit')
    op.drop_index('ix_hit_open', table_name='hit')
    op.create_index('ix_hit_worker_id', 'hit', ['worker_id'])
    op.create_index('ix_hit_run_id', 'hit', ['run_id'])
    op.create_index('ix_hit_open', 'hit', ['run_id', 'expires_at'], postgresql_where=sa.text('completed_at IS NULL'),
                    sqlite_where=sa.text('completed_at IS NULL'))
