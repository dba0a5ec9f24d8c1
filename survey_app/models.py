"""The survey's tables as typed SQLAlchemy models.

The schema of a real database comes only from the Alembic migrations in ``survey_app/migrations/``; these classes are
what the code reads and writes, and a test checks that they and the migrations agree.
"""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ABSENT = -1
"""The stored choice for "not in this lineup"."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Base(DeclarativeBase):
    pass


class Admin(Base):
    __tablename__ = "admin"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    api_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    """SHA-256 of the admin's API token: the token itself is shown once and never stored."""
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Study(Base):
    __tablename__ = "study"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    """The public name in worker links; random, so a link tells nothing of the study's contents."""
    source: Mapped[str] = mapped_column(Text)
    settings: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    runs: Mapped[list[Run]] = relationship(back_populates="study", order_by="Run.number")


class Image(Base):
    """An image the study serves, copied into the database so the study never depends on the bundle folder."""
    __tablename__ = "image"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))


class Item(Base):
    """One reconstruction (or gold photo) that workers match against its lineup."""
    __tablename__ = "item"
    __table_args__ = (UniqueConstraint("study_id", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(64))
    attack: Mapped[str] = mapped_column(String(64))
    countermeasure: Mapped[str] = mapped_column(String(64))
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    is_control: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """A mock-witness item: the lineup of the real item ``params["control_of"]`` with a probe that tells nothing of
    the target (``params["probe"]``: another subject's reconstruction, or a silhouette)."""
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id"))
    aux_image_id: Mapped[int | None] = mapped_column(ForeignKey("image.id"))
    params: Mapped[dict] = mapped_column(JSON, default=dict)
    lineup: Mapped[Lineup] = relationship(back_populates="item")


class Lineup(Base):
    """The five faces shown with an item: the same in every run of the study."""
    __tablename__ = "lineup"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("item.id", ondelete="CASCADE"), unique=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    """Serves the item's image."""
    aux_token: Mapped[str] = mapped_column(String(32), unique=True)
    """Serves the item's second image (the blurred input of a deblurring item), if it has one."""
    target_present: Mapped[bool] = mapped_column(Boolean)
    target_position: Mapped[int | None] = mapped_column(Integer)
    photo: Mapped[str | None] = mapped_column(String(200))
    """Which photo of the target the lineup shows (``s3/7``), when it shows the target."""
    photo_role: Mapped[str | None] = mapped_column(String(16))
    """That photo's role in the model's split: train (the model learned it) or validation."""
    fillers: Mapped[dict | None] = mapped_column(JSON)
    """What the study's filler policy did for this lineup: its name, how many fillers matched, their distances."""
    item: Mapped[Item] = relationship(back_populates="lineup")
    faces: Mapped[list[LineupFace]] = relationship(order_by="LineupFace.position")


class LineupFace(Base):
    __tablename__ = "lineup_face"
    __table_args__ = (UniqueConstraint("lineup_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    lineup_id: Mapped[int] = mapped_column(ForeignKey("lineup.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    subject: Mapped[str] = mapped_column(String(64))
    image_id: Mapped[int] = mapped_column(ForeignKey("image.id"))
    token: Mapped[str] = mapped_column(String(32), unique=True)
    """What the page shows and posts back for this face: random, so it says nothing of who or where."""


class Run(Base):
    __tablename__ = "run"
    __table_args__ = (UniqueConstraint("study_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | open | closed
    opened_at: Mapped[datetime | None] = mapped_column(DateTime)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime)
    study: Mapped[Study] = relationship(back_populates="runs")


class Worker(Base):
    __tablename__ = "worker"
    __table_args__ = (UniqueConstraint("study_id", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("study.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(120))
    consented_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    browser: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the secret in the signed session of the browser that consented (its CSRF secret): that browser
    is recognised even when the answer to its consent was lost and it sends the form again."""
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)


class Hit(Base):
    """A batch of lineups handed to one worker in one run; unanswered ones return to the pool at expiry."""
    __tablename__ = "hit"
    # One index led by the run, one by the worker, neither partial (migration 0007): on tables without statistics
    # PostgreSQL took a partial index or one on the run alone for the cheaper path, and read every HIT of the run
    # to find one worker's.
    __table_args__ = (Index("ix_hit_open", "run_id", "completed_at", "expires_at"),  # a run's unfinished HITs
                      Index("ix_hit_worker", "worker_id", "run_id", "completed_at"))  # a worker's, their active one
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))  # ix_hit_open
    worker_id: Mapped[int] = mapped_column(ForeignKey("worker.id", ondelete="CASCADE"))  # ix_hit_worker
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    completion_code: Mapped[str | None] = mapped_column(String(32))
    platform: Mapped[str | None] = mapped_column(String(16))
    """How the worker came: "prolific" or "mturk"; None for a plain (lab) link."""
    platform_assignment: Mapped[str | None] = mapped_column(String(120))
    """The platform's id of this piece of paid work: MTurk's assignmentId, Prolific's SESSION_ID."""
    platform_hit: Mapped[str | None] = mapped_column(String(120))
    """The platform's id of the task it belongs to: MTurk's hitId, Prolific's STUDY_ID."""
    submit_to: Mapped[str | None] = mapped_column(String(200))
    """MTurk's turkSubmitTo: the finished assignment is posted to its /mturk/externalSubmit."""
    assignments: Mapped[list[Assignment]] = relationship(order_by="Assignment.position")


class Assignment(Base):
    __tablename__ = "assignment"
    __table_args__ = (UniqueConstraint("hit_id", "position"), UniqueConstraint("hit_id", "lineup_id"))
    id: Mapped[int] = mapped_column(primary_key=True)
    hit_id: Mapped[int] = mapped_column(ForeignKey("hit.id", ondelete="CASCADE"), index=True)
    lineup_id: Mapped[int] = mapped_column(ForeignKey("lineup.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    lineup: Mapped[Lineup] = relationship()


class RunLineup(Base):
    """How many tasks of a lineup a run has handed out (assignments, answered or not): kept by triggers on assignment
    and hit (migration 0006), so that a hand-out reads one row per lineup instead of counting the run's answers."""
    __tablename__ = "run_lineup"
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"), primary_key=True)
    lineup_id: Mapped[int] = mapped_column(ForeignKey("lineup.id", ondelete="CASCADE"), primary_key=True, index=True)
    handed: Mapped[int] = mapped_column(Integer)


class Answer(Base):
    """One worker's choice for one lineup in one run; the unique keys make a repeated submit store nothing."""
    __tablename__ = "answer"
    __table_args__ = (UniqueConstraint("run_id", "worker_id", "lineup_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignment.id", ondelete="CASCADE"), unique=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("run.id", ondelete="CASCADE"))  # indexed by the unique key
    worker_id: Mapped[int] = mapped_column(ForeignKey("worker.id", ondelete="CASCADE"), index=True)
    lineup_id: Mapped[int] = mapped_column(ForeignKey("lineup.id", ondelete="CASCADE"), index=True)
    choice: Mapped[int] = mapped_column(Integer)
    """0-4: the face at that place; ABSENT (-1): "not in this lineup"."""
    correct: Mapped[bool] = mapped_column(Boolean)
    confidence: Mapped[int | None] = mapped_column(Integer)
    """How sure the worker said they were, 1 to the study's ``confidence_scale``; None when it asks nothing."""
    shown_at: Mapped[datetime] = mapped_column(DateTime)
    """When the server first showed the lineup in the worker's browser session (to the millisecond; see
    survey_app/shown.py): the response time is answered_at - shown_at."""
    answered_at: Mapped[datetime] = mapped_column(DateTime)


class Meta(Base):
    """Nothing but a place for the server to note settings it must keep across restarts (the secret key)."""
    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)

