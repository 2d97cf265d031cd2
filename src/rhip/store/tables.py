"""Tables of the FHIR store.

``resource`` holds one row per logical resource (its current version number and state); the JSON of
every version lives in ``resource_version``. Search uses per-kind index tables (``idx_*``) holding rows
for current, non-deleted versions only, keyed by 64-bit hashes of (type, parameter, value) in the manner
of HAPI's HFJ_SPIDX tables. Every clinical row carries ``compartment``: the id of the Patient whose
compartment the resource is in, the future shard key.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
)

from rhip.db.metadata import BigKey, metadata

ID_LENGTH = 64
STRING_LENGTH = 200
URI_LENGTH = 512


def sortable(length: int) -> String:
    """A string compared by code point on both backends, so prefix ranges (``>= p AND < p+U+10FFFF``) work."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


resource = Table(
    "resource",
    metadata,
    Column("pid", BigKey, primary_key=True, autoincrement=False),
    Column("res_type", String(ID_LENGTH), nullable=False),
    Column("res_id", String(ID_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("vid", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("compartment", String(ID_LENGTH), nullable=True),
    Column("index_mask", Integer, nullable=False),
    UniqueConstraint("res_type", "res_id"),
    Index(None, "res_type", "pid"),
    Index(None, "res_type", "updated_us"),
)

resource_version = Table(
    "resource_version",
    metadata,
    Column("vid", BigKey, primary_key=True, autoincrement=False),
    Column("pid", BigInteger, nullable=False),
    Column("res_type", String(ID_LENGTH), nullable=False),
    Column("res_id", String(ID_LENGTH), nullable=False),
    Column("version", Integer, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("method", String(8), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("compartment", String(ID_LENGTH), nullable=True),
    Column("content", LargeBinary, nullable=True),
    UniqueConstraint("pid", "version"),
    Index(None, "res_type", "vid"),
    Index(None, "updated_us"),
)


def _index_table(
    name: str,
    *columns: Column[object],
    key: tuple[str, ...],
    indexes: tuple[tuple[str, ...], ...],
    include: tuple[str, ...] = (),
) -> Table:
    """An index table clustered by resource: its primary key starts with ``pid``.

    On SQLite the table is WITHOUT ROWID, so the rows of one resource sit together in the table's own
    B-tree: new rows append (pids grow), updates find old rows by pid, and no separate pid index is needed.
    """
    table = Table(
        name,
        metadata,
        Column("pid", BigInteger, nullable=False),
        Column("compartment", String(ID_LENGTH), nullable=True),
        Column("hash_identity", BigInteger, nullable=False),
        *columns,
        PrimaryKeyConstraint("pid", *key),
        sqlite_with_rowid=False,
    )
    for cols in indexes:
        # On PostgreSQL the index also carries the primary-key columns a search checks (SQLite's indexes of a
        # WITHOUT ROWID table do so by themselves), so a count or a probe never visits the table.
        Index(None, *(table.c[c] for c in cols), postgresql_include=[c for c in include if c not in cols])
    return table


idx_string = _index_table(
    "idx_string",
    Column("value_norm", sortable(STRING_LENGTH), nullable=False),
    Column("value_exact", String(STRING_LENGTH), nullable=False),
    Column("hash_exact", BigInteger, nullable=False),
    key=("hash_exact",),
    # :exact seeks the normalised value and checks hash_exact, which the index carries with the primary key.
    indexes=(("hash_identity", "value_norm"),),
    include=("pid", "hash_exact"),
)
idx_token = _index_table(
    "idx_token",
    Column("hash_sys", BigInteger, nullable=False),
    Column("hash_sys_value", BigInteger, nullable=False),
    Column("code", sortable(STRING_LENGTH), nullable=False),
    key=("hash_sys_value",),
    # One index serves code, system|code (hash_sys_value rides along with the primary key) and system|;
    # rows of one code are ordered by pid, so new rows append to the end of their code's range.
    indexes=(("hash_identity", "code", "pid"),),
    include=("hash_sys_value", "hash_sys"),
)
idx_date = _index_table(
    "idx_date",
    Column("low", BigInteger, nullable=False),
    Column("high", BigInteger, nullable=False),
    key=("hash_identity", "low", "high"),
    indexes=(("hash_identity", "low", "high"),),
    include=("pid",),
)
idx_number = _index_table(
    "idx_number",
    Column("value", Float, nullable=False),
    key=("hash_identity", "value"),
    indexes=(("hash_identity", "value"),),
    include=("pid",),
)
idx_quantity = _index_table(
    "idx_quantity",
    Column("hash_sys_units", BigInteger, nullable=False),
    Column("hash_units", BigInteger, nullable=False),
    Column("low", Float, nullable=False),
    Column("high", Float, nullable=False),
    key=("hash_sys_units", "low", "high"),
    # Ordered by pid, not value: quantities are random, so a value-ordered index would put nearly every
    # new row on its own page (a quarter of all pages an ingest commit writes). A value search scans its
    # parameter's range of this covering index instead; composites (code-value-quantity) narrow it to one code.
    indexes=(("hash_identity", "pid", "low", "high"),),
    include=("hash_sys_units", "hash_units"),
)
idx_reference = _index_table(
    "idx_reference",
    Column("target_type", String(ID_LENGTH), nullable=True),
    Column("target_id", String(ID_LENGTH), nullable=True),
    Column("target_url", String(URI_LENGTH), nullable=True),
    Column("hash_target", BigInteger, nullable=False),
    key=("hash_target",),
    indexes=(("hash_identity", "target_id", "pid"),),
    include=("target_type",),
)
Index(
    "ix_idx_reference_hash_identity_target_url",
    idx_reference.c.hash_identity,
    idx_reference.c.target_url,
    sqlite_where=idx_reference.c.target_url.is_not(None),
    postgresql_where=idx_reference.c.target_url.is_not(None),
)
idx_uri = _index_table(
    "idx_uri",
    Column("uri", sortable(URI_LENGTH), nullable=False),
    Column("hash_uri", BigInteger, nullable=False),
    key=("hash_uri",),
    indexes=(("hash_identity", "uri"),),
    include=("pid",),
)

# Bit positions of the index tables in resource.index_mask: an update deletes old rows only where it had some.
INDEX_TABLES: dict[str, Table] = {
    "strings": idx_string,
    "tokens": idx_token,
    "dates": idx_date,
    "numbers": idx_number,
    "quantities": idx_quantity,
    "references": idx_reference,
    "uris": idx_uri,
}
INDEX_BITS: dict[str, int] = {kind: 1 << i for i, kind in enumerate(INDEX_TABLES)}

search_cache = Table(
    "search_cache",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("res_type", String(ID_LENGTH), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("total", Integer, nullable=False),
    Column("truncated", Boolean, nullable=False),
    Column("pids", LargeBinary, nullable=False),
    Index(None, "expires_us"),
)
