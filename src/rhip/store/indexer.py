"""Index entries → rows of the idx_* tables, with their hashes, for one resource."""

from __future__ import annotations

from typing import Any

from rhip.fhir.search.extract import IndexEntries
from rhip.store.hashing import exact_hash, identity, target_hash, token_hashes, units_hashes, uri_hash
from rhip.store.tables import ID_LENGTH, INDEX_BITS, URI_LENGTH

Rows = dict[str, list[tuple[Any, ...]]]
Tails = dict[str, list[tuple[Any, ...]]]


def index_tails(resource_type: str, entries: IndexEntries) -> tuple[Tails, int]:
    """The index rows of one resource without their leading pid, by kind, and the resource's index mask.

    Built before the unit of work takes the database's write lock; the flush prefixes the pid, which is
    only known (for new resources) once the lock is held.
    """
    comp = entries.compartment
    tails: Tails = {}
    mask = 0
    rt = resource_type
    if entries.strings:
        mask |= INDEX_BITS["strings"]
        tails["strings"] = [
            (comp, identity(rt, code), norm, exact, exact_hash(rt, code, exact))
            for code, norm, exact in entries.strings
        ]
    if entries.tokens:
        mask |= INDEX_BITS["tokens"]
        tails["tokens"] = [
            (comp, identity(rt, code), *token_hashes(rt, code, system, value), value[:200])
            for code, system, value in entries.tokens
        ]
    if entries.dates:
        mask |= INDEX_BITS["dates"]
        tails["dates"] = [(comp, identity(rt, code), low, high) for code, low, high in entries.dates]
    if entries.numbers:
        mask |= INDEX_BITS["numbers"]
        tails["numbers"] = [(comp, identity(rt, code), value) for code, value in entries.numbers]
    if entries.quantities:
        mask |= INDEX_BITS["quantities"]
        tails["quantities"] = [
            (comp, identity(rt, code), *units_hashes(rt, code, system, unit), low, high)
            for code, system, unit, low, high in entries.quantities
        ]
    if entries.references:
        mask |= INDEX_BITS["references"]
        tails["references"] = [
            (
                comp,
                identity(rt, code),
                ttype,
                tid,
                url[:URI_LENGTH] if url else None,
                target_hash(rt, code, ttype, tid, url),
            )
            for code, ttype, tid, url in map(_fitting, entries.references)
        ]
    if entries.uris:
        mask |= INDEX_BITS["uris"]
        tails["uris"] = [
            (comp, identity(rt, code), uri[:512], uri_hash(rt, code, uri)) for code, uri in entries.uris
        ]
    return tails, mask


def _fitting(
    entry: tuple[str, str | None, str | None, str | None],
) -> tuple[str, str | None, str | None, str | None]:
    """A reference whose type or id is longer than any resource's can be (64 characters) names no resource
    here: it is kept by its text, as a reference elsewhere is, rather than refused by the database."""
    code, ttype, tid, url = entry
    if (ttype is not None and len(ttype) > ID_LENGTH) or (tid is not None and len(tid) > ID_LENGTH):
        return code, None, None, url or (f"{ttype}/{tid}" if tid is not None else ttype)
    return entry


def add_rows(pid: int, tails: Tails, rows: Rows) -> None:
    """Append one resource's index rows, pid first, to ``rows`` (kind → list)."""
    key = (pid,)
    for kind, items in tails.items():
        rows[kind].extend([key + t for t in items])


INDEX_COLUMNS: dict[str, tuple[str, ...]] = {
    "strings": ("pid", "compartment", "hash_identity", "value_norm", "value_exact", "hash_exact"),
    "tokens": ("pid", "compartment", "hash_identity", "hash_sys", "hash_sys_value", "code"),
    "dates": ("pid", "compartment", "hash_identity", "low", "high"),
    "numbers": ("pid", "compartment", "hash_identity", "value"),
    "quantities": ("pid", "compartment", "hash_identity", "hash_sys_units", "hash_units", "low", "high"),
    "references": (
        "pid",
        "compartment",
        "hash_identity",
        "target_type",
        "target_id",
        "target_url",
        "hash_target",
    ),
    "uris": ("pid", "compartment", "hash_identity", "uri", "hash_uri"),
}
