"""Bringing a database's schema up to date with the packaged Alembic migrations.

Every :class:`~cgan_core.db.database.Database` calls :func:`upgrade_database` when it opens, so a
new cgan release migrates the schema on first use. It is safe with many processes starting at
once: the common case (already at head) is one read; otherwise the upgrade runs inside a single
transaction that first takes a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory transaction lock
on PostgreSQL) and checks the revision again, so exactly one process migrates, the others wait and
then see the new head, and a failed migration leaves the schema as it was (transactional DDL).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from cgan_core.errors import CganRuntimeError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ADVISORY_LOCK_KEY = 0x6367616E_6462  # "cgandb": one lock id shared by every cgan process


def alembic_config(connection: Optional[Connection] = None):  # type: ignore[no-untyped-def]
    """An Alembic ``Config`` for the packaged migrations (no ini file needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@functools.lru_cache(maxsize=1)
def _script_revisions() -> tuple[str, frozenset[str]]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package always ships migrations
        raise CganRuntimeError(f"no database migrations found in {MIGRATIONS_DIR}")
    return head, frozenset(rev.revision for rev in script.walk_revisions())


def head_revision() -> str:
    """The newest schema revision this cgan knows."""
    return _script_revisions()[0]


def current_revision(connection: Connection) -> Optional[str]:
    """The schema revision a database is at (``None`` for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _check_known(revision: Optional[str], url: str) -> None:
    if revision is not None and revision not in _script_revisions()[1]:
        raise CganRuntimeError(
            f"the database {url} is at schema revision '{revision}', which this cgan does not know "
            "(it was migrated by a newer cgan); upgrade cgan or point CGAN_DB_URL at another database")


def upgrade_database(engine: Engine) -> str:
    """Migrate the database to the newest revision (no-op when it is there); returns the revision.

    Raises:
        CganRuntimeError: the database was migrated by a newer cgan.
    """
    from alembic import command

    head = head_revision()
    url = engine.url.render_as_string(hide_password=True)
    with engine.connect().execution_options(cgan_read_only=True) as connection:
        current = current_revision(connection)
    if current == head:
        return head
    _check_known(current, url)
    with engine.begin() as connection:  # SQLite: BEGIN IMMEDIATE is the lock
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        current = current_revision(connection)
        _check_known(current, url)
        if current != head:
            command.upgrade(alembic_config(connection), "head")
    return head
