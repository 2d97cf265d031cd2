"""The write path: a unit of work that buffers versions and flushes them in bulk.

Creates, updates and deletes are validated, given ids, versions and ``meta`` at once, then buffered;
``flush`` writes resource rows, version rows, index rows and outbox events with one ``executemany`` per
table, so a transaction Bundle of fifty resources costs a handful of statements. Reads inside the unit
of work flush first, so they see its own writes. Audit entries recorded in the unit are written by the
final flush only, at the end of the unit: appending to the audit log takes its lock until the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, text

from rhip.core.errors import Conflict, InvalidRequest, ValidationFailed, VersionConflict
from rhip.core.events import Event
from rhip.core.ids import is_valid_fhir_id, new_resource_id
from rhip.db import dialect
from rhip.db.audit import AuditRow, audit_row
from rhip.fhir.events import ResourceCreated, ResourceDeleted, ResourceUpdated
from rhip.fhir.repository import StoredResource
from rhip.store.apply import PreparedWrite, RowWrite, VersionWrite, apply
from rhip.store.context import StoreContext
from rhip.store.hashing import h64
from rhip.store.indexer import Tails, index_tails
from rhip.store.reader import instant


@dataclass(slots=True)
class _Row:
    """A logical resource touched by this unit of work."""

    res_type: str
    res_id: str
    pid: int | None
    in_db: bool  # a resource row exists and must be updated rather than inserted
    version: int
    deleted: bool
    db_mask: int  # index tables holding rows for the version in the database
    compartment: str | None = None
    tails: Tails | None = None  # index rows of the newest version, without their pid
    mask: int = 0  # index tables those rows go to


@dataclass(slots=True)
class _Version:
    row: _Row
    version: int
    updated_us: int
    method: str
    deleted: bool
    compartment: str | None
    content: bytes | None
    created: bool = False


class UnitOfWork:
    """Buffered writes inside one database transaction.

    The connection (and with it, on SQLite, the database's write lock) is taken only when the unit first
    needs the database: a unit that only creates resources validates and indexes everything first and
    touches the database once, in :meth:`flush`.
    """

    def __init__(self, connect: Callable[[], Connection], ctx: StoreContext) -> None:
        self._connect = connect
        self._conn: Connection | None = None
        self.ctx = ctx
        self._rows: dict[tuple[str, str], _Row] = {}
        self._versions: list[_Version] = []
        self.events: list[Event] = []
        self._now_us: int | None = None
        self._now_instant = ""
        self._claimed: dict[str, list[str]] = {}  # client-chosen ids of creates, by type
        self._fresh: set[str] = set()  # ids this unit of work generated (new_id), known to be unused
        self._audit: list[AuditRow] = []  # audit entries to commit with the writes

    # -- helpers --------------------------------------------------------------------------------
    @property
    def conn(self) -> Connection:
        """The unit's connection, taken at first use."""
        if self._conn is None:
            self._conn = self._connect()
        return self._conn

    @property
    def connected(self) -> bool:
        """Whether the unit has used the database yet."""
        return self._conn is not None

    @property
    def pending(self) -> bool:
        """Whether buffered writes or audit entries await a flush."""
        return bool(self._versions or self._audit)

    def now_us(self) -> int:
        """The transaction's timestamp (millisecond precision, shared by all its versions)."""
        if self._now_us is None:
            moment = self.ctx.clock.now()
            self._now_us = int(moment.timestamp() * 1000) * 1000
            self._now_instant = instant(self._now_us)
        return self._now_us

    def _validate(self, resource: Any, expected_type: str | None) -> tuple[str, dict[str, Any]]:
        """The resource's type and the resource as it will be stored (prepared, then validated)."""
        if not isinstance(resource, dict):
            raise InvalidRequest("A resource must be a JSON object")
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str) or not self.ctx.table.is_resource_type(rtype):
            raise InvalidRequest(f"Unknown resourceType {rtype!r}", expression=["resourceType"])
        if expected_type is not None and rtype != expected_type:
            raise InvalidRequest(
                f"Expected a {expected_type} but the body is a {rtype}", expression=["resourceType"]
            )
        if self.ctx.preparer is not None:
            resource = self.ctx.preparer.prepare(resource)
        if self.ctx.validator is not None:
            issues = [
                i
                for i in self.ctx.validator.validate(resource, expected_type=rtype)
                if i.severity in ("error", "fatal")
            ]
            if issues:
                raise ValidationFailed("", issues=issues)
        return rtype, resource

    def _row(self, rtype: str, rid: str) -> _Row | None:
        row = self._rows.get((rtype, rid))
        if row is not None:
            return row
        sql = (
            "SELECT pid, version, deleted, index_mask, compartment FROM resource WHERE res_type = :t AND res_id = :i"
            + dialect.for_update(self.conn)
        )
        found = self.conn.execute(text(sql), {"t": rtype, "i": rid}).first()
        if found is None:
            return None
        row = _Row(
            rtype,
            rid,
            int(found.pid),
            True,
            int(found.version),
            bool(found.deleted),
            int(found.index_mask),
            compartment=found.compartment,
        )
        self._rows[(rtype, rid)] = row
        return row

    def _store(
        self, row: _Row, resource: dict[str, Any], version: int, method: str, created: bool
    ) -> StoredResource:
        now = self.now_us()
        last_updated = self._now_instant
        meta = dict(resource.get("meta") or {})
        meta["versionId"] = str(version)
        meta["lastUpdated"] = last_updated
        body = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
        stored = {"resourceType": row.res_type, "id": row.res_id, "meta": meta, **body}
        entries = self.ctx.extractor.extract(stored)
        row.tails, row.mask = index_tails(row.res_type, entries)
        content = orjson.dumps(stored)
        row.version, row.deleted = version, False
        row.compartment = entries.compartment
        self._versions.append(
            _Version(row, version, now, method, False, entries.compartment, content, created)
        )
        event = ResourceCreated if created else ResourceUpdated
        self.events.append(event(row.res_type, row.res_id, version, entries.compartment))
        return StoredResource(row.res_type, row.res_id, version, last_updated, False, content, method)

    # -- writes ---------------------------------------------------------------------------------
    def create(self, resource: dict[str, Any], *, id: str | None = None, put: bool = False) -> StoredResource:
        """Store a new resource, with a server-assigned id unless ``id`` is given (``put``: recorded as a PUT)."""
        rtype, resource = self._validate(resource, None)
        method = "PUT" if put and id is not None else "POST"
        if id is None:
            id = new_resource_id()
        elif not is_valid_fhir_id(id):
            raise InvalidRequest(f"'{id}' is not a valid resource id", expression=["id"])
        elif (rtype, id) in self._rows:
            raise Conflict(f"{rtype}/{id} already exists")
        elif id in self._fresh:
            self._fresh.discard(id)
        else:
            # Checked for all such creates at once when flushing: one query instead of one per resource.
            self._claimed.setdefault(rtype, []).append(id)
        row = _Row(rtype, id, None, False, 0, True, 0)
        self._rows[(rtype, id)] = row
        return self._store(row, resource, 1, method, True)

    def update(
        self, resource_type: str, id: str, resource: dict[str, Any], *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        """Store a new version, or create the resource with this id; returns (version, created)."""
        _, resource = self._validate(resource, resource_type)
        if not is_valid_fhir_id(id):
            raise InvalidRequest(f"'{id}' is not a valid resource id", expression=["id"])
        if resource.get("id") not in (None, id):
            raise InvalidRequest(
                f"The id in the body ({resource.get('id')!r}) does not match the URL ({id!r})",
                expression=["id"],
            )
        row = self._row(resource_type, id)
        if row is None:
            if if_match is not None:
                raise VersionConflict(
                    f"{resource_type}/{id} does not exist, so version {if_match} cannot match"
                )
            row = _Row(resource_type, id, None, False, 0, True, 0)
            self._rows[(resource_type, id)] = row
            return self._store(row, resource, 1, "PUT", True), True
        if if_match is not None and row.version != if_match:
            raise VersionConflict(f"{resource_type}/{id} is at version {row.version}, not {if_match}")
        created = row.deleted
        return self._store(row, resource, row.version + 1, "PUT", created), created

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        """Delete the current version; None when there was nothing to delete."""
        row = self._row(resource_type, id)
        if row is None or row.deleted:
            return None
        now = self.now_us()
        row.version += 1
        row.deleted, row.tails, row.mask = True, None, 0
        self._versions.append(_Version(row, row.version, now, "DELETE", True, row.compartment, None))
        self.events.append(ResourceDeleted(resource_type, id, row.version, row.compartment))
        return StoredResource(resource_type, id, row.version, instant(now), True, None, "DELETE")

    def new_id(self) -> str:
        """A fresh id that a later create in this unit of work may use without an existence check."""
        rid = new_resource_id()
        self._fresh.add(rid)
        return rid

    def lock(self, key: str) -> None:
        """Serialise with other units of work using ``key`` (PostgreSQL advisory lock; SQLite is serial)."""
        dialect.lock_key(self.conn, h64("lock", key))

    def record(self, entry: Mapping[str, Any]) -> None:
        """Buffer an audit entry (checked now: ``ValueError`` when malformed) to commit with the writes."""
        self._audit.append(audit_row(entry))

    # -- flush ----------------------------------------------------------------------------------
    def flush(self, *, final: bool = False) -> None:
        """Write every buffered version, resource row, index row and event on the unit's connection.

        ``final``: the unit ends here, so its audit entries are written too.
        """
        if self._versions or (final and self._audit):
            self.flush_on(self.conn, final=final)

    def flush_on(self, conn: Connection, *, final: bool = True) -> None:
        """Write every buffered version on ``conn`` (a shared group-commit transaction, or the unit's own)."""
        if not (self._versions or (final and self._audit)):
            return
        prepared, touched = self._prepare(final)
        pids = apply(conn, prepared)
        self._settle(prepared, touched, pids)

    def prepare(self) -> PreparedWrite:
        """The buffered writes as plain data, for a writer elsewhere (the unit may not be used afterwards)."""
        prepared, _ = self._prepare(True)
        return prepared

    def _prepare(self, final: bool) -> tuple[PreparedWrite, list[_Row]]:
        versions, self._versions = self._versions, []
        claimed, self._claimed = self._claimed, {}
        entries: list[AuditRow] = []
        if final:
            entries, self._audit = self._audit, []
        touched = list({id(v.row): v.row for v in versions}.values())
        position = {id(row): i for i, row in enumerate(touched)}
        rows = [
            RowWrite(
                r.res_type,
                r.res_id,
                r.pid,
                r.in_db,
                r.version,
                r.deleted,
                r.compartment,
                r.db_mask,
                0 if r.deleted else r.mask,
                None if r.deleted else r.tails,
            )
            for r in touched
        ]
        writes = [
            VersionWrite(
                position[id(v.row)],
                v.version,
                v.updated_us,
                v.method,
                v.deleted,
                v.compartment,
                v.content,
                v.created,
            )
            for v in versions
        ]
        return PreparedWrite(rows, writes, claimed, entries), touched

    @staticmethod
    def _settle(prepared: PreparedWrite, touched: list[_Row], pids: list[int]) -> None:
        # The rows are in the database now: later writes in this unit update them.
        for row, written, pid in zip(touched, prepared.rows, pids, strict=True):
            row.pid, row.in_db, row.db_mask = pid, True, written.mask
