"""how many tasks of each lineup a run has handed out, kept by the database itself, so that handing out a HIT no
longer counts every answer and every open task of the run (it took longer with every answer, and on SQLite it does
so inside the writer lock)

- ``run_lineup``: per run and lineup, ``handed``, the number of assignments (tasks) of the lineup in the run's HITs.
  Triggers keep it: +1 for each assignment inserted, -1 for each deleted, whatever deletes it (a HIT deleted with
  its assignments is counted by a trigger on the HIT, before its assignments go). Filled from the assignments that
  are there at upgrade.
- ``ix_hit_open``: HITs not completed, by run and expiry (a partial index): the hand-out subtracts the unanswered
  tasks of the run's expired HITs, which only such HITs have.
- The answer's indexes on ``run_id`` and on ``(run_id, lineup_id)`` go: the first is covered by the answer's unique
  key (run_id, worker_id, lineup_id), and the second served only the count of answers this replaces; each index is
  written with every answer.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

POSTGRESQL = [
    """CREATE FUNCTION run_lineup_assignment() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO run_lineup (run_id, lineup_id, handed)
            SELECT hit.run_id, NEW.lineup_id, 1 FROM hit WHERE hit.id = NEW.hit_id
            ON CONFLICT (run_id, lineup_id) DO UPDATE SET handed = run_lineup.handed + 1;
            RETURN NEW;
        END IF;
        -- A HIT's own deletion counted its assignments already (run_lineup_hit): it is gone by now.
        UPDATE run_lineup SET handed = run_lineup.handed - 1 FROM hit
        WHERE hit.id = OLD.hit_id AND run_lineup.run_id = hit.run_id AND run_lineup.lineup_id = OLD.lineup_id;
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER run_lineup_assignment AFTER INSERT OR DELETE ON assignment
    FOR EACH ROW EXECUTE FUNCTION run_lineup_assignment()""",
    """CREATE FUNCTION run_lineup_hit() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE run_lineup SET handed = run_lineup.handed - gone.n
        FROM (SELECT lineup_id, count(*) AS n FROM assignment WHERE hit_id = OLD.id GROUP BY lineup_id) AS gone
        WHERE run_lineup.run_id = OLD.run_id AND run_lineup.lineup_id = gone.lineup_id;
        RETURN OLD;
    END $$""",
    """CREATE TRIGGER run_lineup_hit BEFORE DELETE ON hit FOR EACH ROW EXECUTE FUNCTION run_lineup_hit()""",
]
SQLITE = [
    # (WHERE before ON CONFLICT: without one SQLite would read ON as a join's.)
    """CREATE TRIGGER run_lineup_assignment_insert AFTER INSERT ON assignment BEGIN
        INSERT INTO run_lineup (run_id, lineup_id, handed)
        SELECT hit.run_id, NEW.lineup_id, 1 FROM hit WHERE hit.id = NEW.hit_id
        ON CONFLICT (run_id, lineup_id) DO UPDATE SET handed = handed + 1;
    END""",
    """CREATE TRIGGER run_lineup_assignment_delete AFTER DELETE ON assignment BEGIN
        UPDATE run_lineup SET handed = handed - 1
        WHERE lineup_id = OLD.lineup_id AND run_id = (SELECT hit.run_id FROM hit WHERE hit.id = OLD.hit_id);
    END""",
    """CREATE TRIGGER run_lineup_hit BEFORE DELETE ON hit BEGIN
        UPDATE run_lineup SET handed = handed - (SELECT count(*) FROM assignment
                                                 WHERE hit_id = OLD.id AND assignment.lineup_id = run_lineup.lineup_id)
        WHERE run_id = OLD.run_id AND lineup_id IN (SELECT lineup_id FROM assignment WHERE hit_id = OLD.id);
    END""",
]
DROP = {
    "postgresql": ["DROP TRIGGER run_lineup_hit ON hit", "DROP FUNCTION run_lineup_hit()",
                   "DROP TRIGGER run_lineup_assignment ON assignment", "DROP FUNCTION run_lineup_assignment()"],
    "sqlite": ["DROP TRIGGER run_lineup_hit", "DROP TRIGGER run_lineup_assignment_delete",
               "DROP TRIGGER run_lineup_assignment_insert"],
}


def upgrade() -> None:
    op.create_table(
        'run_lineup',
        sa.Column('run_id', sa.Integer(), nullable=False),
        sa.Column('lineup_id', sa.Integer(), nullable=False),
        sa.Column('handed', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['run_id'], ['run.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['lineup_id'], ['lineup.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('run_id', 'lineup_id'),
    )
    op.create_index('ix_run_lineup_lineup_id', 'run_lineup', ['lineup_id'])
    op.execute("INSERT INTO run_lineup (run_id, lineup_id, handed) SELECT hit.run_id, assignment.lineup_id, count(*) "
               "FROM assignment JOIN hit ON hit.id = assignment.hit_id GROUP BY hit.run_id, assignment.lineup_id")
    for statement in {"postgresql": POSTGRESQL, "sqlite": SQLITE}[op.get_bind().dialect.name]:
        op.execute(statement)
    op.create_index('ix_hit_open', 'hit', ['run_id', 'expires_at'], postgresql_where=sa.text('completed_at IS NULL'),
                    sqlite_where=sa.text('completed_at IS NULL'))
    op.drop_index('ix_answer_run_lineup', table_name='answer')
    op.drop_index('ix_answer_run_id', table_name='answer')


def downgrade() -> None:
    op.create_index('ix_answer_run_id', 'answer', ['run_id'])
    op.create_index('ix_answer_run_lineup', 'answer', ['run_id', 'lineup_id'])
    op.drop_index('ix_hit_open', table_name='hit')
    for statement in DROP[op.get_bind().dialect.name]:
        op.execute(statement)
    op.drop_index('ix_run_lineup_lineup_id', table_name='run_lineup')
    op.drop_table('run_lineup')
