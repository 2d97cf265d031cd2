"""Outbox: the writing transaction of each event, and consumer positions of (transaction, id).

On PostgreSQL outbox ids come from a sequence before commit, so they do not arrive in commit order;
``outbox.xact`` (``pg_current_xact_id()``, set by the column default) lets readers return only the events
of transactions older than every open one. On SQLite the column is NULL.

Existing events take the migrating transaction's id (the default is evaluated once for them), and every
existing consumer position moves to that transaction, so that no consumer reads old events twice.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PG_XACT = "(pg_current_xact_id())::text::bigint"


def upgrade() -> None:
    """Apply this revision."""
    postgresql = op.get_bind().dialect.name == "postgresql"
    default = sa.text(PG_XACT if postgresql else "NULL")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("xact", sa.BigInteger(), server_default=default, nullable=True))
        batch_op.create_index(
            batch_op.f("ix_outbox_xact_id"),
            ["xact", "id"],
            unique=False,
            sqlite_where=sa.text("xact IS NOT NULL"),
        )
    with op.batch_alter_table("outbox_cursor", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_xact", sa.BigInteger(), server_default=sa.text("0"), nullable=False)
        )
    if postgresql:
        op.execute(f"UPDATE outbox_cursor SET last_xact = {PG_XACT}")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("outbox_cursor", schema=None) as batch_op:
        batch_op.drop_column("last_xact")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_xact_id"), sqlite_where=sa.text("xact IS NOT NULL"))
        batch_op.drop_column("xact")
