"""Reading stored resources: current versions, versions, history, and bulk fetches for search pages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from rhip.core.clock import fhir_instant
from rhip.core.errors import InvalidRequest, ResourceGone, ResourceNotFound
from rhip.fhir.repository import HistoryPage, HistoryRequest, StoredResource
from rhip.fhir.search.values import us_to_datetime
from rhip.store.tables import resource, resource_version

_CURRENT = (
    select(
        resource.c.pid,
        resource.c.res_type,
        resource.c.res_id,
        resource.c.version,
        resource.c.updated_us,
        resource.c.deleted,
        resource.c.compartment,
        resource_version.c.content,
    )
    .select_from(resource)
    .join(resource_version, resource_version.c.vid == resource.c.vid)
)


def instant(us: int) -> str:
    """A stored microsecond timestamp as a FHIR instant."""
    return fhir_instant(us_to_datetime(us))


def _stored(row: Any, method: str = "") -> StoredResource:
    return StoredResource(
        resource_type=row.res_type,
        id=row.res_id,
        version=row.version,
        last_updated=instant(row.updated_us),
        deleted=bool(row.deleted),
        content=bytes(row.content) if row.content is not None else None,
        method=method,
        compartment=getattr(row, "compartment", None),
    )


def read_current(conn: Connection, resource_type: str, id: str) -> StoredResource:
    """The current version of a resource; ResourceNotFound or ResourceGone otherwise."""
    row = conn.execute(_CURRENT.where(resource.c.res_type == resource_type, resource.c.res_id == id)).first()
    if row is None:
        raise ResourceNotFound(f"{resource_type}/{id} is not known")
    if row.deleted:
        raise ResourceGone(f"{resource_type}/{id} has been deleted")
    return _stored(row)


def read_version(conn: Connection, resource_type: str, id: str, version: int) -> StoredResource:
    """One version of a resource."""
    pid = _pid_of(conn, resource_type, id)
    if pid is None:
        raise ResourceNotFound(f"{resource_type}/{id} is not known")
    row = conn.execute(
        select(resource_version).where(resource_version.c.pid == pid, resource_version.c.version == version)
    ).first()
    if row is None:
        raise ResourceNotFound(f"{resource_type}/{id} has no version {version}")
    if row.deleted:
        raise ResourceGone(f"{resource_type}/{id} version {version} is a deletion")
    return _stored(row, row.method)


def _pid_of(conn: Connection, resource_type: str, id: str) -> int | None:
    found = conn.execute(
        select(resource.c.pid).where(resource.c.res_type == resource_type, resource.c.res_id == id)
    ).scalar()
    return int(found) if found is not None else None


_CURRENT_SQL = (
    "SELECT r.pid, r.res_type, r.res_id, r.version, r.updated_us, r.deleted, r.compartment, v.content "
    "FROM resource r JOIN resource_version v ON v.vid = r.vid WHERE r.deleted = FALSE AND "
)


def _marks(conn: Connection, count: int) -> str:
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    return ", ".join([mark] * count)


def fetch_by_pids(conn: Connection, pids: Sequence[int]) -> list[tuple[int, StoredResource]]:
    """Current non-deleted versions of the given resources with their pids, in the order of ``pids``."""
    found: dict[int, StoredResource] = {}
    for start in range(0, len(pids), 500):
        chunk = list(pids[start : start + 500])
        for row in conn.exec_driver_sql(f"{_CURRENT_SQL}r.pid IN ({_marks(conn, len(chunk))})", tuple(chunk)):
            found[row.pid] = _stored(row)
    return [(p, found[p]) for p in pids if p in found]


def fetch_by_refs(
    conn: Connection, refs: Iterable[tuple[str, str]], since_us: int | None = None
) -> list[tuple[int, StoredResource]]:
    """Current non-deleted resources named by ``(type, id)``, with their pids.

    ``since_us`` keeps only those whose current version was stored at or after that instant.
    """
    by_type: dict[str, set[str]] = defaultdict(set)
    for rtype, rid in refs:
        by_type[rtype].add(rid)
    out: list[tuple[int, StoredResource]] = []
    since = "" if since_us is None else f" AND r.updated_us >= {_marks(conn, 1)}"
    extra: tuple[int, ...] = () if since_us is None else (since_us,)
    for rtype, ids in by_type.items():
        id_list = sorted(ids)
        for start in range(0, len(id_list), 500):
            chunk = id_list[start : start + 500]
            sql = (
                f"{_CURRENT_SQL}r.res_type = {_marks(conn, 1)} "
                f"AND r.res_id IN ({_marks(conn, len(chunk))}){since}"
            )
            out.extend((row.pid, _stored(row)) for row in conn.exec_driver_sql(sql, (rtype, *chunk, *extra)))
    return out


def history(conn: Connection, request: HistoryRequest, max_count: int) -> HistoryPage:
    """Versions newest first; paging by version-row id, stable while new versions arrive.

    ``_at`` (``request.at_start_us`` to ``at_end_us``: an instant, or a period such as a day) keeps the
    versions that were current at some point of that period: for each resource the version current at
    its start (the newest stored at or before it) and the versions stored during it.
    """
    v = resource_version
    count = max(0, min(request.count, max_count))
    conds = []
    if request.id is not None and request.resource_type is not None:
        pid = _pid_of(conn, request.resource_type, request.id)
        if pid is None:
            raise ResourceNotFound(f"{request.resource_type}/{request.id} is not known")
        conds.append(v.c.pid == pid)
    elif request.resource_type is not None:
        conds.append(v.c.res_type == request.resource_type)
    if request.since_us is not None:
        conds.append(v.c.updated_us >= request.since_us)
    if request.at_start_us is not None:
        start = request.at_start_us
        end = max(start, request.at_end_us if request.at_end_us is not None else start)
        later = resource_version.alias("later")
        superseded = (
            select(later.c.vid)
            .where(later.c.pid == v.c.pid, later.c.version > v.c.version, later.c.updated_us <= start)
            .exists()
        )
        conds += [v.c.updated_us <= end, ~superseded]
    if request.page:
        try:
            before = int(request.page)
            if not 0 < before < 2**63:
                raise ValueError(request.page)
        except ValueError as exc:
            raise InvalidRequest("Invalid history page token") from exc
        conds.append(v.c.vid < before)
    rows = conn.execute(select(v).where(*conds).order_by(v.c.vid.desc()).limit(count + 1)).all()
    entries = [_stored(r, r.method) for r in rows[:count]]
    next_page = str(rows[count - 1].vid) if len(rows) > count > 0 else None
    # With _count=0 nothing was read, so nothing is known about the total.
    total = len(entries) if next_page is None and not request.page and count > 0 else None
    return HistoryPage(entries, total, next_page)
