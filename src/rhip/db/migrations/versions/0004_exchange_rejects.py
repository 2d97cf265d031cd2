"""Exchange: the rejects store (``rhip.exchange.rejects.tables``): refused messages and documents with their bytes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "exchange_reject",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("received_us", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("sender", sa.String(length=128), nullable=False),
        sa.Column("application", sa.String(length=128), nullable=False),
        sa.Column("control_id", sa.String(length=128), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("reason_code", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("ack", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("resolved_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_reject")),
    )
    op.create_index(
        op.f("ix_exchange_reject_channel_sender_control_id"),
        "exchange_reject",
        ["channel", "sender", "control_id"],
        unique=False,
    )
    op.create_index(op.f("ix_exchange_reject_status_id"), "exchange_reject", ["status", "id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("exchange_reject")
