"""L1 database infrastructure: engines for SQLite and PostgreSQL, metadata, dialect differences, outbox, migrations."""
