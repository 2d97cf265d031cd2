"""EMPI: source records and their links, blocking keys, masters, manual no-match decisions, the review
queue, link history and trained models (the tables of ``rhip.empi.tables``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "empi_record",
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("master_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=8), nullable=False),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("features", sa.LargeBinary(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_empi_record")),
    )
    op.create_index(op.f("ix_empi_record_master_id"), "empi_record", ["master_id"], unique=False)
    op.create_table(
        "empi_block",
        sa.Column("key", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("key", "patient_id", name=op.f("pk_empi_block")),
        sqlite_with_rowid=False,
    )
    op.create_index(op.f("ix_empi_block_patient_id"), "empi_block", ["patient_id"], unique=False)
    op.create_table(
        "empi_master",
        sa.Column("master_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("merged_into", sa.String(length=64), nullable=True),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("master_id", name=op.f("pk_empi_master")),
    )
    op.create_table(
        "empi_no_match",
        sa.Column("patient_a", sa.String(length=64), nullable=False),
        sa.Column("patient_b", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("patient_a", "patient_b", name=op.f("pk_empi_no_match")),
    )
    op.create_index(op.f("ix_empi_no_match_patient_b"), "empi_no_match", ["patient_b"], unique=False)
    op.create_table(
        "empi_review",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("master_id", sa.String(length=64), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("decided_us", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_empi_review")),
    )
    op.create_index(op.f("ix_empi_review_status_id"), "empi_review", ["status", "id"], unique=False)
    op.create_index(op.f("ix_empi_review_patient_id"), "empi_review", ["patient_id"], unique=False)
    op.create_table(
        "empi_history",
        sa.Column("id", _KEY, autoincrement=True, nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("master_id", sa.String(length=64), nullable=True),
        sa.Column("previous_master_id", sa.String(length=64), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=True),
        sa.Column("origin", sa.String(length=8), nullable=True),
        sa.Column("weight", sa.Float(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_empi_history")),
    )
    op.create_index(op.f("ix_empi_history_patient_id_id"), "empi_history", ["patient_id", "id"], unique=False)
    op.create_index(op.f("ix_empi_history_master_id_id"), "empi_history", ["master_id", "id"], unique=False)
    op.create_table(
        "empi_model",
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_empi_model")),
    )


def downgrade() -> None:
    """Revert this revision."""
    for table in ("empi_model", "empi_history", "empi_review", "empi_no_match", "empi_master", "empi_block"):
        op.drop_table(table)
    op.drop_table("empi_record")
