"""Alembic environment of cgan's metadata database.

cgan applies these migrations itself (:func:`cgan_core.db.migrate.upgrade_database`), handing
over a connection that already holds the migration lock inside a transaction. Run by hand
(``alembic -c cgan_core/db/migrations/alembic.ini revision --autogenerate -m "..."``) it
connects to ``$CGAN_DB_URL`` or the default SQLite file.
"""

from __future__ import annotations

from alembic import context

from cgan_core.db.models import Base


def run_migrations(connection) -> None:  # type: ignore[no-untyped-def]
    """Run the pending migrations on ``connection`` (inside its transaction)."""
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Entry point when Alembic executes this file."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    from cgan_core.db.engine import create_db_engine, resolve_db_url

    engine = create_db_engine(context.config.get_main_option("sqlalchemy.url") or resolve_db_url())
    with engine.begin() as connection:
        run_migrations(connection)


# Importing this module outside Alembic (e.g. a test that imports every module) does nothing:
# the ``context`` proxy only has a ``config`` while Alembic runs the file.
if getattr(context, "config", None) is not None:
    main()
