"""which recruitment platform a HIT came through: Prolific's or MTurk's ids for it, and where MTurk takes the
finished assignment; and the browser a worker consented in

Plain ALTER TABLE ... ADD COLUMN, as in 0002 and 0003. Existing HITs came by a plain (lab) link: all NULL; existing
workers have no recorded browser (they continue where their session cookie is, or with their resume code).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('hit', sa.Column('platform', sa.String(length=16), nullable=True))
    op.add_column('hit', sa.Column('platform_assignment', sa.String(length=120), nullable=True))
    op.add_column('hit', sa.Column('platform_hit', sa.String(length=120), nullable=True))
    op.add_column('hit', sa.Column('submit_to', sa.String(length=200), nullable=True))
    op.add_column('worker', sa.Column('browser', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('worker', 'browser')
    op.drop_column('hit', 'submit_to')
    op.drop_column('hit', 'platform_hit')
    op.drop_column('hit', 'platform_assignment')
    op.drop_column('hit', 'platform')
