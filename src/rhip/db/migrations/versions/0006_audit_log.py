"""Audit (``rhip.db.audit``): the hash-chained audit log, its patient index and the chain's head.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "audit_log",
        sa.Column("seq", _KEY, autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("recorded_us", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=1), nullable=False),
        sa.Column("outcome", sa.String(length=2), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("subtype", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("institution", sa.String(length=64), nullable=True),
        sa.Column("client", sa.String(length=128), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=True),
        sa.Column("patients", sa.Text(), nullable=False),
        sa.Column("entities", sa.Text(), nullable=False),
        sa.Column("event", sa.LargeBinary(), nullable=False),
        sa.Column("algorithm", sa.String(length=8), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
        sa.UniqueConstraint("id", name=op.f("uq_audit_log_id")),
    )
    op.create_index(op.f("ix_audit_log_subject_seq"), "audit_log", ["subject", "seq"], unique=False)
    op.create_index(op.f("ix_audit_log_institution_seq"), "audit_log", ["institution", "seq"], unique=False)
    op.create_index(op.f("ix_audit_log_recorded_us"), "audit_log", ["recorded_us"], unique=False)
    op.create_table(
        "audit_patient",
        sa.Column("patient", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("patient", "seq", name=op.f("pk_audit_patient")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_audit_patient_seq"), "audit_patient", ["seq"], unique=False)
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("audit_head")
    op.drop_table("audit_patient")
    op.drop_table("audit_log")
