"""The metadata database's tables (SQLAlchemy 2.x declarative models).

``runs`` -> ``checkpoints``, ``metrics`` (training logs and evaluation results, each with its
provenance) and ``contents`` (generated files); ``datasets`` is shared by the runs trained on
the same data. The schema is created and changed only by the Alembic migrations in
``cgan_core/db/migrations``; a test checks that they produce exactly these models.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments INTEGER PRIMARY KEY columns; PostgreSQL gets 64-bit ids.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> dt.datetime:
    """The current time, timezone-aware UTC (what every timestamp column stores)."""
    return dt.datetime.now(dt.timezone.utc)


def iso_utc(value: Optional[dt.datetime]) -> Optional[str]:
    """ISO 8601 text of a stored time; SQLite returns naive values, which are UTC."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)).isoformat()


class Base(DeclarativeBase):
    """Declarative base of cgan's tables."""


class Dataset(Base):
    """A dataset as a run saw it: source, item counts and the fingerprint of the loaded data."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("modality", "source", "fingerprint", name="uq_datasets_identity"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    modality: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64), default="")
    items: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    info: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Run(Base):
    """A training run (its id is the ``id`` of the run directory's ``run.json``)."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_path", "path"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(String(255), default="")
    modality: Mapped[str] = mapped_column(String(64))
    plugin: Mapped[str] = mapped_column(String(128))
    dataset: Mapped[str] = mapped_column(Text)
    dataset_id: Mapped[Optional[int]] = mapped_column(ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True)
    status: Mapped[str] = mapped_column(String(32), default="created")
    step: Mapped[int] = mapped_column(Integer, default=0)
    latest_checkpoint: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)
    config: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType, nullable=True)
    cgan_version: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=True), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Checkpoint(Base):
    """A checkpoint written by a run (rows stay when old checkpoints are pruned from disk)."""

    __tablename__ = "checkpoints"
    __table_args__ = (UniqueConstraint("run_id", "name", name="uq_checkpoints_run_name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(128))
    step: Mapped[int] = mapped_column(Integer, default=0)
    phase: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    path: Mapped[str] = mapped_column(Text)
    tensor_sha256: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    metrics: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Metric(Base):
    """One logged or evaluated number with where it came from.

    ``source`` is ``train`` (the training log) or ``eval`` (an evaluation of ``checkpoint``).
    ``checkpoint`` is ``''`` for training logs so that the unique key also holds on databases
    where NULLs never collide.
    """

    __tablename__ = "metrics"
    __table_args__ = (
        UniqueConstraint("run_id", "source", "name", "step", "checkpoint", name="uq_metrics_key"),
        Index("ix_metrics_run_name", "run_id", "name"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(255))
    step: Mapped[int] = mapped_column(Integer)
    checkpoint: Mapped[str] = mapped_column(String(128), default="")
    phase: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    value: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    provenance: Mapped[Optional[dict[str, Any]]] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


CONTENT_OK = "ok"
CONTENT_PENDING = "pending"
CONTENT_DELETING = "deleting"


class Content(Base):
    """A generated content file.

    ``state`` is ``ok`` for a file in place, ``pending`` while a writer moves it into place and
    ``deleting`` while ``cgan content rm`` removes it; ``txn`` then names the
    :class:`ContentWriter` doing it, so that a reconciliation can finish the work of a killed one.
    """

    __tablename__ = "contents"
    __table_args__ = (
        UniqueConstraint("path", name="uq_contents_path"),
        Index("ix_contents_run", "run_id"),
        Index("ix_contents_modality", "modality"),
        Index("ix_contents_sha256", "sha256"),
        Index("ix_contents_state", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    modality: Mapped[str] = mapped_column(String(64))
    format: Mapped[str] = mapped_column(String(32), default="")
    seed: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    sample_index: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    run_id: Mapped[Optional[str]] = mapped_column(ForeignKey("runs.id", ondelete="SET NULL"), nullable=True)
    checkpoint: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)
    checkpoint_id: Mapped[Optional[int]] = mapped_column(ForeignKey("checkpoints.id", ondelete="SET NULL"),
                                                         nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    meta: Mapped[Optional[dict[str, Any]]] = mapped_column("metadata", JSONType, nullable=True)
    state: Mapped[str] = mapped_column(String(16), default=CONTENT_OK)
    txn: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)


class ContentWriter(Base):
    """A process writing or deleting content files, recorded before it touches a file.

    ``host``, ``pid`` and ``pid_start`` (the process start time) tell whether it still runs;
    ``staging`` is the hidden directory it writes into before moving files into place.
    """

    __tablename__ = "content_writers"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    pid_start: Mapped[Optional[int]] = mapped_column(BigInteger, nullable=True)
    staging: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
