"""What the platform did lately, from its own tables: resources written per time bucket by source institution
and channel, exchange refusals, and the outbox backlog of each consumer (the portal's platform-health page).

Only counts leave this module: no resource content and no resident. Each query is bounded:

- writes: ``resource_version`` rows of the window (its ``updated_us`` index), each joined by ``pid`` to its
  ``_source`` row in ``idx_uri`` (the primary key starts with ``pid``). Index rows describe current
  versions, so a version is counted under its resource's current source; resources stored without a
  ``meta.source`` (bulk imports) count under no institution. :class:`WriteCounts` keeps the counts of
  buckets that have ended, so a page reads only the versions written since it last asked.
- refusals: the newest rows of ``exchange_reject`` by id (ids grow with time), at most ``MAX_REJECTS``.
- backlog: per consumer, the outbox rows after its cursor, counted up to ``MAX_BACKLOG``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import Integer, and_, case, func, select

from rhip.db.engine import Database
from rhip.db.outbox import outbox, outbox_cursor
from rhip.exchange.rejects.tables import exchange_reject
from rhip.security.facts import SOURCE_PREFIX, source_institution
from rhip.store.tables import idx_uri, resource_version

MAX_REJECTS = 5000
MAX_BACKLOG = 1_000_000
# Resource types that stand for one received message or document (an HL7 v2 receipt, a registered document).
MESSAGE_TYPES = ("MessageHeader", "DocumentReference")
NO_SOURCE = ""


@dataclass
class Activity:
    """Counts of one window, in buckets of ``bucket_us`` from ``since_us``."""

    since_us: int
    until_us: int
    bucket_us: int
    # (bucket, institution, channel) -> (resources written, messages among them)
    writes: dict[tuple[int, str, str], tuple[int, int]] = field(default_factory=dict)
    # (bucket, channel) -> refusals received in the bucket
    refusals: Counter[tuple[int, str]] = field(default_factory=Counter)
    refusals_by_sender: Counter[str] = field(default_factory=Counter)
    open_rejects: dict[str, int] = field(default_factory=dict)  # channel -> open rejects
    backlog: dict[str, int] = field(default_factory=dict)  # consumer -> outbox events not yet processed
    outbox_last: int = 0  # the id of the newest outbox event

    @property
    def buckets(self) -> int:
        """How many buckets the window has."""
        return max(1, -(-(self.until_us - self.since_us) // self.bucket_us))


# A bucket is kept once it ended this long ago (writes still committing may carry an earlier timestamp).
SETTLED_US = 10_000_000
BASE_US = 60_000_000  # writes are counted by the minute
Counts = dict[tuple[str, str], tuple[int, int]]  # (institution, channel) -> (resources, messages)


class WriteCounts:
    """Writes per minute, remembered once a minute has settled: a page asks the database only about the
    minutes it has not counted yet (mostly the current one), however many versions the window holds."""

    def __init__(self, keep_us: int = 2 * 24 * 3600 * 1_000_000) -> None:
        self.keep_us = keep_us
        self._settled: dict[int, Counts] = {}  # minute start -> counts
        self._lock = threading.Lock()

    def between(
        self, db: Database, since_us: int, until_us: int, bucket_us: int, now_us: int
    ) -> dict[int, Counts]:
        """Counts by bucket start of ``[since_us, until_us)`` (on minute boundaries; ``bucket_us`` whole
        minutes). Minutes are counted once settled, and added up into buckets."""
        with self._lock:
            known = {b: self._settled[b] for b in range(since_us, until_us, BASE_US) if b in self._settled}
        first = next((b for b in range(since_us, until_us, BASE_US) if b not in known), until_us)
        counted = _count_writes(db, first, until_us, BASE_US) if first < until_us else {}
        with self._lock:
            for b in range(first, until_us, BASE_US):
                if b + BASE_US + SETTLED_US <= now_us:
                    self._settled[b] = counted.get(b, {})
            for b in [b for b in self._settled if b < now_us - self.keep_us]:
                del self._settled[b]
        out: dict[int, Counts] = {b: {} for b in range(since_us, until_us, bucket_us)}
        for minute in range(since_us, until_us, BASE_US):
            counts = known.get(minute) if minute in known else counted.get(minute, {})
            into = out[since_us + (minute - since_us) // bucket_us * bucket_us]
            for key, (n, m) in (counts or {}).items():
                before = into.get(key, (0, 0))
                into[key] = (before[0] + n, before[1] + m)
        return out


def _count_writes(db: Database, since_us: int, until_us: int, bucket_us: int) -> dict[int, Counts]:
    """The window's versions by bucket start, institution and channel (one aggregate query)."""
    rv, u = resource_version, idx_uri
    bucket = ((rv.c.updated_us - since_us) // bucket_us).cast(Integer).label("bucket")
    is_message = case((rv.c.res_type.in_(MESSAGE_TYPES), 1), else_=0)
    source_join = and_(
        u.c.pid == rv.c.pid,
        u.c.uri >= SOURCE_PREFIX,
        u.c.uri < SOURCE_PREFIX[:-1] + chr(ord(SOURCE_PREFIX[-1]) + 1),
    )
    query = (
        select(bucket, u.c.uri, func.count(), func.sum(is_message))
        .select_from(rv.outerjoin(u, source_join))
        .where(rv.c.updated_us >= since_us, rv.c.updated_us < until_us)
        .group_by(bucket, u.c.uri)
    )
    out: dict[int, Counts] = {}
    with db.read() as conn:
        for b, uri, count, messages in conn.execute(query):
            counts = out.setdefault(since_us + int(b) * bucket_us, {})
            channel, institution = _source(uri)
            before = counts.get((institution, channel), (0, 0))
            counts[(institution, channel)] = (before[0] + int(count), before[1] + int(messages or 0))
    return out


def platform_activity(
    db: Database, since_us: int, until_us: int, bucket_us: int, writes: WriteCounts | None = None
) -> Activity:
    """The platform's counts between ``since_us`` and ``until_us`` (microseconds since the epoch; ``since_us``
    on a bucket boundary); ``writes`` remembers settled buckets between calls."""
    activity = Activity(since_us, until_us, bucket_us)
    now_us = time.time_ns() // 1000
    by_bucket = (writes or WriteCounts()).between(db, since_us, until_us, bucket_us, now_us)
    for start, counts in by_bucket.items():
        for (institution, channel), value in counts.items():
            activity.writes[((start - since_us) // bucket_us, institution, channel)] = value
    r = exchange_reject
    recent = select(r.c.received_us, r.c.channel, r.c.sender).order_by(r.c.id.desc()).limit(MAX_REJECTS)
    with db.read() as conn:
        for received_us, channel, sender in conn.execute(recent):
            if received_us < since_us:
                break
            if received_us < until_us:
                activity.refusals[((received_us - since_us) // bucket_us, channel)] += 1
                activity.refusals_by_sender[sender] += 1
        opened = select(r.c.channel, func.count()).where(r.c.status == "open").group_by(r.c.channel)
        activity.open_rejects = {str(c): int(n) for c, n in conn.execute(opened)}
        for consumer, last_id in conn.execute(select(outbox_cursor.c.consumer, outbox_cursor.c.last_id)):
            behind = select(outbox.c.id).where(outbox.c.id > last_id).limit(MAX_BACKLOG).subquery()
            activity.backlog[str(consumer)] = int(
                conn.execute(select(func.count()).select_from(behind)).scalar_one()
            )
        activity.outbox_last = int(conn.execute(select(func.max(outbox.c.id))).scalar_one() or 0)
    return activity


def _source(uri: str | None) -> tuple[str, str]:
    """(channel, institution) of a ``urn:rhip:source:<channel>:<code>`` source; ('', '') without one."""
    if not uri:
        return NO_SOURCE, NO_SOURCE
    channel = uri[len(SOURCE_PREFIX) :].split(":", 1)[0]
    return channel, source_institution(uri) or NO_SOURCE
