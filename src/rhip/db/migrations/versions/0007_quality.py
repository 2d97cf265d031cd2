"""Data quality (``rhip.quality.tables``): versions scored, counts per day, institution and rule, examples.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 06:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "quality_scored",
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("institution", sa.String(length=128), nullable=False),
        sa.Column("scored_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("res_type", "res_id", "version", name=op.f("pk_quality_scored")),
    )
    op.create_table(
        "quality_daily",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("institution", sa.String(length=128), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=16), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("element", sa.String(length=255), nullable=False),
        sa.Column("checked", sa.BigInteger(), nullable=False),
        sa.Column("passed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "institution", "rule_id", name=op.f("pk_quality_daily")),
    )
    op.create_table(
        "quality_arrivals",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("institution", sa.String(length=128), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("bucket", sa.String(length=16), nullable=False),
        sa.Column("resources", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "institution", "res_type", "bucket", name=op.f("pk_quality_arrivals")),
    )
    op.create_table(
        "quality_example",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("institution", sa.String(length=128), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("element", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "institution", "rule_id", "res_type", "res_id", "version", name=op.f("pk_quality_example")
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("quality_example")
    op.drop_table("quality_arrivals")
    op.drop_table("quality_daily")
    op.drop_table("quality_scored")
