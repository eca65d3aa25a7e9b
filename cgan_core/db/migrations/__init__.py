"""Alembic migrations of the metadata database (applied by cgan_core.db.migrate)."""
