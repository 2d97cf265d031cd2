"""Alembic migrations of the rhip schema (one linear history for every capability's tables)."""
