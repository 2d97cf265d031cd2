"""Keeps the quality counts current while a server runs: a thread that catches up with the outbox.

It wakes when this process has stored something (bootstrap passes the store's events to :meth:`wake`) and
every ``interval_s`` seconds in any case, for what other processes stored (other workers, the writer
process, an import). Of a server's workers one scores at a time, the holder of the follower lease; the
others stand by and try for it every ``interval_s``, so a backlog is not scored by every worker at once.
Were two to score anyway (``rhip quality score`` beside a server), the repository records each batch once.
A failure is logged (its type only: messages can quote data) and retried at the next turn; the outbox keeps
everything until then.
"""

from __future__ import annotations

import logging
import threading

from rhip.quality.repository import FollowerLease
from rhip.quality.service import QualityService

log = logging.getLogger("rhip.quality")


class QualityFollower:
    """A daemon thread running :meth:`QualityService.catch_up` when woken and every ``interval_s``."""

    def __init__(self, service: QualityService, interval_s: float) -> None:
        self.service = service
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lease = FollowerLease(service.repository.db)

    def start(self) -> None:
        """Start following (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="rhip-quality", daemon=True)
            self._thread.start()

    def wake(self, _event: object = None) -> None:
        """Ask for a catch-up soon (an event handler: it only sets a flag)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after the batch in hand."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    if self.lease.acquire():
                        self.service.catch_up(stop=self._stop.is_set)
                except Exception as exc:  # the thread must outlive a bad turn (the database restarting, say)
                    log.warning("quality scoring failed; retrying", extra={"error": type(exc).__name__})
                    self.lease.release()  # its connection may be the broken part
                self._wake.wait(self.interval_s)
                self._wake.clear()
        finally:
            self.lease.release()
