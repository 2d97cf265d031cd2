"""Alembic environment: runs migrations on the connection handed in by :func:`rhip.db.migrate.upgrade`."""

from __future__ import annotations

from alembic import context

config = context.config
connection = config.attributes.get("connection")
target_metadata = config.attributes.get("target_metadata")

if connection is None:
    raise RuntimeError(
        "Run migrations with `rhip db upgrade` (rhip.db.migrate.upgrade), which supplies the connection"
    )

context.configure(
    connection=connection, target_metadata=target_metadata, compare_type=True, render_as_batch=True
)
with context.begin_transaction():
    context.run_migrations()
