"""The audit trail: every access and change of resident data becomes an entry of the hash-chained log.

Changes are recorded inside the transaction that makes them (``tx.record``): the entry commits with the
change or not at all. Accesses (reads, searches, refusals) are buffered in memory and written by one
background thread every ``flush_ms``, or as soon as ``batch`` of them wait, in a transaction of its own:
a read costs no write of its own. With an appender (``rhip serve``: rhip.security.audit.appender) the
thread hands each batch to that process, which builds and chains the entries outside the serving
process's interpreter lock; should the appender fail, the thread writes the batch itself. Should writing
fail, entries stay buffered and are retried; once ``max_pending`` wait, callers write them themselves, so
a failing database fails the requests too rather than letting accesses go unrecorded.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rhip.core.clock import Clock
from rhip.db.engine import Database
from rhip.fhir.repository import FhirRepository, SearchPage
from rhip.fhir.search.query import SearchQuery
from rhip.security.audit import queries
from rhip.security.audit.balp import ResourceRef, audit_entry
from rhip.security.audit.batches import (
    Access,
    AppendFailed,
    BatchAppender,
    Wire,
    new_entry_id,
    to_wire,
    write_batch,
)
from rhip.security.audit.fhir_page import AuditRestriction, search_page
from rhip.security.audit.verify import VerifyReport, verify
from rhip.security.principal import Principal

log = logging.getLogger("rhip.audit")


@dataclass(frozen=True)
class AuditConfig:
    """How the trail hashes and when it writes (bootstrap maps ``Settings.security.audit_*`` here)."""

    algorithm: str = "sm3"  # sm3 (GM/T 0004) or sha256
    flush_ms: int = 200  # buffered accesses are written at least this often
    batch: int = 500  # ... or as soon as this many wait (and at most this many per transaction)
    max_pending: int = 50_000  # beyond this, callers write the buffer themselves
    observer: str = "rhip"  # the platform, as the AuditEvents' source observer


class AuditTrail:
    """Records accesses (buffered) and changes (in their transaction); searches and verifies the log."""

    def __init__(
        self,
        db: Database,
        config: AuditConfig | None = None,
        *,
        clock: Clock | None = None,
        appender: BatchAppender | None = None,
    ) -> None:
        self.db = db
        self.config = config or AuditConfig()
        self.clock = clock
        self.appender = appender
        self._pending: list[Access] = []
        self._unsettled: list[list[Wire]] = []  # batches whose writing failed, ids given: sent again first
        self._lock = threading.Lock()  # guards _pending and _unsettled
        self._writing = threading.Lock()  # one writer at a time, so entries are chained in buffered order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    # -- recording ------------------------------------------------------------------------------
    def _now_us(self) -> int:
        if self.clock is not None:
            return int(self.clock.now().timestamp() * 1_000_000)
        return time.time_ns() // 1000

    def changed(
        self,
        tx: FhirRepository,
        principal: Principal,
        *,
        action: str,
        subtype: str,
        resources: Sequence[ResourceRef],
        patients: Sequence[str],
        outcome: str = "0",
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Record a change inside the transaction ``tx`` that makes it (gone if ``tx`` rolls back)."""
        recorded_us = self._now_us()
        entry = audit_entry(
            principal,
            id=new_entry_id(recorded_us),
            recorded_us=recorded_us,
            action=action,
            subtype=subtype,
            resources=resources,
            patients=patients,
            outcome=outcome,
            detail=detail,
            observer=self.config.observer,
            algorithm=self.config.algorithm,
        )
        tx.record(entry)

    def accessed(
        self,
        principal: Principal,
        *,
        action: str,
        subtype: str,
        resources: Sequence[ResourceRef],
        patients: Sequence[str],
        outcome: str = "0",
        query: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Record a read, a search or a refused request (written within ``flush_ms``).

        Only the facts are kept here; the entry is built when its batch is written, so a read pays for no JSON.
        """
        row = Access(
            principal,
            action,
            subtype,
            tuple(resources),
            tuple(patients),
            outcome,
            query,
            detail,
            self._now_us(),
        )
        self._ensure_thread()
        with self._lock:
            self._pending.append(row)
            waiting = len(self._pending)
        if waiting >= self.config.max_pending or self._stop.is_set():
            # The writer thread is not keeping up (or the database fails), or is gone: write here.
            self.flush()
        elif waiting >= self.config.batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        """How many accesses wait to be written."""
        with self._lock:
            return len(self._pending) + sum(len(b) for b in self._unsettled)

    def flush(self) -> None:
        """Write every buffered access now (raises what writing raised; the entries stay buffered)."""
        with self._writing:
            while True:
                with self._lock:
                    retry = bool(self._unsettled)
                    if retry:
                        batch = self._unsettled.pop(0)
                    else:
                        taken = self._pending[: self.config.batch]
                        del self._pending[: len(taken)]
                        if not taken:
                            return
                        try:
                            batch = to_wire(taken)
                        except BaseException:
                            self._pending[:0] = taken
                            raise
                try:
                    self._write(batch, retry)
                except BaseException:
                    with self._lock:
                        self._unsettled.insert(0, batch)
                    raise

    def _write(self, batch: list[Wire], retry: bool) -> None:
        if self.appender is not None:
            try:
                self.appender.append(batch, retry=retry)
                return
            except AppendFailed as exc:
                # Written here instead; a batch the appender may have committed skips what it wrote.
                retry = retry or exc.uncertain
                log.warning("audit appender: %s; %d entries written in process", exc, len(batch))
        write_batch(
            self.db, batch, observer=self.config.observer, algorithm=self.config.algorithm, retry=retry
        )

    def close(self) -> None:
        """Stop the writer thread, write what is still buffered, stop the appender."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=30)
        self._thread = None
        try:
            self.flush()
        finally:
            if self.appender is not None:
                self.appender.close()

    def _ensure_thread(self) -> None:
        if os.getpid() != self._pid:
            # A forked worker: the parent writes what it had buffered; this process starts afresh.
            self._pid = os.getpid()
            self._pending, self._unsettled = [], []
            self._lock, self._writing = threading.Lock(), threading.Lock()
            self._wake, self._thread = threading.Event(), None
        if self._thread is not None or self._stop.is_set():
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="rhip-audit", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        interval = self.config.flush_ms / 1000
        failures = 0
        while not self._stop.is_set():
            self._wake.wait(interval * (2 ** min(failures, 6)))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
                failures = 0
            except Exception as exc:  # keep the entries and retry, backing off
                failures += 1
                log.error("writing %d audit entries failed: %s", self.pending, type(exc).__name__)

    # -- reading --------------------------------------------------------------------------------
    def search_page(
        self, query: SearchQuery, restrict: AuditRestriction | Collection[str] | None = None
    ) -> SearchPage:
        """A page of AuditEvents for a FHIR search, within ``restrict``.

        ``restrict``: an :class:`AuditRestriction`, or the Patient ids whose entries may be seen, or
        None for the whole log (administrators).
        """
        if restrict is None:
            restrict = AuditRestriction()
        elif not isinstance(restrict, AuditRestriction):
            restrict = AuditRestriction(patients=tuple(restrict))
        return search_page(self.db, query, restrict)

    def who_viewed(
        self,
        patient_ids: Collection[str],
        *,
        exclude_subjects: Collection[str] = (),
        since_us: int | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Who read these Patients' records, when, from which institution and for what purpose."""
        return queries.who_viewed(
            self.db, patient_ids, exclude_subjects=exclude_subjects, since_us=since_us, limit=limit
        )

    def verify(self) -> VerifyReport:
        """Check the whole chain (buffered accesses are written first)."""
        self.flush()
        return verify(self.db)
