"""Storing answers: one durable commit for all the answers a server process receives while the last commit ran.

On SQLite every write holds the database's one writer lock through its fsync (``synchronous=FULL``), so a crowd's
answers queue for the disk one at a time, and a request thread waiting its turn serves nobody. ``GroupCommit`` lets
the answers of one process share a commit: the thread that finds no commit running leads, storing every answer
queued so far in one transaction and committing once; a duplicate or a refused answer touches no other (SQLite
undoes the one statement that broke a unique key and the transaction goes on; another database would give each
answer its SAVEPOINT). The threads whose answers it carried wait for their outcome, and one whose answer arrived
during that commit leads the next. An answer is acknowledged only after the commit that holds it returns, so nothing
acknowledged is lost; if that commit fails, every answer in it fails with the same error (the server answers 503,
the browser sends again, the unique keys keep one). PostgreSQL already flushes concurrent commits together, so there
``DirectCommit`` runs each answer's one statement in autocommit: a single round trip (no BEGIN or COMMIT), durable
when it returns, as any commit is under PostgreSQL's default ``synchronous_commit``.
"""
from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from .prepared import first, inserts_in_with


@dataclass
class _Job:
    statement: object
    params: dict
    then: object = None
    outcome: bool | None = None
    followed: bool = False
    error: BaseException | None = None
    finished: bool = False


class DirectCommit:
    """Each answer in its own transaction (``engine`` may be in autocommit: the statement is then the transaction)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.reads_as_it_stores = inserts_in_with(engine.dialect)
        """Whether ``store_reading`` may be used: the answer's INSERT then sits in the WITH of the page's SELECT."""

    def store(self, statement, params: dict) -> bool | None:
        """Run ``statement`` (an INSERT ... RETURNING that stores one answer or nothing) and commit it. True: stored;
        False: a unique key refused it (the answer is there already); None: it matched nothing, nothing stored."""
        return self.store_then(statement, None, params)[0]

    def store_then(self, statement, then, params: dict) -> tuple[bool | None, bool]:
        """``store``, and when it stored, ``then`` (a statement with RETURNING, on the same parameters) after it:
        (the store's outcome, whether ``then`` returned a row). In autocommit ``then`` is its own transaction, after
        the answer's: it must be a step that may also be taken later (closing a finished HIT)."""
        with self.engine.connect() as connection:
            try:
                stored = first(connection, statement, params)
            except IntegrityError:
                connection.rollback()
                return False, False
            if stored is None:
                connection.rollback()
                return None, False
            followed = then is not None and first(connection, then, params) is not None
            connection.commit()
            return True, followed

    def store_reading(self, statement, params: dict) -> tuple[bool | None, list | None]:
        """Run ``statement``, a SELECT whose WITH stores one answer or nothing, with a column ``stored`` (how many
        it stored) on each row, and commit it: (True, its rows) when it stored; (False, None) when a unique key
        refused it, (None, None) when it matched nothing, and then nothing is stored."""
        with self.engine.connect() as connection:
            try:
                rows = statement.all(connection, params)
            except IntegrityError:
                connection.rollback()
                return False, None
            if not rows or not rows[0].stored:
                connection.rollback()
                return None, None
            connection.commit()
            return True, rows


@dataclass
class GroupCommit:
    """A process's answers, committed together (module docstring); ``store`` as ``DirectCommit.store``."""
    engine: Engine
    reads_as_it_stores = False
    """No ``store_reading``: the answers share a transaction, and a read in one statement with them saves nothing."""
    _queue: list[_Job] = field(default_factory=list)
    _leading: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def store(self, statement, params: dict) -> bool | None:
        return self.store_then(statement, None, params)[0]

    def store_then(self, statement, then, params: dict) -> tuple[bool | None, bool]:
        """As ``DirectCommit.store_then``; ``then`` runs in the answer's transaction, so it commits with it."""
        job = _Job(statement, params, then)
        with self._changed:
            self._queue.append(job)
            while self._leading and not job.finished:
                self._changed.wait()
            if not job.finished:  # nobody is committing and this answer still waits: lead
                self._leading = True
                batch, self._queue = self._queue, []
        if not job.finished:
            try:
                self._commit(batch)
            finally:
                with self._changed:
                    self._leading = False
                    self._changed.notify_all()
        if job.error is not None:
            raise job.error
        return job.outcome, job.followed

    def _commit(self, batch: list[_Job]) -> None:
        with self.engine.connect() as connection:
            try:
                # SQLite's conflict resolution (ABORT) undoes only the statement that broke a unique key and leaves
                # the transaction open: no SAVEPOINT and RELEASE a shared answer, statements inside the writer lock.
                goes_on = connection.dialect.name == "sqlite"
                scope = nullcontext if goes_on or len(batch) == 1 else connection.begin_nested
                for job in batch:
                    self._run(connection, job, scope, aborts=scope is nullcontext and not goes_on)
                connection.commit()
            except BaseException as exc:  # nothing in this batch is stored
                for job in batch:
                    job.error = exc
                connection.invalidate()  # closed, not pooled: its transaction (and the writer lock) go with it
            finally:
                for job in batch:
                    job.finished = True

    @staticmethod
    def _run(connection, job: _Job, scope, aborts: bool) -> None:
        """One job's statements within ``scope`` (its SAVEPOINT, where the database needs one to go on after it);
        ``aborts``: a refused answer aborts the transaction, which holds nothing else, and it is ended."""
        stored = False
        try:
            with scope():
                stored = first(connection, job.statement, job.params) is not None
                job.followed = stored and job.then is not None and first(connection, job.then, job.params) is not None
            job.outcome = True if stored else None
        except IntegrityError:
            if stored:  # not the answer's unique key but the step after it: the batch fails, nothing half-done
                raise
            job.outcome = False
            if aborts:
                connection.rollback()


def answer_writer(engine: Engine) -> DirectCommit | GroupCommit:
    """SQLite: a group commit. PostgreSQL: each answer its own commit, in one round trip when ``engine`` is in
    autocommit (``db.make_engine(url, autocommit=True)``, as the app's is)."""
    if engine.dialect.name == "sqlite":
        return GroupCommit(engine)
    return DirectCommit(engine)
