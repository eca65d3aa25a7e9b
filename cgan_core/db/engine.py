"""Where the metadata database is and how cgan connects to it.

The URL comes from ``--db``, else ``$CGAN_DB_URL``, else a SQLite file at the default location:
``$CGAN_HOME/cgan.db`` when ``CGAN_HOME`` is set, otherwise ``$XDG_DATA_HOME/cgan/cgan.db``
(``~/.local/share/cgan/cgan.db``). Any SQLAlchemy URL works; ``postgresql://`` URLs are routed
to psycopg 3 (``postgresql+psycopg://``).

SQLite is opened in WAL mode (readers never block the writer), with a busy timeout, foreign keys
on, ``synchronous=FULL`` (a committed row survives a power cut, which the content store's write
order relies on) and write transactions that start with ``BEGIN IMMEDIATE``: a writer takes the
write lock up front instead of failing when it upgrades a read lock, which is the usual cause of
"database is locked" errors with several processes.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Optional, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from cgan_core.errors import MissingDependencyError, UsageError

T = TypeVar("T")

BUSY_TIMEOUT_S = 60.0
"""How long a SQLite connection waits for another writer before giving up (per statement)."""

DISABLED_VALUES = ("none", "off", "0", "false", "disabled")
"""``CGAN_DB_URL`` values that turn the database off for ``cgan run`` (files only)."""


def default_db_path() -> Path:
    """The default SQLite file: ``$CGAN_HOME/cgan.db`` or ``$XDG_DATA_HOME/cgan/cgan.db``."""
    home = os.environ.get("CGAN_HOME")
    if home:
        return Path(home).expanduser() / "cgan.db"
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "cgan" / "cgan.db"


def database_disabled(url: Optional[str] = None) -> bool:
    """Whether ``url`` (or ``$CGAN_DB_URL``) switches the database off."""
    value = url if url is not None else os.environ.get("CGAN_DB_URL", "")
    return value.strip().lower() in DISABLED_VALUES


def resolve_db_url(url: Optional[str] = None) -> str:
    """The database URL to use: ``url`` (``--db``), ``$CGAN_DB_URL`` or the default SQLite file.

    A bare path (no ``://``) is taken as a SQLite file. ``postgresql://`` and ``postgres://``
    select the psycopg 3 driver.

    Raises:
        UsageError: the URL cannot be parsed or the database was switched off.
    """
    raw = (url or os.environ.get("CGAN_DB_URL") or "").strip()
    if raw and database_disabled(raw):
        raise UsageError(f"the metadata database is switched off (CGAN_DB_URL={raw!r}); "
                         "set CGAN_DB_URL to a SQLAlchemy URL or unset it for the default SQLite file")
    if not raw:
        return f"sqlite:///{default_db_path()}"
    if "://" not in raw:
        return f"sqlite:///{Path(raw).expanduser().absolute()}"
    try:
        parsed = make_url(raw)
    except Exception:
        raise UsageError(f"cannot parse database URL {raw!r}; expected e.g. sqlite:///path/cgan.db or "
                         "postgresql://user@host/dbname") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(engine: Engine) -> bool:
    """Whether the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself (pysqlite's own implicit
        # transactions would not cover DDL and would start as deferred readers).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        if engine.url.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = "DEFERRED" if connection.get_execution_options().get("cgan_read_only") else "IMMEDIATE"
        connection.exec_driver_sql(f"BEGIN {mode}")


def create_db_engine(url: str) -> Engine:
    """Create an engine for ``url`` with cgan's connection settings.

    Raises:
        MissingDependencyError: a PostgreSQL URL without psycopg installed.
        UsageError: the SQLite file's directory cannot be created.
    """
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"future": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            try:
                Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(f"cannot create the directory of the database file '{database}': {exc}") from None
        kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
    elif parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() == "psycopg":
            try:
                import psycopg  # noqa: F401
            except ImportError:
                raise MissingDependencyError("psycopg", "a PostgreSQL database", extra="postgres") from None
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except ImportError as exc:
        driver = getattr(exc, "name", None) or str(exc)
        raise MissingDependencyError(driver, f"the database URL '{parsed.drivername}://'") from None
    if is_sqlite(engine):
        _configure_sqlite(engine)
    return engine


def is_transient(exc: BaseException) -> bool:
    """Whether a database error is worth retrying: a busy SQLite file, a PostgreSQL serialization
    failure or deadlock, or a dropped connection."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        text = str(exc.orig).lower() if exc.orig is not None else str(exc).lower()
        if "locked" in text or "busy" in text:
            return True
    code = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return code in ("40001", "40P01", "55P03")


def with_retries(action: Callable[[], T], attempts: int = 8, first_delay: float = 0.05) -> T:
    """Run ``action`` again after transient database errors, with jittered exponential backoff."""
    delay = first_delay
    for attempt in range(attempts):
        try:
            return action()
        except Exception as exc:
            if attempt == attempts - 1 or not is_transient(exc):
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover
