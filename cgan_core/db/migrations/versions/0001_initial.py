"""The first schema: datasets, runs, checkpoints, metrics, contents and content writers.

Revision ID: 0001
Revises:
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _when(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create every table."""
    op.create_table(
        "datasets",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("modality", sa.String(64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("info", JSON, nullable=True),
        _when("created_at"),
        sa.UniqueConstraint("modality", "source", "fingerprint", name="uq_datasets_identity"),
    )
    op.create_table(
        "runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("modality", sa.String(64), nullable=False),
        sa.Column("plugin", sa.String(128), nullable=False),
        sa.Column("dataset", sa.Text(), nullable=False),
        sa.Column("dataset_id", BIG_ID, sa.ForeignKey("datasets.id", ondelete="SET NULL"), nullable=True),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("latest_checkpoint", sa.String(128), nullable=True),
        sa.Column("config", JSON, nullable=True),
        sa.Column("cgan_version", sa.String(32), nullable=False),
        _when("created_at"),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        _when("updated_at"),
    )
    op.create_index("ix_runs_path", "runs", ["path"])
    op.create_table(
        "checkpoints",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("phase", sa.String(64), nullable=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("tensor_sha256", sa.String(64), nullable=True),
        sa.Column("metrics", JSON, nullable=True),
        _when("created_at"),
        sa.UniqueConstraint("run_id", "name", name="uq_checkpoints_run_name"),
    )
    op.create_index("ix_checkpoints_run_id", "checkpoints", ["run_id"])
    op.create_table(
        "metrics",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("checkpoint", sa.String(128), nullable=False),
        sa.Column("phase", sa.String(64), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("provenance", JSON, nullable=True),
        _when("created_at"),
        sa.UniqueConstraint("run_id", "source", "name", "step", "checkpoint", name="uq_metrics_key"),
    )
    op.create_index("ix_metrics_run_name", "metrics", ["run_id", "name"])
    op.create_table(
        "contents",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("modality", sa.String(64), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.Column("sample_index", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.String(64), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("checkpoint", sa.String(128), nullable=True),
        sa.Column("checkpoint_id", BIG_ID, sa.ForeignKey("checkpoints.id", ondelete="SET NULL"), nullable=True),
        _when("created_at"),
        sa.Column("metadata", JSON, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("txn", sa.String(64), nullable=True),
        sa.UniqueConstraint("path", name="uq_contents_path"),
    )
    op.create_index("ix_contents_run", "contents", ["run_id"])
    op.create_index("ix_contents_modality", "contents", ["modality"])
    op.create_index("ix_contents_sha256", "contents", ["sha256"])
    op.create_index("ix_contents_state", "contents", ["state"])
    op.create_table(
        "content_writers",
        sa.Column("token", sa.String(64), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("pid_start", sa.BigInteger(), nullable=True),
        sa.Column("staging", sa.Text(), nullable=True),
        _when("created_at"),
    )


def downgrade() -> None:
    """Drop every table."""
    for table in ("content_writers", "contents", "metrics", "checkpoints", "runs", "datasets"):
        op.drop_table(table)
