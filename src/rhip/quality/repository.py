"""SQL of the data-quality tables: recording a batch of scored versions with the consumer's position, and
reading the figures of a period back.

A batch is recorded in one transaction together with the outbox position it reaches, and only if the
position is still the one the batch was read after (the cursor row is locked first): when two processes
follow the outbox (several ``rhip serve`` workers, a ``rhip quality score`` meanwhile), one records the batch
and the other finds the position moved and drops its work. Versions already in ``quality_scored`` are left
out as well, so nothing is counted twice.
"""

from __future__ import annotations

import fcntl
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, func, select, text, tuple_

from rhip.db import outbox
from rhip.db.dialect import insert_rows
from rhip.db.engine import Database
from rhip.exchange.rejects.tables import exchange_reject
from rhip.quality.scorer import Scored
from rhip.quality.tables import quality_arrivals, quality_daily, quality_example, quality_scored

_KEY_CHUNK = 300  # keys per IN list (SQLite's parameter limit is far above 3 × 300)
_LEASE_KEY = 0x5251_414C  # PostgreSQL advisory lock of the scoring follower ("RQAL"), per schema
# Locks are per database: the schema's name in the key keeps platforms sharing a database apart.
_LOCK = text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))")
_UNLOCK = text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))")


@dataclass(frozen=True)
class Period:
    """Days ``first`` to ``last`` (inclusive, ``YYYY-MM-DD``), of one institution or (None) the region."""

    first: str
    last: str
    institution: str | None = None


class QualityRepository:
    """Reads and writes the quality tables of one database."""

    def __init__(self, db: Database, examples_per_rule: int = 3) -> None:
        self.db = db
        self.examples_per_rule = examples_per_rule

    # -- following the outbox ---------------------------------------------------------------------
    def position(self, consumer: str) -> outbox.Position:
        """The consumer's outbox position."""
        with self.db.read() as conn:
            return outbox.position(conn, consumer)

    def events(self, after: outbox.Position, limit: int) -> list[outbox.OutboxRecord]:
        """Outbox events after ``after`` (read in a transaction that writes nothing)."""
        with self.db.read() as conn:
            return outbox.read_after(conn, after, limit=limit)

    def record(
        self,
        consumer: str,
        expected: outbox.Position,
        reached: outbox.Position,
        batch: Sequence[Scored],
        now_us: int,
    ) -> int:
        """Count ``batch`` and move the consumer from ``expected`` to ``reached``; the versions counted.

        Returns -1 (nothing written) when the position is no longer ``expected``: another process did it.
        """
        with self.db.write() as conn:
            insert_rows(
                conn,
                outbox.outbox_cursor,
                ("consumer", "last_id", "last_xact"),
                [(consumer, 0, 0)],
                skip_duplicates=True,
            )
            lock = select(outbox.outbox_cursor.c.last_xact, outbox.outbox_cursor.c.last_id).where(
                outbox.outbox_cursor.c.consumer == consumer
            )
            row = conn.execute(lock.with_for_update()).one()
            if outbox.Position(int(row[0]), int(row[1])) != expected:
                return -1
            fresh = self._not_yet_scored(conn, batch)
            self._count(conn, fresh, now_us)
            outbox.advance(conn, consumer, reached)
            return len(fresh)

    def _not_yet_scored(self, conn: Connection, batch: Sequence[Scored]) -> list[Scored]:
        unique = {(s.resource_type, s.id, s.version): s for s in batch}
        keys = list(unique)
        t = quality_scored.c
        for start in range(0, len(keys), _KEY_CHUNK):
            chunk = keys[start : start + _KEY_CHUNK]
            found = conn.execute(
                select(t.res_type, t.res_id, t.version).where(
                    tuple_(t.res_type, t.res_id, t.version).in_(chunk)
                )
            )
            for key in found:
                unique.pop((key[0], key[1], int(key[2])), None)
        return list(unique.values())

    def _count(self, conn: Connection, fresh: list[Scored], now_us: int) -> None:
        if not fresh:
            return
        insert_rows(
            conn,
            quality_scored,
            ("res_type", "res_id", "version", "day", "institution", "scored_us"),
            [(s.resource_type, s.id, s.version, s.day, s.institution, now_us) for s in fresh],
        )
        rules: dict[tuple[str, str, str], tuple[str, str, str]] = {}
        checked: Counter[tuple[str, str, str]] = Counter()
        passed: Counter[tuple[str, str, str]] = Counter()
        arrivals: Counter[tuple[str, str, str, str]] = Counter()
        failures: dict[tuple[str, str, str], list[tuple[str, str, int, str]]] = {}
        for s in fresh:
            arrivals[(s.day, s.institution, s.resource_type, s.bucket)] += 1
            for rule, ok in s.outcomes:
                key = (s.day, s.institution, rule.id)
                rules[key] = (rule.family, rule.resource, rule.element)
                checked[key] += 1
                if ok:
                    passed[key] += 1
                else:
                    failures.setdefault(key, []).append((s.resource_type, s.id, s.version, rule.element))
        d = quality_daily.c
        for key, n in checked.items():
            day, institution, rule_id = key
            where = and_(d.day == day, d.institution == institution, d.rule_id == rule_id)
            updated = conn.execute(
                quality_daily.update()
                .where(where)
                .values(checked=d.checked + n, passed=d.passed + passed[key])
            ).rowcount
            if not updated:
                family, res_type, element = rules[key]
                conn.execute(
                    quality_daily.insert().values(
                        day=day, institution=institution, rule_id=rule_id, family=family,
                        res_type=res_type, element=element[:255], checked=n, passed=passed[key],
                    )
                )  # fmt: skip
        a = quality_arrivals.c
        for (day, institution, res_type, bucket), n in arrivals.items():
            where = and_(
                a.day == day, a.institution == institution, a.res_type == res_type, a.bucket == bucket
            )
            if not conn.execute(
                quality_arrivals.update().where(where).values(resources=a.resources + n)
            ).rowcount:
                conn.execute(
                    quality_arrivals.insert().values(
                        day=day, institution=institution, res_type=res_type, bucket=bucket, resources=n
                    )
                )
        self._examples(conn, failures)

    def _examples(
        self, conn: Connection, failures: dict[tuple[str, str, str], list[tuple[str, str, int, str]]]
    ) -> None:
        e = quality_example.c
        rows: list[tuple[Any, ...]] = []
        for (day, institution, rule_id), found in failures.items():
            held = conn.execute(
                select(func.count()).where(e.day == day, e.institution == institution, e.rule_id == rule_id)
            ).scalar_one()
            room = self.examples_per_rule - int(held)
            rows += [(day, institution, rule_id, *f[:3], f[3][:255]) for f in found[: max(0, room)]]
        insert_rows(
            conn,
            quality_example,
            ("day", "institution", "rule_id", "res_type", "res_id", "version", "element"),
            rows,
            skip_duplicates=True,
        )

    # -- figures ------------------------------------------------------------------------------------
    def rule_counts(self, period: Period) -> list[tuple[str, str, str, str, str, int, int]]:
        """Per day and rule: (day, rule_id, family, res_type, element, checked, passed)."""
        d = quality_daily.c
        query = (
            select(d.day, d.rule_id, d.family, d.res_type, d.element, func.sum(d.checked), func.sum(d.passed))
            .where(*self._where(d, period))
            .group_by(d.day, d.rule_id, d.family, d.res_type, d.element)
            .order_by(d.day, d.rule_id)
        )
        with self.db.read() as conn:
            return [(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6])) for r in conn.execute(query)]

    def institution_counts(self, period: Period) -> list[tuple[str, str, int, int]]:
        """Per institution and family: (institution, family, checked, passed)."""
        d = quality_daily.c
        query = (
            select(d.institution, d.family, func.sum(d.checked), func.sum(d.passed))
            .where(*self._where(d, period))
            .group_by(d.institution, d.family)
            .order_by(d.institution, d.family)
        )
        with self.db.read() as conn:
            return [(r[0], r[1], int(r[2]), int(r[3])) for r in conn.execute(query)]

    def arrivals(self, period: Period) -> list[tuple[str, str, str, int]]:
        """Per day, type and delay bucket: (day, res_type, bucket, resources)."""
        a = quality_arrivals.c
        query = (
            select(a.day, a.res_type, a.bucket, func.sum(a.resources))
            .where(*self._where(a, period))
            .group_by(a.day, a.res_type, a.bucket)
            .order_by(a.day, a.res_type, a.bucket)
        )
        with self.db.read() as conn:
            return [(r[0], r[1], r[2], int(r[3])) for r in conn.execute(query)]

    def examples(self, period: Period, limit: int = 50_000) -> list[tuple[str, str, str, str, str, int, str]]:
        """Failing versions: (day, institution, rule_id, res_type, res_id, version, element)."""
        e = quality_example.c
        query = (
            select(e.day, e.institution, e.rule_id, e.res_type, e.res_id, e.version, e.element)
            .where(*self._where(e, period))
            .order_by(e.rule_id, e.day, e.institution, e.res_type, e.res_id, e.version)
            .limit(limit)
        )
        with self.db.read() as conn:
            return [(r[0], r[1], r[2], r[3], r[4], int(r[5]), r[6]) for r in conn.execute(query)]

    def rejects(self, first_us: int, end_us: int, institution: str | None) -> int:
        """Messages and documents the exchange refused in ``[first_us, end_us)`` (of one sender, or all)."""
        r = exchange_reject.c
        conditions = [r.received_us >= first_us, r.received_us < end_us]
        if institution is not None:
            conditions.append(r.sender == institution)
        with self.db.read() as conn:
            return int(conn.execute(select(func.count()).where(*conditions)).scalar_one())

    @staticmethod
    def _where(columns: Any, period: Period) -> list[Any]:
        conditions = [columns.day >= period.first, columns.day <= period.last]
        if period.institution is not None:
            conditions.append(columns.institution == period.institution)
        return conditions


class FollowerLease:
    """Which of a platform's server processes follows the outbox for scoring: the one holding this lease.

    Several followers would be safe (see :meth:`QualityRepository.record`) but each would score every batch
    only for all but one to drop its work; with the lease the others stand by and take over when its holder
    stops. PostgreSQL: a session advisory lock on a connection of its own, in autocommit (an open
    transaction would hold back the outbox's delivery). SQLite: ``flock`` on ``<database>.quality-lease``.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._conn: Connection | None = None
        self._fd: int | None = None
        self.held = False

    def acquire(self) -> bool:
        """Take the lease if it is free (never waits); True while this holds it."""
        if self.held:
            return True
        if self.db.backend == "postgresql":
            conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            if conn.execute(_LOCK, {"k": _LEASE_KEY}).scalar_one():
                self._conn, self.held = conn, True
            else:
                conn.close()
            return self.held
        path = self.db.engine.url.database
        if not path or path == ":memory:":
            self.held = True  # a database of this process alone
            return True
        fd = os.open(f"{path}.quality-lease", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd, self.held = fd, True
        return True

    def release(self) -> None:
        """Give the lease up (closing its connection or file)."""
        if self._conn is not None:
            # The connection goes back to the pool with its session: the lock is released by name.
            try:
                self._conn.execute(_UNLOCK, {"k": _LEASE_KEY})
            except Exception:
                self._conn.invalidate()  # a broken session: discarded, and its locks end with it
            finally:
                self._conn.close()
                self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # the flock ends with the last descriptor
            self._fd = None
        self.held = False
