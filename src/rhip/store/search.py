"""Running a parsed search: the driver query, paging, counts, ``_include``/``_revinclude``, ``$everything``.

Paging stays stable while others write. Unsorted searches page by pid (keyset) below a watermark taken
with the first page, so resources created later never shift a page and none is shown twice. Sorted
searches store the ordered pid list of the first page's query (up to ``search_cache_max``) and later pages
read from it, as HAPI does.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from sqlalchemy import Connection, select

from rhip.core.errors import InvalidRequest, Issue, TooCostly
from rhip.core.ids import new_token
from rhip.fhir.repository import EverythingRequest, SearchPage, StoredResource
from rhip.fhir.search.params import patient_compartment
from rhip.fhir.search.query import Filter, IncludeSpec, SearchQuery
from rhip.fhir.search.values import date_range
from rhip.store.context import StoreContext
from rhip.store.hashing import identity
from rhip.store.query import SqlSearch
from rhip.store.reader import fetch_by_pids, fetch_by_refs, read_current
from rhip.store.tables import idx_reference, resource, search_cache


@dataclass(frozen=True)
class PageToken:
    """Where a page starts: keyset after/before a pid under a watermark, or an offset into a cached list."""

    kind: str  # "k" next by pid, "p" previous by pid, "c" cached list
    key: str
    position: int
    watermark: int = 0

    def encode(self) -> str:
        """The opaque text carried in ``_page``."""
        return f"{self.kind}.{self.key}.{self.position}.{self.watermark}"

    @staticmethod
    def decode(text: str) -> PageToken:
        """Parse a ``_page`` value; InvalidRequest when it was not made by this server."""
        try:
            kind, key, position, watermark = text.split(".")
            if kind not in ("k", "p", "c"):
                raise ValueError(kind)
            numbers = int(position), int(watermark)
            if not all(0 <= n < 2**63 for n in numbers):
                raise ValueError(text)
            return PageToken(kind, key, *numbers)
        except ValueError as exc:
            raise InvalidRequest("The paging link is invalid or has expired; repeat the search") from exc


def _pack(pids: Sequence[int]) -> bytes:
    deltas, prev = [], 0
    for p in pids:
        deltas.append(p - prev)
        prev = p
    return zlib.compress(struct.pack(f"<{len(deltas)}q", *deltas), 1)


def _unpack(blob: bytes) -> list[int]:
    raw = zlib.decompress(blob)
    deltas = struct.unpack(f"<{len(raw) // 8}q", raw)
    out, acc = [], 0
    for d in deltas:
        acc += d
        out.append(acc)
    return out


@dataclass
class PendingCache:
    """A sorted result list that the repository stores in a write transaction after the read."""

    id: str
    resource_type: str
    pids: list[int]
    truncated: bool


class SearchRunner:
    """Executes searches on a connection."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    # -- the pid query ---------------------------------------------------------------------------
    def _candidates(self, conn: Connection, query: SearchQuery) -> tuple[SqlSearch, str, str, bool]:
        """A builder, the FROM/WHERE text of the matching pids, its pid expression, and whether it needs DISTINCT."""
        sql = SqlSearch(conn.dialect.name)
        filters: list[Filter] = list(query.filters)
        positives = [f for f in filters if sql.rank(f) < 100]
        if positives:
            driver = min(positives, key=sql.rank)
            filters.remove(driver)
            body = f"FROM ({sql.pid_select(driver)}) d WHERE 1 = 1"
            pid = "d.pid"
            distinct = not sql.unique_rows(driver)
        else:
            body = f"FROM resource r WHERE r.res_type = {sql.sql.bind(query.resource_type)} AND r.deleted = FALSE"
            pid = "r.pid"
            distinct = False
        for f in filters:
            body += f" AND {sql.condition(f, pid)}"
        if query.access is not None:
            body += f" AND {sql.access_condition(query.access, query.resource_type, pid)}"
        return sql, body, pid, distinct

    def _pids(self, conn: Connection, sql: SqlSearch, text: str) -> list[int]:
        return [int(r[0]) for r in conn.exec_driver_sql(text, sql.sql.params)]

    def count(self, conn: Connection, query: SearchQuery) -> int:
        """How many resources match."""
        sql, body, pid, distinct = self._candidates(conn, query)
        inner = f"SELECT {'DISTINCT ' if distinct else ''}{pid} AS pid {body}"
        return int(conn.exec_driver_sql(f"SELECT count(*) FROM ({inner}) q", sql.sql.params).scalar_one())

    def search(self, conn: Connection, query: SearchQuery) -> tuple[SearchPage, PendingCache | None]:
        """One page of results, and a sorted list to cache when the results span several pages."""
        count = query.count
        warnings = [
            Issue("warning", "not-supported", f"Parameter '{n}' was ignored: {why}")
            for n, why in query.ignored
        ]
        if query.summary == "count":
            return SearchPage([], total=self.count(conn, query), warnings=warnings), None
        token = PageToken.decode(query.page) if query.page else None
        pending: PendingCache | None = None
        next_token = prev_token = None
        total: int | None = None
        if token is not None and token.kind == "c":
            pids, cached_total, truncated = self._cached(conn, token.key, query.resource_type)
            page_pids = pids[token.position : token.position + count]
            if token.position + count < len(pids):
                next_token = PageToken("c", token.key, token.position + count)
            if token.position > 0:
                prev_token = PageToken("c", token.key, max(0, token.position - count))
            total = None if truncated else cached_total
            if truncated:
                warnings.append(self._truncated_warning())
        elif query.sort:
            page_pids, next_token, total, pending, truncated = self._sorted_first_page(conn, query)
            if truncated:
                warnings.append(self._truncated_warning())
        else:
            page_pids, next_token, prev_token, total = self._keyset_page(conn, query, token)
        if query.total in ("accurate", "estimate") and total is None:
            total = self.count(conn, query)
        if query.total == "none":
            total = None
        pairs = fetch_by_pids(conn, page_pids) if count else []
        included = (
            self._includes(conn, query, pairs, warnings) if (query.includes or query.revincludes) else []
        )
        page = SearchPage(
            matches=[r for _, r in pairs],
            included=included,
            total=total,
            next_page=next_token.encode() if next_token else None,
            previous_page=prev_token.encode() if prev_token else None,
            warnings=warnings,
        )
        return page, pending

    def _truncated_warning(self) -> Issue:
        return Issue(
            "warning",
            "too-costly",
            f"Only the first {self.ctx.limits.search_cache_max} results can be paged; refine the search or use $export",
        )

    def _keyset_page(
        self, conn: Connection, query: SearchQuery, token: PageToken | None
    ) -> tuple[list[int], PageToken | None, PageToken | None, int | None]:
        count = query.count
        sql, body, pid, distinct = self._candidates(conn, query)
        backwards = token is not None and token.kind == "p"
        if token is not None:
            body += f" AND {pid} <= {sql.sql.bind(token.watermark)} AND {pid} {'<' if backwards else '>'} {sql.sql.bind(token.position)}"
        text = (
            f"SELECT {'DISTINCT ' if distinct else ''}{pid} {body} "
            f"ORDER BY {pid}{' DESC' if backwards else ''} LIMIT {sql.sql.bind(count + 1)}"
        )
        pids = self._pids(conn, sql, text)
        more = len(pids) > count
        pids = pids[:count]
        if backwards:
            pids.reverse()
        has_next = more if not backwards else True
        has_prev = more if backwards else token is not None
        # The watermark is taken with the first page that has a next one; later pages carry it along.
        watermark = token.watermark if token else (self._max_pid(conn) if has_next else 0)
        next_token = PageToken("k", "", pids[-1], watermark) if pids and has_next else None
        prev_token = PageToken("p", "", pids[0], watermark) if pids and has_prev else None
        total = len(pids) if token is None and not more else None
        return pids, next_token, prev_token, total

    def _max_pid(self, conn: Connection) -> int:
        return int(conn.exec_driver_sql("SELECT max(pid) FROM resource").scalar() or 0)

    def _sorted_first_page(
        self, conn: Connection, query: SearchQuery
    ) -> tuple[list[int], PageToken | None, int | None, PendingCache | None, bool]:
        sql, body, pid, distinct = self._candidates(conn, query)
        inner = f"SELECT {'DISTINCT ' if distinct else ''}{pid} AS pid {body}"
        order = []
        for key in query.sort:
            # Resources without the value come after those with it, in both directions.
            order.append(f"{sql.sort_expression(key, 'm.pid')}{' DESC' if key.descending else ''} NULLS LAST")
        cap = self.ctx.limits.search_cache_max
        text = (
            f"SELECT m.pid FROM ({inner}) m ORDER BY {', '.join(order)}, m.pid LIMIT {sql.sql.bind(cap + 1)}"
        )
        pids = self._pids(conn, sql, text)
        truncated = len(pids) > cap
        pids = pids[:cap]
        if len(pids) <= query.count:
            return pids, None, len(pids), None, False
        pending = PendingCache(new_token(12), query.resource_type, pids, truncated)
        return (
            pids[: query.count],
            PageToken("c", pending.id, query.count),
            (None if truncated else len(pids)),
            pending,
            truncated,
        )

    def _cached(self, conn: Connection, key: str, resource_type: str) -> tuple[list[int], int, bool]:
        row = conn.execute(select(search_cache).where(search_cache.c.id == key)).first()
        now_us = int(self.ctx.clock.now().timestamp() * 1_000_000)
        if row is None or row.res_type != resource_type or row.expires_us < now_us:
            raise InvalidRequest("The paging link has expired; repeat the search")
        return _unpack(bytes(row.pids)), int(row.total), bool(row.truncated)

    def store_cache(self, conn: Connection, pending: PendingCache, now_us: int) -> None:
        """Save a sorted result list for its later pages (and drop expired ones)."""
        ttl = self.ctx.limits.search_cache_ttl_s * 1_000_000
        conn.execute(search_cache.delete().where(search_cache.c.expires_us < now_us))
        conn.execute(
            search_cache.insert().values(
                id=pending.id,
                res_type=pending.resource_type,
                created_us=now_us,
                expires_us=now_us + ttl,
                total=len(pending.pids),
                truncated=pending.truncated,
                pids=_pack(pending.pids),
            )
        )

    # -- includes --------------------------------------------------------------------------------
    def _includes(
        self,
        conn: Connection,
        query: SearchQuery,
        matches: list[tuple[int, StoredResource]],
        warnings: list[Issue],
    ) -> list[StoredResource]:
        seen = {pid for pid, _ in matches}
        frontier = matches
        out: list[tuple[int, StoredResource]] = []
        limit = self.ctx.limits.max_include
        first = True
        while frontier and len(out) < limit:
            specs_inc = [s for s in query.includes if first or s.iterate]
            specs_rev = [s for s in query.revincludes if first or s.iterate]
            if not specs_inc and not specs_rev:
                break
            found: list[tuple[int, StoredResource]] = []
            for spec in specs_inc:
                found += self._include(conn, spec, frontier)
            for spec in specs_rev:
                found += self._revinclude(conn, spec, frontier)
            fresh = []
            for pid, res in found:
                if pid not in seen:
                    seen.add(pid)
                    fresh.append((pid, res))
            out += fresh
            frontier = fresh
            first = False
        if len(out) > limit:
            warnings.append(Issue("warning", "too-costly", f"Included resources were limited to {limit}"))
            out = out[:limit]
        return [r for _, r in out]

    def _include(
        self, conn: Connection, spec: IncludeSpec, frontier: list[tuple[int, StoredResource]]
    ) -> list[tuple[int, StoredResource]]:
        pids = [pid for pid, r in frontier if r.resource_type == spec.source_type]
        if not pids:
            return []
        idents = {identity(spec.source_type, c) for p in spec.params for c in p.index_codes}
        # Read the page's reference rows by pid (the table's own key) and filter here: a page holds a few
        # hundred at most, and asking the database to filter by parameter tempts it into the parameter's index.
        rows = conn.execute(
            select(
                idx_reference.c.hash_identity, idx_reference.c.target_type, idx_reference.c.target_id
            ).where(idx_reference.c.pid.in_(pids))
        )
        # Parameters like Observation:patient read Observation.subject's rows but admit only Patients.
        admitted = {p.restrict_target for p in spec.params}
        refs = {
            (t, i)
            for h, t, i in rows
            if h in idents
            and t
            and i
            and spec.target_type in (None, t)
            and (None in admitted or t in admitted)
        }
        return fetch_by_refs(conn, sorted(refs))

    def _revinclude(
        self, conn: Connection, spec: IncludeSpec, frontier: list[tuple[int, StoredResource]]
    ) -> list[tuple[int, StoredResource]]:
        admitted = {p.restrict_target for p in spec.params}
        targets = [
            (r.resource_type, r.id)
            for _, r in frontier
            if spec.target_type in (None, r.resource_type)
            and (None in admitted or r.resource_type in admitted)
        ]
        if not targets:
            return []
        idents = [identity(spec.source_type, c) for p in spec.params for c in p.index_codes]
        ids = sorted({i for _, i in targets})
        types = sorted({t for t, _ in targets})
        rows = conn.execute(
            select(idx_reference.c.pid, idx_reference.c.target_type, idx_reference.c.target_id).where(
                idx_reference.c.hash_identity.in_(idents),
                idx_reference.c.target_id.in_(ids),
                idx_reference.c.target_type.in_(types),
            )
        )
        wanted = set(targets)
        pids = sorted({int(pid) for pid, t, i in rows if (t, i) in wanted})
        return fetch_by_pids(conn, pids)

    def _index_codes(self, rtype: str, code: str) -> tuple[str, ...]:
        param = self.ctx.registry.get(rtype, code)
        return param.index_codes if param is not None else (code,)

    # -- $everything -----------------------------------------------------------------------------
    def everything(self, conn: Connection, request: EverythingRequest) -> SearchPage:
        """A page of the Patient's compartment, plus what those resources reference."""
        patient = read_current(conn, "Patient", request.patient_id)
        compartment = patient_compartment()
        types = request.types or tuple(compartment)
        unknown = [t for t in types if not self.ctx.table.is_resource_type(t)]
        if unknown:
            raise InvalidRequest(f"_type names unknown resource types: {', '.join(unknown)}")
        idents = sorted(
            {
                identity(t, c)
                for t in types
                for code in compartment.get(t, ())
                for c in self._index_codes(t, code)
            }
        )
        token = PageToken.decode(request.page) if request.page else None
        after = token.position if token else 0
        if request.count <= 0:
            raise TooCostly("_count must be positive for $everything")
        link = idx_reference
        stmt = (
            select(link.c.pid)
            .distinct()
            .where(
                link.c.hash_identity.in_(idents),
                link.c.target_type == "Patient",
                link.c.target_id == request.patient_id,
                link.c.pid > after,
            )
        )
        if token:
            stmt = stmt.where(link.c.pid <= token.watermark)
        if request.since_us is not None:
            stmt = stmt.where(
                link.c.pid.in_(select(resource.c.pid).where(resource.c.updated_us >= request.since_us))
            )
        pids = [int(r[0]) for r in conn.execute(stmt.order_by(link.c.pid).limit(request.count + 1))]
        more = len(pids) > request.count
        pids = pids[: request.count]
        pairs = fetch_by_pids(conn, pids)
        matches = [r for _, r in pairs]
        patient_wanted = request.types is None or "Patient" in request.types
        if (
            token is None
            and patient_wanted
            and (request.since_us is None or _updated_us(patient) >= request.since_us)
        ):
            matches.insert(0, patient)
        seen = {(r.resource_type, r.id) for r in matches}
        # Referenced resources are those outside the compartment; _type may leave none of them to look for.
        referable = request.types is None or any(
            t not in compartment and t != "Patient" for t in request.types
        )
        sources = list(pids) if referable else []
        if token is None and referable:
            # The first page also brings what the Patient itself references (managing organisation, GP).
            patient_pid = conn.execute(
                select(resource.c.pid).where(
                    resource.c.res_type == "Patient", resource.c.res_id == request.patient_id
                )
            ).scalar()
            if patient_pid is not None:
                sources.append(int(patient_pid))
        refs: Any = (
            conn.execute(
                select(link.c.target_type, link.c.target_id)
                .distinct()
                .where(
                    link.c.pid.in_(sources), link.c.target_id.is_not(None), link.c.target_type.is_not(None)
                )
            )
            if sources
            else []
        )
        # _type and _since limit what is returned, the referenced resources included.
        wanted = [
            (t, i)
            for t, i in refs
            if (t, i) not in seen
            and t not in compartment
            and t != "Patient"
            and (request.types is None or t in request.types)
        ]
        included = [r for _, r in fetch_by_refs(conn, wanted, request.since_us)]
        watermark = token.watermark if token else self._max_pid(conn)
        next_token = PageToken("k", "", pids[-1], watermark) if more and pids else None
        total = len(matches) if token is None and not more else None
        return SearchPage(
            matches=matches,
            included=included,
            total=total,
            next_page=next_token.encode() if next_token else None,
        )


def _updated_us(stored: StoredResource) -> int:
    return date_range(stored.last_updated, UTC)[0]
