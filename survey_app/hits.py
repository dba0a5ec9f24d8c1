"""Handing out HITs and taking answers: least-answered lineups first, never twice to one worker in a run,
unfinished work back to the pool at expiry, and one stored answer however often a form is submitted."""
from __future__ import annotations

import random
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from sqlalchemy import (
    DateTime,
    Integer,
    Text,
    and_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, aliased

from .group_commit import DirectCommit, GroupCommit
from .models import ABSENT, Answer, Assignment, Hit, Item, Lineup, LineupFace, Run, RunLineup, Study, Worker
from .prepared import Prepared, inserts_in_with
from .settings import StudySettings


class AnswerRejected(Exception):
    """A submission that stores nothing; ``status`` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def settings_of(study: Study) -> StudySettings:
    return stored_settings(study.settings)


def stored_settings(stored: dict) -> StudySettings:
    known = {k: v for k, v in stored.items() if k in StudySettings.__dataclass_fields__}
    return StudySettings(**known)


def _answer_of(assignment):
    """The id of ``assignment``'s answer (NULL while unanswered), looked up by the answer's unique key: for the few
    tasks of one HIT, or of a run's unfinished HITs. A scalar subquery, which PostgreSQL runs once per task and cannot
    turn into a join: written as a join or an EXISTS, it hashed the whole answer table on every page view and every
    closing while the table was small, so each grew slower with every answer."""
    return select(Answer.id).where(Answer.assignment_id == assignment.id).correlate(assignment).scalar_subquery()


# Handing out a HIT's statements: Core, compiled once (prepared.py), on the session's connection: the ORM's work per
# statement was a good part of the time a hand-out holds SQLite's writer lock.
def newest_open_hit(worker_id, hit=Hit):
    """The one rule for a worker's active HIT: the id (NULL: none) of the newest of ``worker_id``'s HITs neither
    finished nor expired at ``now``. ``hit``: Hit, or an alias of it where the outer statement joins Hit itself."""
    return select(func.max(hit.id).label("id")).where(hit.worker_id == worker_id, hit.completed_at.is_(None),
                                                      hit.expires_at > bindparam("now"))


ACTIVE_HIT = Prepared(newest_open_hit(bindparam("worker_id")))
_TAKEN_BY = select(Hit.id).where(Hit.worker_id == bindparam("worker_id"))
OPEN_RUNS = Prepared(select(Run.id, _TAKEN_BY.where(Hit.run_id == Run.id).exists().label("taken"),
                            _TAKEN_BY.exists().label("any_taken"))
                     .where(Run.study_id == bindparam("study_id"), Run.status == "open").order_by(Run.number))
"""The study's open runs, in order, each with whether the worker has had a HIT in it, and whether they have had one
in any run (open or closed): one statement for what a hand-out needs to know of the runs."""
LOCK_RUN = Prepared(select(Run.id).where(Run.id == bindparam("run_id")).with_for_update(key_share=True))
"""PostgreSQL's FOR NO KEY UPDATE: hand-outs in one run wait for each other, but not the answers, whose foreign key
to the run takes a KEY SHARE lock on its row, which FOR UPDATE would make wait for the whole hand-out."""
_SEEN_IN_RUN = (select(literal("seen"), Assignment.lineup_id, literal(1))
                .join(Hit, Hit.id == Assignment.hit_id)
                .where(Hit.run_id == bindparam("run_id"), Hit.worker_id == bindparam("worker_id")))
_SEEN_IN_STUDY = (select(literal("ever"), Assignment.lineup_id, literal(1)).join(Hit, Hit.id == Assignment.hit_id)
                  .join(Run, Run.id == Hit.run_id)
                  .where(Run.study_id == bindparam("study_id"), Hit.worker_id == bindparam("worker_id")))
_HANDED = (select(literal("handed"), RunLineup.lineup_id, RunLineup.handed)
           .where(RunLineup.run_id == bindparam("run_id")))
_LOST = (select(literal("lost"), Assignment.lineup_id, func.count()).join(Hit, Hit.id == Assignment.hit_id)
         .where(Hit.run_id == bindparam("run_id"), Hit.completed_at.is_(None), Hit.expires_at <= bindparam("now"),
                _answer_of(Assignment).is_(None))
         .group_by(Assignment.lineup_id))
"""The tasks that went back to the pool: unanswered in an expired HIT (only unfinished HITs have such tasks, which
ix_hit_open finds). Every other task handed out in the run counts, answered or still open: see ``RunState``."""
_OPEN_HIT = select(literal("open").label("kind"), newest_open_hit(bindparam("worker_id")).scalar_subquery().label("id"),
                   literal(0).label("n"))
"""ACTIVE_HIT, looked at again once the run is locked: the same worker's other tab may have made their HIT."""
RUN_STATE, RUN_STATE_WITH_TWINS = (Prepared(union_all(_OPEN_HIT, _SEEN_IN_RUN, *twins, _HANDED, _LOST),
                                            planned_each_run=True)
                                   for twins in ((), (_SEEN_IN_STUDY,)))
"""What a hand-out reads once it holds the run, in one statement (on SQLite inside the writer lock, so each statement
less is time the lock is free): rows (kind, id, n), see ``RunState.read``. Planned for each hand-out's ``now``: the
generic plan PostgreSQL settled on, blind to it, took a third of the run's open HITs for expired (_LOST) and walked
every HIT of the run and every task to find them; planning it each time costs less, once a HIT."""


@dataclass(frozen=True)
class RunState:
    """A run as a hand-out sees it for one worker: their HIT open meanwhile (in any run) or None, the lineups they
    have seen in it (with ``twins``: in any run of the study), and each lineup's load: its tasks handed out in the run
    (run_lineup, exact: hand-outs in a run take turns, LOCK_RUN) less those that went back to the pool, the
    unanswered ones of expired HITs (a finished HIT has none). Neither reads the run's answers: one row per lineup,
    and the tasks of the run's unfinished HITs."""
    open_hit: int | None
    seen: frozenset[int]
    seen_in_study: frozenset[int]
    load: dict[int, int]

    @classmethod
    def read(cls, connection: Connection, params: dict, twins: bool) -> RunState:
        """``params``: run_id, worker_id, study_id and now."""
        by_kind: dict[str, list] = {"open": [], "seen": [], "ever": [], "handed": [], "lost": []}
        for row in (RUN_STATE_WITH_TWINS if twins else RUN_STATE).all(connection, params):
            by_kind[row.kind].append(row)
        load = {row.id: row.n for row in by_kind["handed"]}
        for row in by_kind["lost"]:
            load[row.id] = load.get(row.id, 0) - row.n
        return cls(by_kind["open"][0].id, frozenset(row.id for row in by_kind["seen"]),
                   frozenset(row.id for row in by_kind["ever"]), load)


NEW_HIT = Prepared(insert(Hit).values(
    run_id=bindparam("run_id"), worker_id=bindparam("worker_id"), created_at=bindparam("now"),
    expires_at=bindparam("expires"), platform=bindparam("on_platform"), platform_assignment=bindparam("paid_as"),
    platform_hit=bindparam("paid_in"), submit_to=bindparam("paid_to")).returning(Hit.id))


def active_hit(connection: Connection, worker_id: int, now: datetime) -> int | None:
    """The id of the worker's newest unfinished and unexpired HIT, or None."""
    return ACTIVE_HIT.all(connection, {"worker_id": worker_id, "now": now})[0].id


def completion_code() -> str:
    return f"MI-{secrets.token_hex(3).upper()}-{secrets.token_hex(3).upper()}"


def _runs_for(connection: Connection, study_id: int, worker_id: int, settings: StudySettings) -> list[int]:
    runs = OPEN_RUNS.all(connection, {"study_id": study_id, "worker_id": worker_id})
    if settings.multiple_runs_per_worker or not (runs and runs[0].any_taken):
        return [row.id for row in runs]
    return [row.id for row in runs if row.taken]  # a worker stays in the run they started in


@dataclass(frozen=True)
class Arrival:
    """How a worker came to the study: a recruitment platform's ids for the paid piece of work, or none (a lab
    link). One platform assignment (MTurk's assignmentId, Prolific's SESSION_ID) is one HIT here."""
    platform: str | None = None
    assignment: str | None = None
    hit: str | None = None
    submit_to: str | None = None


def batch_size(db: Session, study: Study) -> int:
    """Tasks in a full HIT of this study: hit_size lineups and the gold ones that come with them (fewer only when
    the study is running out of work). From the study's lineups as the hand-out knows them (read once a process)."""
    settings = settings_of(study)
    gold = sum(is_gold for _, is_gold in _study_lineups(db, study)[0])
    return settings.hit_size + min(gold, settings.gold_per_hit)


def platform_hit_taken(db: Session, worker: Worker, arrival: Arrival) -> bool:
    """Whether the worker already has a HIT for this platform assignment (each is paid once, so it gets one)."""
    return arrival.assignment is not None and db.scalar(
        select(Hit.id).where(Hit.worker_id == worker.id, Hit.platform == arrival.platform,
                             Hit.platform_assignment == arrival.assignment).limit(1)) is not None


def start_hit(db: Session, study, worker, now: datetime, arrival: Arrival = Arrival()) -> int | None:
    """A new HIT in the first open run with work for this worker (its id), or None when there is none. ``study``
    and ``worker`` need only their ids (and the study its settings)."""
    settings = settings_of(study)
    connection = db.connection()
    lineups, twins = _study_lineups(db, study)
    twins = twins if settings.control_items else {}
    for run_id in _runs_for(connection, study.id, worker.id, settings):
        # Serialise HIT creation per run: PostgreSQL locks the run's row; on SQLite the transaction
        # already holds the write lock (BEGIN IMMEDIATE). Then look again (RunState.open_hit): the same
        # worker's other tab may have made their HIT while this request waited.
        LOCK_RUN.all(connection, {"run_id": run_id})
        state = RunState.read(connection, {"run_id": run_id, "worker_id": worker.id, "study_id": study.id,
                                           "now": now}, twins=bool(twins))
        if state.open_hit is not None:
            return state.open_hit
        picked = _pick_lineups(lineups, twins, state, settings)
        if not picked:
            continue
        expires = now + timedelta(minutes=settings.hit_minutes)
        hit = {"run_id": run_id, "worker_id": worker.id, "now": now, "expires": expires,
               "on_platform": arrival.platform, "paid_as": arrival.assignment, "paid_in": arrival.hit,
               "paid_to": arrival.submit_to}
        tasks = {}
        for position, lineup_id in enumerate(picked):
            tasks.update({f"lineup_{position}": lineup_id, f"token_{position}": secrets.token_urlsafe(16)})
        if inserts_in_with(connection.dialect):
            return _new_hit_and_tasks(len(picked)).all(connection, {**hit, **tasks})[0].hit_id
        hit_id = NEW_HIT.all(connection, hit)[0].id
        _new_tasks(len(picked)).all(connection, {"hit_id": hit_id, **tasks})
        return hit_id
    return None


@cache
def _new_tasks(n: int) -> Prepared:
    """One INSERT of a HIT's ``n`` tasks (parameters hit_id, lineup_<k> and token_<k>, k its position), not one
    statement a task: on SQLite inside the writer lock, on PostgreSQL one round trip. Built once for each ``n``."""
    rows = [{"hit_id": bindparam("hit_id"), "lineup_id": bindparam(f"lineup_{k}"), "position": k,
             "token": bindparam(f"token_{k}")} for k in range(n)]
    return Prepared(insert(Assignment).values(rows).returning(Assignment.id))


@cache
def _new_hit_and_tasks(n: int) -> Prepared:
    """NEW_HIT and its ``n`` tasks in one statement, where the HIT's INSERT may sit in a WITH (``inserts_in_with``):
    one round trip a hand-out fewer, inside the run's lock; returns the tasks' hit_id. Parameters: NEW_HIT's
    and ``_new_tasks``'s but hit_id. Built once for each ``n``."""
    hit = NEW_HIT.statement.cte("new_hit")
    tasks = union_all(*(select(literal(k).label("position"), bindparam(f"lineup_{k}", type_=Integer).label("lineup"),
                               bindparam(f"token_{k}", type_=Text).label("token"))
                        for k in range(n))).subquery("task")
    rows = select(hit.c.id, tasks.c.lineup, tasks.c.position, tasks.c.token).select_from(hit).join(tasks, true())
    return Prepared(insert(Assignment).from_select(["hit_id", "lineup_id", "position", "token"], rows)
                    .returning(Assignment.hit_id))


def _pick_lineups(lineups: list[tuple[int, bool]], twins: dict[int, int], state: RunState,
                  settings: StudySettings) -> list[int]:
    """A HIT's lineups: the least loaded that the worker has not seen and that still want answers, then gold ones."""
    seen = set(state.seen)
    # A mock witness must not have seen the lineup with the real reconstruction (nor the other way round), in any
    # run: they would remember whom they picked.
    seen |= {twins[lid] for lid in state.seen_in_study if lid in twins}
    rng = random.Random()
    load = {lid: state.load.get(lid, 0) for lid, _ in lineups}
    free = sorted((lid for lid, gold in lineups if not gold and lid not in seen
                   and load[lid] < settings.answers_per_item), key=lambda lid: (load[lid], rng.random()))
    picked: list[int] = []
    for lid in free:  # never a control and its real lineup in one HIT
        if len(picked) == settings.hit_size:
            break
        if twins.get(lid) not in picked:
            picked.append(lid)
    if not picked:
        return []
    gold = [lid for lid, is_gold in lineups if is_gold and lid not in seen]
    rng.shuffle(gold)
    picked += gold[: settings.gold_per_hit]
    rng.shuffle(picked)
    return picked


_LINEUPS: dict[tuple[str, int], tuple[list[tuple[int, bool]], dict[int, int]]] = {}
_LINEUPS_LOCK = threading.Lock()


def _study_lineups(db: Session, study: Study) -> tuple[list[tuple[int, bool]], dict[int, int]]:
    """The study's lineups as (id, is gold), and its control twins: lineup id -> lineup id, both ways, for each
    control item and the real item whose lineup it shows. A study's lineups are fixed when it is made, so each
    process reads them once per study (keyed by its random slug and id, which no other study has), not once per HIT."""
    key = (study.slug, study.id)
    with _LINEUPS_LOCK:
        known = _LINEUPS.get(key)
    if known is not None:
        return known
    rows = db.execute(select(Lineup.id, Item.is_gold, Item.external_id, Item.is_control, Item.params)
                      .join(Item, Item.id == Lineup.item_id).where(Lineup.study_id == study.id)
                      .order_by(Lineup.id)).all()
    by_external = {row.external_id: row.id for row in rows}
    twins = {}
    for row in rows:
        real = (row.params or {}).get("control_of") if row.is_control else None
        if real in by_external:
            twins[row.id], twins[by_external[real]] = by_external[real], row.id
    known = ([(row.id, row.is_gold) for row in rows], twins)
    if rows:  # a study seen before its lineups were committed is not remembered empty
        with _LINEUPS_LOCK:
            _LINEUPS[key] = known
    return known


def _task_page(stored=None):
    """Everything the task page shows, in one statement: the worker's active HIT (the newest unfinished and
    unexpired one, as ``active_hit``), its first unanswered task, that lineup's faces (one row each, in order), and
    how many tasks the HIT has and how many are answered. No row: no such worker in this study; a row without a task:
    the HIT is finished or there is none (handing out work writes, and is left to the caller). ``stored``: a WITH
    of the same statement that stores an answer and returns its ``assignment_id``, which the page counts as answered
    (the statement's snapshot does not show it).

    Built in two derived tables, each closed by LIMIT 1 so that PostgreSQL cannot fold it into the outer query:
    folded, the HIT and task subqueries became join conditions that it answered by hashing the whole hit and
    assignment tables on every page view, and the counts ran once per face."""
    newest = newest_open_hit(Worker.id).correlate(Worker).scalar_subquery()
    who = (select(Worker.blocked, Study.settings, newest.label("hit_id")).join(Study, Study.id == Worker.study_id)
           .where(Worker.id == bindparam("worker_id"), Study.slug == bindparam("slug")).limit(1).subquery("who"))
    todo, every, done = aliased(Assignment), aliased(Assignment), aliased(Assignment)
    unanswered, answer_of_done = [todo.hit_id == who.c.hit_id, _answer_of(todo).is_(None)], _answer_of(done)
    if stored is not None:
        just_stored = select(stored.c.assignment_id)
        unanswered.append(todo.id.not_in(just_stored))
        answer_of_done = case((done.id.in_(just_stored), literal(0)), else_=answer_of_done)
    first = select(todo.id).where(*unanswered).order_by(todo.position).limit(1).correlate(who).scalar_subquery()
    total = select(func.count()).select_from(every).where(every.hit_id == who.c.hit_id).correlate(who).scalar_subquery()
    answered = (select(func.count(answer_of_done)).select_from(done).where(done.hit_id == who.c.hit_id)
                .correlate(who).scalar_subquery())
    task = (select(who.c.blocked, who.c.settings, who.c.hit_id, first.label("assignment_id"), total.label("total"),
                   answered.label("answered")).select_from(who).limit(1).subquery("task"))
    # The study's settings ride on the first face's row only, as the JSON's text: the page decodes each study's once
    # (worker.py), not once a page or once a row.
    first_row = or_(LineupFace.position.is_(None), LineupFace.position == 0)
    settings = case((first_row, cast(task.c.settings, Text)), else_=null()).label("settings")
    return (select(task.c.blocked, settings, task.c.hit_id, Assignment.token.label("assignment"),
                   task.c.assignment_id, Item.image_id.label("probe_image"), Item.aux_image_id,
                   LineupFace.position.label("face"), LineupFace.image_id.label("face_image"), task.c.total,
                   task.c.answered)
            .select_from(task).outerjoin(Assignment, Assignment.id == task.c.assignment_id)
            .outerjoin(Lineup, Lineup.id == Assignment.lineup_id).outerjoin(Item, Item.id == Lineup.item_id)
            .outerjoin(LineupFace, LineupFace.lineup_id == Lineup.id)
            .order_by(LineupFace.position))


TASK_PAGE = _task_page()
TASK_PAGE_PREPARED = Prepared(TASK_PAGE)
"""How the page runs it: compiled once (prepared.py); each view runs it thousands of times a study."""


# The answer path's statements, built once: building SQLAlchemy expressions costs more than running them.
_HIT_OF_TOKEN = select(Assignment.hit_id).where(Assignment.token == bindparam("token")).scalar_subquery()
"""The id of the HIT of the task ``token`` names: the database looks the task up by its unique token first, then
reads that one HIT, where a join left it free to find the HIT among the run's."""


def _store(absent: bool):
    """INSERT ... SELECT: one statement checks everything (the task is this worker's, in this study, its run
    open, its HIT unexpired, the worker not blocked, the choice one of this lineup's faces) and stores the
    answer, or stores nothing. Without its RETURNING, which each use adds."""
    position = literal(ABSENT) if absent else LineupFace.position
    target = case((Lineup.target_present, Lineup.target_position), else_=literal(ABSENT))
    confidence = cast(bindparam("confidence"), Integer)
    scale = func.coalesce(Study.settings["confidence_scale"].as_integer(), 0)
    query = (select(Assignment.id, Hit.run_id, Hit.worker_id, Assignment.lineup_id, position, position == target,
                    confidence, bindparam("shown", type_=DateTime), bindparam("now"))
             .select_from(Assignment).join(Hit, Hit.id == Assignment.hit_id).join(Run, Run.id == Hit.run_id)
             .join(Study, Study.id == Run.study_id).join(Worker, Worker.id == Hit.worker_id)
             .join(Lineup, Lineup.id == Assignment.lineup_id))
    if absent:
        query = query.where(Study.settings["allow_absent"].as_boolean())
    else:
        query = query.join(LineupFace, (LineupFace.lineup_id == Lineup.id)
                           & (LineupFace.position == bindparam("position", type_=Integer)))
    query = query.where(Assignment.token == bindparam("token"), Hit.id == _HIT_OF_TOKEN,
                        Hit.worker_id == bindparam("by_worker"),
                        Study.slug == bindparam("slug"), Run.status == "open", Hit.expires_at > bindparam("now"),
                        ~Worker.blocked,
                        # a confidence on the study's scale when it asks for one, none when it does not
                        or_(and_(confidence.is_(None), scale == 0), confidence.between(1, scale)))
    return insert(Answer).from_select(["assignment_id", "run_id", "worker_id", "lineup_id", "choice", "correct",
                                       "confidence", "shown_at", "answered_at"], query)


STORE_FACE, STORE_ABSENT = (Prepared(_store(absent).returning(Answer.id)) for absent in (False, True))


def _store_then_page(absent: bool):
    """PostgreSQL: the answer stored and the worker's next task page read, in one statement (an INSERT in its WITH,
    which SQLite does not allow): one round trip an answer, not two. The page's rows, each with ``stored``, the
    number of answers the INSERT stored (0 or 1)."""
    stored = _store(absent).returning(Answer.assignment_id).cte("stored")
    return _task_page(stored).add_columns(select(func.count()).select_from(stored).scalar_subquery().label("stored"))


STORE_FACE_THEN_PAGE, STORE_ABSENT_THEN_PAGE = (Prepared(_store_then_page(absent), writes=True)
                                                for absent in (False, True))


def _close_finished(hit_id, stored=None):
    """The one rule for closing a HIT: when no task of HIT ``hit_id`` is left unanswered and it is still open, it is
    done at ``now`` with the completion code ``code``; RETURNING says whether it was closed. ``stored``: a WITH of the
    same statement that stores an answer and returns its ``assignment_id``; the close then runs only when it stored,
    and counts that task as answered (the statement's snapshot does not show the new answer)."""
    unanswered = select(Assignment.id).where(Assignment.hit_id == Hit.id, _answer_of(Assignment).is_(None))
    closing = [Hit.id == hit_id, Hit.completed_at.is_(None)]
    if stored is not None:
        just_stored = select(stored.c.assignment_id)
        unanswered = unanswered.where(Assignment.id.not_in(just_stored))
        closing.append(just_stored.exists())
    return (update(Hit).where(*closing, ~unanswered.exists())
            .values(completed_at=bindparam("now"), completion_code=bindparam("code")).returning(Hit.id))


CLOSE_FINISHED = Prepared(_close_finished(_HIT_OF_TOKEN))
"""Run after an answer is stored, with its parameters, in the answer's own commit (SQLite's group commit; PostgreSQL
has the same rule in the answer's own statement, STORE_*_THEN_CLOSE): it spares the worker's next request the
closing write. A HIT this misses (another tab's answer committing at the same moment on PostgreSQL) is closed by the
next task page, with CLOSE_HIT."""


def _store_then_close(absent: bool, hit_id=_HIT_OF_TOKEN):
    """PostgreSQL: the answer stored and its HIT closed when it was the last one open (CLOSE_FINISHED), in one
    statement and one commit: one row, ``stored`` and ``closed``, how many of each (0 or 1)."""
    stored = _store(absent).returning(Answer.assignment_id).cte("stored")
    closed = _close_finished(hit_id, stored).cte("closed")
    return select(select(func.count()).select_from(stored).scalar_subquery().label("stored"),
                  select(func.count()).select_from(closed).scalar_subquery().label("closed"))


STORE_FACE_THEN_CLOSE, STORE_ABSENT_THEN_CLOSE = (Prepared(_store_then_close(absent), writes=True)
                                                  for absent in (False, True))
CLOSE_HIT = Prepared(_close_finished(bindparam("hit_id")))
WHY_NOT = (
    select(Hit.worker_id, Hit.expires_at, Run.number, Run.status, Study.slug, Study.settings, Worker.blocked,
           Answer.id.label("answer_id"), LineupFace.position.label("chosen"))
    .select_from(Assignment).join(Hit, Hit.id == Assignment.hit_id).join(Run, Run.id == Hit.run_id)
    .join(Study, Study.id == Run.study_id).join(Worker, Worker.id == Hit.worker_id)
    .outerjoin(Answer, Answer.assignment_id == Assignment.id)
    .outerjoin(LineupFace, (LineupFace.lineup_id == Assignment.lineup_id)
               & (LineupFace.position == bindparam("position", type_=Integer)))
    .where(Assignment.token == bindparam("token")))
"""Only when nothing was stored: which check failed, to say so."""


def record_answer(writer: DirectCommit | GroupCommit, reader: Engine, worker_id: int, slug: str,
                  assignment_token: str, choice: str, shown: datetime | None, now: datetime,
                  confidence: int | None = None, may_finish: bool = True,
                  next_page: bool = False) -> tuple[bool, bool, list | None]:
    """Store one answer and commit it, in one statement: this is the survey's hot path. Returns (stored: False when
    it was there already, finished: this answer was its HIT's last, and the HIT is now done, page: the rows of
    TASK_PAGE for the worker's next task, read with the answer, or None when they were not).

    ``writer`` commits it (on SQLite together with the answers other threads send meanwhile: group_commit.py);
    ``reader`` (outside the writer lock) says why, when nothing was stored. ``shown``: when this worker's session
    first showed the task (see shown.py); None when it never showed it, which stores nothing. ``confidence``: how
    sure the worker said they were, on the study's scale (None when it asks nothing). A duplicate (a double click,
    a retry) stores nothing: either the task already has its answer, or two copies race and the second fails the
    answer's unique key. Core, not the ORM, for speed. ``choice``: "absent", or the face's place on the page, "1"
    to "5" (the same for every worker). ``may_finish``: whether to try to close the HIT after storing (False when
    the task was shown while others of its HIT were unanswered: see shown.py). ``next_page``: the caller shows the
    next task's page. Where ``writer`` can (PostgreSQL), the storing statement also does the step after it: closes
    the HIT (``may_finish``), or else reads the next task's page (``next_page``).
    """
    position = int(choice) - 1 if len(choice) == 1 and choice in "123456789" else None
    # No parameter is named after a column of hit: the closing UPDATE, run with these parameters, would set it.
    params = {"token": assignment_token, "position": position, "by_worker": worker_id, "slug": slug, "now": now,
              "shown": shown, "confidence": confidence, "code": completion_code() if may_finish else None}
    storable = shown is not None and (position is not None or choice == "absent")
    absent = choice == "absent"
    if storable and writer.reads_as_it_stores and (may_finish or next_page):
        if may_finish:
            stored, rows = writer.store_reading(STORE_ABSENT_THEN_CLOSE if absent else STORE_FACE_THEN_CLOSE, params)
            if stored is not None:
                return stored, bool(stored and rows[0].closed), None
        else:
            stored, page = writer.store_reading(STORE_ABSENT_THEN_PAGE if absent else STORE_FACE_THEN_PAGE,
                                                {**params, "worker_id": worker_id})
            if stored is not None:
                return stored, False, page
    elif storable:
        stored, finished = writer.store_then(STORE_ABSENT if absent else STORE_FACE,
                                             CLOSE_FINISHED if may_finish else None, params)
        if stored is not None:
            return stored, finished, None
    with reader.connect() as connection:
        row = connection.execute(WHY_NOT, params).first()
    if row is None or row.worker_id != worker_id or row.slug != slug:
        raise AnswerRejected(404, "no such task for this worker")
    if row.blocked:
        raise AnswerRejected(403, "this worker has been blocked from the study")
    if row.answer_id is not None:
        return False, False, None
    if row.status != "open":
        raise AnswerRejected(409, f"run {row.number} is closed; answers are no longer taken")
    if row.expires_at <= now:
        raise AnswerRejected(409, "this HIT expired before the answer arrived; its lineups went back to the pool")
    if shown is None:
        raise AnswerRejected(400, "this task was not shown in this browser session (its start time is unknown): "
                                  "reload the page and answer again")
    scale = stored_settings(row.settings).confidence_scale
    if scale and confidence is None:
        raise AnswerRejected(400, f"say how sure you are of your choice (1 to {scale}) before sending it")
    if confidence is not None and not scale:
        raise AnswerRejected(400, "this study does not ask how sure you are: send the choice alone")
    if confidence is not None and not 1 <= confidence <= scale:
        raise AnswerRejected(400, f"confidence must be between 1 and {scale}, got {confidence}")
    if absent:
        raise AnswerRejected(400, '"not in this lineup" is not an answer this study offers')
    raise AnswerRejected(400, "unknown choice: pick one of the five faces shown (1 to 5)")
