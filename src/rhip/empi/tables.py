"""The EMPI's tables: source records with their links, blocking keys, masters, decisions, review, history.

Created by migration 0003 (``rhip db upgrade``). Every source Patient the EMPI has seen has one
``empi_record`` row holding its normalised features and its link (master, state, origin, score); the
master's golden Patient is ``empi_master.content``. Manual decisions live apart from the links they
caused (``empi_no_match``, ``empi_record.origin = 'manual'``) so that relinking can honour them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, Integer, LargeBinary, String, Table, Text

from rhip.db.metadata import BigKey, metadata

# Link states (HAPI MDM's match results) and origins.
MATCH, POSSIBLE_MATCH = "match", "possible-match"
AUTO, MANUAL = "auto", "manual"

empi_record = Table(
    "empi_record",
    metadata,
    Column("patient_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),  # the Patient version the features come from
    Column("master_id", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # match | possible-match
    Column("origin", String(8), nullable=False),  # auto | manual
    Column("weight", Float, nullable=True),  # match weight of the link (None: the first of its person)
    Column("features", LargeBinary, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index(None, "master_id"),
)

empi_block = Table(
    "empi_block",
    metadata,
    Column("key", BigInteger, primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Index(None, "patient_id"),
    sqlite_with_rowid=False,
)

empi_master = Table(
    "empi_master",
    metadata,
    Column("master_id", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # active | merged | retired
    Column("merged_into", String(64), nullable=True),
    Column("content", LargeBinary, nullable=True),  # the golden Patient (JSON); None once retired
    Column("updated_us", BigInteger, nullable=False),
)

empi_no_match = Table(
    "empi_no_match",
    metadata,
    Column("patient_a", String(64), primary_key=True),  # the smaller id of the pair
    Column("patient_b", String(64), primary_key=True),
    Column("actor", String(128), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Index(None, "patient_b"),
)

empi_review = Table(
    "empi_review",
    metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("patient_id", String(64), nullable=False),
    Column("master_id", String(64), nullable=False),  # the candidate master
    Column("weight", Float, nullable=False),
    Column("reason", String(64), nullable=False),
    Column("status", String(12), nullable=False),  # open | linked | separate | stale
    Column("created_us", BigInteger, nullable=False),
    Column("decided_us", BigInteger, nullable=True),
    Column("actor", String(128), nullable=True),
    Index(None, "status", "id"),
    Index(None, "patient_id"),
)

empi_history = Table(
    "empi_history",
    metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column(
        "action", String(16), nullable=False
    ),  # link | new | review | relink | unlink | merge | unmerge | remove
    Column("patient_id", String(64), nullable=True),
    Column("master_id", String(64), nullable=True),
    Column("previous_master_id", String(64), nullable=True),
    Column("state", String(16), nullable=True),
    Column("origin", String(8), nullable=True),
    Column("weight", Float, nullable=True),
    Column("actor", String(128), nullable=False),
    Column("detail", Text, nullable=True),
    Index(None, "patient_id", "id"),
    Index(None, "master_id", "id"),
)

empi_model = Table(
    "empi_model",
    metadata,
    Column("version", String(64), primary_key=True),
    Column("created_us", BigInteger, nullable=False),
    Column("active", Integer, nullable=False),  # 1 for the model in use
    Column("content", LargeBinary, nullable=False),
)
