"""The shared SQLAlchemy MetaData with a naming convention, so constraint and index names are stable."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# A 64-bit key that is SQLite's rowid alias when it is the primary key (fast lookups, no extra index).
BigKey = BigInteger().with_variant(Integer(), "sqlite")
