"""Security: identity (``rhip.security.identity.tables``): users, clients, signing keys, refresh tokens,
revoked tokens and used client assertions.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "security_user",
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("institution", sa.String(length=64), nullable=True),
        sa.Column("organization", sa.String(length=64), nullable=True),
        sa.Column("department", sa.String(length=64), nullable=True),
        sa.Column("district", sa.String(length=12), nullable=True),
        sa.Column("patients", sa.Text(), nullable=False),
        sa.Column("totp_secret", sa.String(length=128), nullable=True),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_count", sa.Integer(), nullable=False),
        sa.Column("locked_until_us", sa.BigInteger(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("username", name=op.f("pk_security_user")),
    )
    op.create_table(
        "security_client",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("institution", sa.String(length=64), nullable=True),
        sa.Column("organization", sa.String(length=64), nullable=True),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("jwks", sa.Text(), nullable=True),
        sa.Column("jwks_url", sa.String(length=1024), nullable=True),
        sa.Column("cert_sha256", sa.String(length=64), nullable=True),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", name=op.f("pk_security_client")),
    )
    op.create_index(op.f("ix_security_client_cert_sha256"), "security_client", ["cert_sha256"], unique=True)
    op.create_table(
        "security_signing_key",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("alg", sa.String(length=8), nullable=False),
        sa.Column("public_jwk", sa.Text(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("retired_us", sa.BigInteger(), nullable=True),
        sa.Column("expires_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_security_signing_key")),
    )
    op.create_table(
        "security_refresh_token",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=64), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=128), nullable=True),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("issued_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.Column("used_us", sa.BigInteger(), nullable=True),
        sa.Column("revoked_us", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_security_refresh_token")),
    )
    op.create_index(
        op.f("ix_security_refresh_token_family"), "security_refresh_token", ["family"], unique=False
    )
    op.create_index(
        op.f("ix_security_refresh_token_expires_us"), "security_refresh_token", ["expires_us"], unique=False
    )
    op.create_table(
        "security_revoked_token",
        sa.Column("jti", sa.String(length=80), nullable=False),
        sa.Column("revoked_us", sa.BigInteger(), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_security_revoked_token")),
    )
    op.create_index(
        op.f("ix_security_revoked_token_expires_us"), "security_revoked_token", ["expires_us"], unique=False
    )
    op.create_table(
        "security_used_assertion",
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("jti", sa.String(length=128), nullable=False),
        sa.Column("expires_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_id", "jti", name=op.f("pk_security_used_assertion")),
    )
    op.create_index(
        op.f("ix_security_used_assertion_expires_us"), "security_used_assertion", ["expires_us"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("security_used_assertion")
    op.drop_table("security_revoked_token")
    op.drop_table("security_refresh_token")
    op.drop_table("security_signing_key")
    op.drop_table("security_client")
    op.drop_table("security_user")
