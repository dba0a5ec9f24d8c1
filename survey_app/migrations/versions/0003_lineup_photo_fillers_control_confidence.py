"""what each lineup shows and each answer says: the target's photo and its role, the filler policy's record,
mock-witness (control) items, and the worker's confidence

Plain ALTER TABLE ... ADD/DROP COLUMN, as in 0002 (rebuilding a table, as Alembic's batch mode would, drops a table
that others reference). Existing lineups keep NULL for the photo (it was not recorded), existing items are not
controls, and existing answers have no confidence.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('item', sa.Column('is_control', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('lineup', sa.Column('photo', sa.String(length=200), nullable=True))
    op.add_column('lineup', sa.Column('photo_role', sa.String(length=16), nullable=True))
    op.add_column('lineup', sa.Column('fillers', sa.JSON(), nullable=True))
    op.add_column('answer', sa.Column('confidence', sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column('answer', 'confidence')
    op.drop_column('lineup', 'fillers')
    op.drop_column('lineup', 'photo_role')
    op.drop_column('lineup', 'photo')
    op.drop_column('item', 'is_control')
