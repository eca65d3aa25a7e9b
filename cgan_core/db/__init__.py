"""The metadata database: runs, checkpoints, metrics, datasets and generated content.

``Database(url)`` opens (and migrates) it; ``default_db_path()`` is where the SQLite file lives
unless ``$CGAN_DB_URL`` or ``--db`` say otherwise. ``DatabaseCallback`` records a training run.
"""

from __future__ import annotations

from cgan_core.db.database import Database
from cgan_core.db.engine import database_disabled, default_db_path, resolve_db_url

__all__ = ["Database", "DatabaseCallback", "database_disabled", "default_db_path", "resolve_db_url"]


def __getattr__(name: str):  # type: ignore[no-untyped-def]
    if name == "DatabaseCallback":  # needs the trainer's callback base; imported on use
        from cgan_core.db.callback import DatabaseCallback

        return DatabaseCallback
    raise AttributeError(f"module 'cgan_core.db' has no attribute '{name}'")
