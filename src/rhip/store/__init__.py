"""L2 SQL implementation of the FHIR repository (SQLite and PostgreSQL). Only bootstrap imports it."""
