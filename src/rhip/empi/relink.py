"""Relinking every record in batch (``rhip empi relink``): after a bulk load, or when weights or rules change.

1. **Load**: Patients the index does not hold yet, or holds at an older version, are normalised and
   stored (``empi_record``, ``empi_block``).
2. **Link**: all records are blocked, scored in worker processes and clustered (:mod:`rhip.empi.batch`),
   with every manual decision kept: records linked by hand stay together in their master, no-match pairs
   stay apart.
3. **Write**: each cluster keeps the master id most of its records already had, so links that did not
   change are not touched; changed links get history rows and events, and changed masters a new golden
   record. Open automatic review items are replaced by the new ones.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from rhip.core.ids import new_resource_id
from rhip.db import outbox
from rhip.empi import repository as sql
from rhip.empi.batch import cluster, score_all
from rhip.empi.blocking import keys
from rhip.empi.features import Features
from rhip.empi.service import SYSTEM, EmpiService, now_us
from rhip.empi.survivorship import Source, golden
from rhip.empi.tables import AUTO, MANUAL, MATCH, POSSIBLE_MATCH
from rhip.fhir.repository import StoredResource

Progress = Callable[[str, int, int | None], None]  # (phase, advance, total)


@dataclass
class RelinkSummary:
    """What a relink did, with the seconds of each phase."""

    records: int = 0
    loaded: int = 0
    pairs_scored: int = 0
    masters: int = 0
    changed_links: int = 0
    review: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def load(service: EmpiService, patients: Iterable[StoredResource], progress: Progress | None = None) -> int:
    """Normalise and store Patients the index lacks or holds at an older version; returns how many."""
    with service.db.read() as conn:
        known = {r.patient_id: r.version for r in sql.all_records(conn)}
    loaded = 0
    batch: list[tuple[Features, int]] = []

    def flush() -> None:
        nonlocal loaded
        stamp = now_us()
        rows: list[sql.RecordRow] = []
        block_rows: list[tuple[int, str]] = []
        for f, version in batch:
            rows.append(
                sql.RecordRow(f.patient_id, version, new_resource_id(), MATCH, AUTO, None, f.to_json(), stamp)
            )
            block_rows.extend((k, f.patient_id) for k in keys(f))
        block_rows.sort()  # the block table is a B-tree on the key: inserting in key order keeps it local
        with service.db.write() as conn:
            # A newer version of a record keeps its link; relinking decides whether it still holds.
            for r in rows:
                if r.patient_id in known:
                    existing = sql.get_record(conn, r.patient_id)
                    if existing is not None:
                        r.master_id, r.origin, r.state = existing.master_id, existing.origin, existing.state
                        sql.remove_record(conn, r.patient_id)
            sql.bulk_insert_records(conn, rows, block_rows)
        loaded += len(rows)
        if progress:
            progress("load", len(rows), None)
        batch.clear()

    for stored in patients:
        if stored.content is None or known.get(stored.id, -1) >= stored.version:
            continue
        resource = stored.resource()
        tags = (resource.get("meta") or {}).get("tag") or ()
        if any(t.get("system") == "urn:rhip:empi" for t in tags):
            continue
        batch.append((service.features(resource), stored.version))
        if len(batch) >= 20_000:
            flush()
    if batch:
        flush()
    return loaded


def relink(
    service: EmpiService,
    patients: Iterable[StoredResource] | None = None,
    *,
    workers: int = 1,
    progress: Progress | None = None,
) -> RelinkSummary:
    """Load (when ``patients`` is given), then re-evaluate every link; manual decisions are kept."""
    summary = RelinkSummary()
    t0 = time.perf_counter()
    if patients is not None:
        summary.loaded = load(service, patients, progress)
    t1 = time.perf_counter()
    rows: list[sql.RecordRow] = []
    records: list[Features] = []
    with service.db.read() as conn:
        for row in sql.all_records(conn):
            records.append(row.decoded())
            row.features = b""  # decoded: a million encoded copies need not stay in memory
            rows.append(row)
        separated = sql.all_no_match(conn)
    summary.records = len(records)
    index = {r.patient_id: i for i, r in enumerate(rows)} if separated else {}
    # A master a person touched (a record linked, merged or separated by hand) keeps its members together:
    # the person decided with those records in view.
    decided = {r.master_id for r in rows if r.origin == MANUAL}
    manual_groups: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        if r.master_id in decided:
            manual_groups[r.master_id].append(i)
    t2 = time.perf_counter()
    model = service.model
    pairs, summary.pairs_scored = score_all(
        model, records, workers, (lambda n: progress("score", n, len(records))) if progress else None
    )
    result = cluster(
        model,
        records,
        pairs,
        no_match=[(index[a], index[b]) for a, b in separated if a in index and b in index],
        together=[g for g in manual_groups.values() if len(g) > 1],
    )
    t3 = time.perf_counter()
    masters = _assign_masters(rows, result.cluster)
    review_best: dict[int, Any] = {}
    for p in result.review:
        for x, y in ((p.a, p.b), (p.b, p.a)):
            if rows[x].origin != MANUAL and (x not in review_best or p.weight > review_best[x][1]):
                review_best[x] = (y, p.weight, p.cap or "between the thresholds")
    summary.review = len(review_best)
    summary.changed_links, summary.masters = _write(
        service, rows, records, masters, result.weight, review_best, progress
    )
    t4 = time.perf_counter()
    summary.seconds = {
        "load": round(t1 - t0, 2),
        "read": round(t2 - t1, 2),
        "link": round(t3 - t2, 2),
        "write": round(t4 - t3, 2),
        "total": round(t4 - t0, 2),
    }
    return summary


def _assign_masters(rows: list[sql.RecordRow], clusters: list[int]) -> list[str]:
    """A master id per record: each cluster keeps the id most of its members had (manual members first)."""
    groups: dict[int, list[int]] = defaultdict(list)
    for i, c in enumerate(clusters):
        groups[c].append(i)
    taken: set[str] = set()
    out = [""] * len(rows)
    for members in sorted(groups.values(), key=len, reverse=True):
        votes = Counter(rows[i].master_id for i in members if rows[i].origin == MANUAL) or Counter(
            rows[i].master_id for i in members
        )
        master = next((m for m, _ in votes.most_common() if m not in taken), None) or new_resource_id()
        taken.add(master)
        for i in members:
            out[i] = master
    return out


def _write(
    service: EmpiService,
    rows: list[sql.RecordRow],
    records: list[Features],
    masters: list[str],
    weights: list[float | None],
    review_best: dict[int, Any],
    progress: Progress | None,
) -> tuple[int, int]:
    stamp = now_us()
    with service.db.read() as conn:
        existing = sql.master_versions(conn)
    changed: list[int] = []
    for i, r in enumerate(rows):
        state = POSSIBLE_MATCH if i in review_best else MATCH
        if r.master_id != masters[i] or r.state != state or masters[i] not in existing:
            changed.append(i)
    members: dict[str, list[int]] = defaultdict(list)
    for i, m in enumerate(masters):
        members[m].append(i)
    touched = sorted({masters[i] for i in changed} | {rows[i].master_id for i in changed})
    chunk = 50_000  # rows built and written a chunk at a time: a million at once would double the memory
    with service.db.write() as conn:
        for lo in range(0, len(changed), chunk):
            part = changed[lo : lo + chunk]
            sql.set_links(
                conn,
                [
                    (
                        rows[i].patient_id,
                        masters[i],
                        POSSIBLE_MATCH if i in review_best else MATCH,
                        weights[i],
                        stamp,
                    )
                    for i in part
                ],
            )
            sql.add_history(
                conn,
                [
                    {
                        "at_us": stamp,
                        "action": "relink",
                        "patient_id": rows[i].patient_id,
                        "master_id": masters[i],
                        "previous_master_id": rows[i].master_id,
                        "state": MATCH,
                        "origin": rows[i].origin,
                        "weight": weights[i],
                        "actor": SYSTEM,
                        "detail": None,
                    }
                    for i in part
                ],
            )
            outbox.append(
                conn,
                [
                    ("PatientLinked", "Patient", rows[i].patient_id, rows[i].version, masters[i], stamp)
                    for i in part
                ],
            )
        sql.replace_open_reviews(
            conn,
            [
                (rows[i].patient_id, masters[j], w, reason[:64], stamp)
                for i, (j, w, reason) in review_best.items()
            ],
        )
        for lo in range(0, len(touched), chunk):
            created: list[tuple[str, bytes]] = []
            bumped: list[tuple[str, int, str, bytes | None]] = []
            for master in touched[lo : lo + chunk]:
                idx = members.get(master)
                version = existing.get(master)
                if not idx:
                    if version is not None:
                        bumped.append((master, version + 1, "retired", None))
                    continue
                sources = [Source(records[i], rows[i].updated_us) for i in idx]
                content = orjson.dumps(
                    golden(master, sources, service.config.survivorship, service.config.trusted_sources)
                )
                if version is None:
                    created.append((master, content))
                else:
                    bumped.append((master, version + 1, "active", content))
            sql.insert_masters(conn, created, stamp)
            sql.update_masters(conn, bumped, stamp)
            if progress:
                progress("masters", len(touched[lo : lo + chunk]), len(touched))
    return len(changed), len(members)
