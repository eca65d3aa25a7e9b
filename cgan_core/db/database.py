"""A handle on the metadata database: engine, migrations and retried transactions."""

from __future__ import annotations

from typing import Any, Callable, Optional, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cgan_core.db.engine import create_db_engine, resolve_db_url, with_retries
from cgan_core.db.migrate import upgrade_database
from cgan_core.errors import CganRuntimeError

T = TypeVar("T")


class Database:
    """An open metadata database, migrated to the current schema.

    Work is done in :meth:`write` / :meth:`read`, which run a function in one transaction and
    run it again when the database was busy (another process writing) or a connection dropped;
    the function must therefore only touch the database, not files.

    Args:
        url: A SQLAlchemy URL, a SQLite path, or ``None`` for ``$CGAN_DB_URL`` / the default file.
        migrate: Apply pending migrations when opening (the default).

    Raises:
        CganRuntimeError: the database cannot be reached or migrated.
    """

    def __init__(self, url: Optional[str] = None, migrate: bool = True) -> None:
        self.url = resolve_db_url(url)
        self.engine = create_db_engine(self.url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if migrate:
            try:
                with_retries(lambda: upgrade_database(self.engine))
            except OperationalError as exc:
                self.engine.dispose()
                reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
                raise CganRuntimeError(f"cannot open the metadata database {self.display_url}: {reason} "
                                       "(set CGAN_DB_URL or --db to a reachable database)") from None

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``sqlite``, ``postgresql``, ..."""
        return self.engine.dialect.name

    def _run(self, work: Callable[[Session], T], read_only: bool) -> T:
        def attempt() -> T:
            with self._sessions() as session:  # closing rolls back whatever was not committed
                if read_only:  # the first connection() starts the transaction with these options
                    session.connection(execution_options={"cgan_read_only": True})
                result = work(session)
                if not read_only:
                    session.commit()
                return result

        return with_retries(attempt)

    def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in one write transaction (committed, retried when busy)."""
        return self._run(work, read_only=False)

    def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in a read-only transaction (never blocks on SQLite writers)."""
        return self._run(work, read_only=True)

    def close(self) -> None:
        """Release the connections."""
        self.engine.dispose()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

