"""Rebuilding the search index of stored resources (``rhip db reindex``).

Index rows are filled on write from the search parameters the platform has at that moment. When parameters
are added (the registries' ``pinyin`` and ``division``, an operator's own), resources stored before have no
rows for them until they are written again; this rebuilds the rows of every current version of the types
named, batch by batch. Each batch is one write transaction that locks its resource rows (PostgreSQL), so a
write arriving meanwhile either waits or has already replaced the version being indexed; nothing else about
the resources changes: no new version, no event, no audit entry (the content is not read by anyone).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence

import orjson
from sqlalchemy import delete, false, select

from rhip.db import dialect
from rhip.store.context import StoreContext
from rhip.store.indexer import INDEX_COLUMNS, Rows, add_rows, index_tails
from rhip.store.tables import INDEX_BITS, INDEX_TABLES, resource, resource_version, search_cache


def reindex(
    ctx: StoreContext,
    resource_types: Sequence[str],
    *,
    batch: int = 500,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Rebuild the index rows of every current resource of ``resource_types``; how many per type."""
    done: dict[str, int] = {}
    for rtype in resource_types:
        done[rtype] = 0
        after = 0
        while True:
            count, after = _batch(ctx, rtype, after, batch)
            if count == 0:
                break
            done[rtype] += count
            if progress is not None:
                progress(rtype, count)
        with ctx.db.write() as conn:  # cached sorted searches hold pids found with the old rows
            conn.execute(delete(search_cache).where(search_cache.c.res_type == rtype))
    return done


def stored_types(ctx: StoreContext) -> list[str]:
    """The resource types the store holds current resources of."""
    with ctx.db.read() as conn:
        found = conn.execute(select(resource.c.res_type).where(resource.c.deleted == false()).distinct())
        return sorted(str(t) for (t,) in found)


def _batch(ctx: StoreContext, rtype: str, after: int, size: int) -> tuple[int, int]:
    """Reindex the next ``size`` resources after pid ``after``: (how many, the last pid)."""
    query = (
        select(resource.c.pid, resource.c.index_mask, resource_version.c.content)
        .select_from(resource)
        .join(resource_version, resource_version.c.vid == resource.c.vid)
        .where(resource.c.res_type == rtype, resource.c.deleted == false(), resource.c.pid > after)
        .order_by(resource.c.pid)
        .limit(size)
        .with_for_update(of=resource)
    )
    with ctx.db.write() as conn:
        found = conn.execute(query).all()
        if not found:
            return 0, after
        stale: dict[str, list[int]] = defaultdict(list)
        rows: Rows = defaultdict(list)
        masks = []
        for pid, old_mask, content in found:
            stored = orjson.loads(content)
            tails, mask = index_tails(rtype, ctx.extractor.extract(stored))
            for kind, bit in INDEX_BITS.items():
                if old_mask & bit:
                    stale[kind].append(pid)
            add_rows(pid, tails, rows)
            masks.append((mask, pid))
        for kind, pids in stale.items():
            dialect.delete_by_keys(conn, INDEX_TABLES[kind], "pid", pids)
        for kind, index_rows in rows.items():
            dialect.insert_rows(
                conn, INDEX_TABLES[kind], INDEX_COLUMNS[kind], index_rows, skip_duplicates=True
            )
        dialect.execute_many(conn, "UPDATE resource SET index_mask={m} WHERE pid={m}", masks)
        return len(found), int(found[-1].pid)
