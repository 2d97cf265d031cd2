"""Background WAL checkpoints for SQLite, so that commits do not pay for them.

By default SQLite checkpoints from inside a commit once the WAL passes a size: that commit then copies
thousands of pages into the database file and syncs it while holding the write lock, tens of
milliseconds during which nobody writes. Here a thread copies the WAL into the database file with
PASSIVE checkpoints, which run beside writers, every couple of seconds (a page written by many commits in
between is copied once); when the WAL has grown past ``restart_pages`` it briefly
takes the write lock, finishes the few frames written since, and restarts the WAL from its beginning.
The connections keep a large ``wal_autocheckpoint`` only as a safety net for when this thread is not
running.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Protocol

log = logging.getLogger("rhip.db")


class Lock(Protocol):
    """The database's write lock."""

    def acquire(self) -> None:
        """Take the lock."""

    def release(self) -> None:
        """Release the lock."""


class WalCheckpointer:
    """A daemon thread checkpointing one SQLite database."""

    def __init__(self, path: str, lock: Lock, restart_pages: int, interval_s: float = 2.0) -> None:
        self.path = path
        self.lock = lock
        self.restart_pages = restart_pages
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0

    def start(self) -> None:
        """Start the thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=0.1, isolation_level=None, check_same_thread=False)
        except sqlite3.Error:
            log.exception("the WAL checkpoint thread cannot open the database")
            return
        try:
            while not self._stop.wait(self.interval_s):
                try:
                    self.checkpoint(conn)
                except sqlite3.Error as exc:  # a busy database now is a checkpoint a moment later
                    log.debug("checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> None:
        """One round: copy what can be copied; restart the WAL when it has grown large."""
        _busy, frames, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if frames < self.restart_pages or done < frames * 0.9:
            return
        self.lock.acquire()
        try:
            busy, _frames, _done = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        finally:
            self.lock.release()
        if not busy:
            self.restarts += 1
