"""Writing a prepared unit of work: the part of a write that needs the database.

A :class:`PreparedWrite` is plain data (it pickles), so it can be applied in the process that prepared it
or handed to the writer process (:mod:`rhip.store.write_service`). Applying it allocates keys, inserts the
version, resource, index and outbox rows with one ``executemany`` per table, removes the index rows
of the versions it replaces, and chains the unit's audit entries onto the audit log last (the log's lock
is then held only from there to the commit).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from rhip.core.errors import Conflict
from rhip.db import dialect, outbox
from rhip.db.audit import AuditRow
from rhip.db.audit import append as append_audit
from rhip.store.indexer import INDEX_COLUMNS, Rows, Tails, add_rows
from rhip.store.tables import INDEX_BITS, INDEX_TABLES, resource, resource_version

RESOURCE_COLUMNS = (
    "pid",
    "res_type",
    "res_id",
    "version",
    "vid",
    "updated_us",
    "deleted",
    "compartment",
    "index_mask",
)
VERSION_COLUMNS = (
    "vid",
    "pid",
    "res_type",
    "res_id",
    "version",
    "updated_us",
    "method",
    "deleted",
    "compartment",
    "content",
)


class RowWrite(NamedTuple):
    """The state a resource row has after the unit of work."""

    res_type: str
    res_id: str
    pid: int | None  # None: a new resource, its pid is allocated when applied
    in_db: bool  # the row exists and is updated rather than inserted
    version: int
    deleted: bool
    compartment: str | None
    db_mask: int  # index tables holding rows of the version being replaced
    mask: int  # index tables the new rows go to
    tails: Tails | None  # index rows without their leading pid


class VersionWrite(NamedTuple):
    """One stored version, referring to its row by position in :attr:`PreparedWrite.rows`."""

    row: int
    version: int
    updated_us: int
    method: str
    deleted: bool
    compartment: str | None
    content: bytes | None
    created: bool


Wire = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], dict[str, list[str]], list[tuple[Any, ...]]]


@dataclass
class PreparedWrite:
    """Everything one unit of work writes."""

    rows: list[RowWrite] = field(default_factory=list)
    versions: list[VersionWrite] = field(default_factory=list)
    claimed: dict[str, list[str]] = field(default_factory=dict)  # client-chosen ids of creates, to check
    audit: list[AuditRow] = field(default_factory=list)  # audit entries committed with the writes

    def to_wire(self) -> Wire:
        """Plain tuples, lists and dicts: what the writer process receives (no classes to unpickle)."""
        rows = [tuple(r) for r in self.rows]
        return rows, [tuple(v) for v in self.versions], self.claimed, [tuple(a) for a in self.audit]

    @classmethod
    def from_wire(cls, wire: Wire) -> PreparedWrite:
        """The prepared write of :meth:`to_wire`'s output; ``TypeError`` or ``ValueError`` for another shape."""
        rows, versions, claimed, entries = wire
        return cls(
            [RowWrite(*r) for r in rows],
            [VersionWrite(*v) for v in versions],
            dict(claimed),
            [AuditRow(*a) for a in entries],
        )


def _event(v: VersionWrite) -> str:
    if v.deleted:
        return "ResourceDeleted"
    return "ResourceCreated" if v.created else "ResourceUpdated"


def check_claimed(conn: Connection, claimed: dict[str, list[str]]) -> None:
    """Conflict when an id chosen for a new resource is taken already."""
    for rtype, ids in claimed.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            taken = conn.execute(
                select(resource.c.res_id)
                .where(resource.c.res_type == rtype, resource.c.res_id.in_(chunk))
                .limit(1)
            ).scalar()
            if taken is not None:
                raise Conflict(f"{rtype}/{taken} already exists")


def apply(conn: Connection, prepared: PreparedWrite) -> list[int]:
    """Write ``prepared`` on ``conn`` (inside its transaction); returns the pid of each row."""
    if not prepared.versions:
        append_audit(conn, prepared.audit)
        return [r.pid or 0 for r in prepared.rows]
    check_claimed(conn, prepared.claimed)
    rows = prepared.rows
    new = [i for i, r in enumerate(rows) if r.pid is None]
    pids = [r.pid or 0 for r in rows]
    for i, pid in zip(
        new, dialect.allocate_ids(conn, resource, "pid", "resource_pid_seq", len(new)), strict=True
    ):
        pids[i] = pid
    versions = prepared.versions
    vids = dialect.allocate_ids(conn, resource_version, "vid", "resource_version_vid_seq", len(versions))
    last_vid = [0] * len(rows)
    version_rows = []
    for v, vid in zip(versions, vids, strict=True):
        r = rows[v.row]
        last_vid[v.row] = vid
        version_rows.append(
            (
                vid,
                pids[v.row],
                r.res_type,
                r.res_id,
                v.version,
                v.updated_us,
                v.method,
                v.deleted,
                v.compartment,
                v.content,
            )
        )
    dialect.insert_rows(conn, resource_version, VERSION_COLUMNS, version_rows)

    index: Rows = defaultdict(list)
    stale: dict[str, list[int]] = defaultdict(list)
    inserts, updates = [], []
    now = versions[-1].updated_us
    for i, r in enumerate(rows):
        pid = pids[i]
        if r.in_db:
            for kind, bit in INDEX_BITS.items():
                if r.db_mask & bit:
                    stale[kind].append(pid)
        mask = 0
        if r.tails and not r.deleted:
            add_rows(pid, r.tails, index)
            mask = r.mask
        if r.in_db:
            updates.append((r.version, last_vid[i], now, r.deleted, r.compartment, mask, pid))
        else:
            inserts.append(
                (pid, r.res_type, r.res_id, r.version, last_vid[i], now, r.deleted, r.compartment, mask)
            )
    for kind, stale_pids in stale.items():
        dialect.delete_by_keys(conn, INDEX_TABLES[kind], "pid", stale_pids)
    dialect.insert_rows(conn, resource, RESOURCE_COLUMNS, inserts)
    if updates:
        dialect.execute_many(
            conn,
            "UPDATE resource SET version={m}, vid={m}, updated_us={m}, deleted={m}, compartment={m}, index_mask={m} WHERE pid={m}",
            updates,
        )
    for kind, index_rows in index.items():
        dialect.insert_rows(conn, INDEX_TABLES[kind], INDEX_COLUMNS[kind], index_rows, skip_duplicates=True)
    outbox.append(
        conn,
        [
            (_event(v), rows[v.row].res_type, rows[v.row].res_id, v.version, v.compartment, v.updated_us)
            for v in versions
        ],
    )
    append_audit(conn, prepared.audit)
    return pids
