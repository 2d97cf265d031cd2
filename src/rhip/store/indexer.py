"""Index entries → rows of the idx_* tables, with their hashes, for one resource."""

from __future__ import annotations

from typing import Any

from rhip.fhir.search.extract import IndexEntries
from rhip.store.hashing import exact_hash, identity, target_hash, token_hashes, units_hashes, uri_hash
from rhip.store.tables import INDEX_BITS

Rows = dict[str, list[tuple[Any, ...]]]


def index_rows(resource_type: str, pid: int, entries: IndexEntries, rows: Rows) -> int:
    """Append the rows of one resource to ``rows`` (kind → list) and return its index mask."""
    comp = entries.compartment
    mask = 0
    if entries.strings:
        mask |= INDEX_BITS["strings"]
        rows["strings"].extend(
            (pid, comp, identity(resource_type, code), norm, exact, exact_hash(resource_type, code, exact))
            for code, norm, exact in entries.strings
        )
    if entries.tokens:
        mask |= INDEX_BITS["tokens"]
        out = rows["tokens"]
        for code, system, value in entries.tokens:
            out.append((pid, comp, identity(resource_type, code), *token_hashes(resource_type, code, system, value), value[:200]))
    if entries.dates:
        mask |= INDEX_BITS["dates"]
        rows["dates"].extend((pid, comp, identity(resource_type, code), low, high) for code, low, high in entries.dates)
    if entries.numbers:
        mask |= INDEX_BITS["numbers"]
        rows["numbers"].extend((pid, comp, identity(resource_type, code), value) for code, value in entries.numbers)
    if entries.quantities:
        mask |= INDEX_BITS["quantities"]
        rows["quantities"].extend(
            (pid, comp, identity(resource_type, code), *units_hashes(resource_type, code, system, unit), low, high)
            for code, system, unit, low, high in entries.quantities
        )
    if entries.references:
        mask |= INDEX_BITS["references"]
        rows["references"].extend(
            (pid, comp, identity(resource_type, code), ttype, tid, url[:512] if url else None,
             target_hash(resource_type, code, ttype, tid, url))
            for code, ttype, tid, url in entries.references
        )  # fmt: skip
    if entries.uris:
        mask |= INDEX_BITS["uris"]
        rows["uris"].extend(
            (pid, comp, identity(resource_type, code), uri[:512], uri_hash(resource_type, code, uri))
            for code, uri in entries.uris
        )
    return mask


INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "strings": ("pid", "compartment", "hash_identity", "value_norm", "value_exact", "hash_exact"),
    "tokens": ("pid", "compartment", "hash_identity", "hash_sys", "hash_sys_value", "code"),
    "dates": ("pid", "compartment", "hash_identity", "low", "high"),
    "numbers": ("pid", "compartment", "hash_identity", "value"),
    "quantities": ("pid", "compartment", "hash_identity", "hash_sys_units", "hash_units", "low", "high"),
    "references": ("pid", "compartment", "hash_identity", "target_type", "target_id", "target_url", "hash_target"),
    "uris": ("pid", "compartment", "hash_identity", "uri", "hash_uri"),
}
