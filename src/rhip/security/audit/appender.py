"""The audit appender: a process of its own that builds and chains the entries of the reads a server audits.

Every read and search of resident data becomes an entry of the hash-chained log. Building an entry
(the BALP facts, masking its free text), hashing it onto the chain and inserting it are a few dozen
microseconds of interpreter time each; done by a thread of the serving process they hold that process's
interpreter lock, and the requests queue behind them (about a fifth of search throughput on a 2-core
machine). ``rhip serve`` therefore hands its batches of reads to this process (``python -m
rhip.security.audit.appender``, started by the first batch) over a pipe, in plain-value frames
(:mod:`rhip.core.frames`), and keeps each batch until the appender answers that it is committed.

Should the appender fail to start, die or not answer, the serving process writes the batch itself
(:class:`rhip.security.audit.trail.AuditTrail`) and starts a new appender for a later batch; a batch the
appender may have committed before failing is written with ``retry``, so no entry is lost or doubled.
The appender reads its configuration (the database URL among it) from its first frame rather than its
command line, ignores SIGINT and SIGTERM, and ends when its parent closes the pipe or dies.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rhip.core.frames import FrameError, read_frame, write_frame
from rhip.security.audit.batches import AppendFailed, Wire

log = logging.getLogger("rhip.audit")
START_TIMEOUT_S = 30.0
ANSWER_TIMEOUT_S = 120.0  # a batch may wait for the database's write lock (busy timeout 30 s) and more
RESTART_AFTER_S = 5.0  # after a failure to start, batches are written in process this long


class _Lost(AppendFailed):
    """The appender went away while it had the batch (a new one may take it)."""


class ProcessAppender:
    """The serving process's side: starts the appender, sends it batches, stops it.

    ``options``: ``database`` (the fields of :class:`rhip.db.engine.DatabaseConfig`), ``observer``,
    ``algorithm`` and ``log_level``, all plain values.
    """

    def __init__(
        self,
        options: Mapping[str, Any],
        *,
        start_timeout_s: float = START_TIMEOUT_S,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
        restart_after_s: float = RESTART_AFTER_S,
        command: Sequence[str] | None = None,
    ) -> None:
        self.options = dict(options)
        self.start_timeout_s = start_timeout_s
        self.answer_timeout_s = answer_timeout_s
        self.restart_after_s = restart_after_s
        self.command = list(command or [sys.executable, "-m", "rhip.security.audit.appender"])
        self._proc: subprocess.Popen[bytes] | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._failed_at: float | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The appender's process id while it runs."""
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def append(self, batch: Sequence[Wire], *, retry: bool) -> None:
        """Have the appender write ``batch``; returns once it is committed, else raises AppendFailed.

        An appender found gone (killed, crashed, hung) is replaced once and the batch sent to the new one,
        skipping what the old one may have written.
        """
        with self._lock:
            try:
                self._send(batch, retry)
            except _Lost as lost:
                try:
                    self._send(batch, retry or lost.uncertain)
                except AppendFailed as again:
                    # Whoever writes the batch now must skip what either appender may have written.
                    raise AppendFailed(str(again), uncertain=lost.uncertain or again.uncertain) from again

    def _send(self, batch: Sequence[Wire], retry: bool) -> None:
        proc = self._running()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            write_frame(proc.stdin.fileno(), ("append", retry, list(batch)))
        except OSError as exc:
            # The appender did not get the whole frame: it cannot have written the batch.
            self._kill()
            raise _Lost(f"the audit appender is gone ({type(exc).__name__})", uncertain=False) from exc
        try:
            status, detail = read_frame(proc.stdout.fileno(), timeout_s=self.answer_timeout_s)
        except (FrameError, OSError, ValueError) as exc:
            self._kill()
            raise _Lost(f"the audit appender did not answer ({exc})", uncertain=True) from exc
        if status != "ok":
            raise AppendFailed(f"the audit appender could not write ({detail})", uncertain=False)

    def close(self) -> None:
        """Close the pipe (the appender ends once it has answered what it read) and wait for it."""
        with self._lock:
            self._closed = True
            proc, self._proc = self._proc, None
            if proc is None or os.getpid() != self._pid:
                return
            assert proc.stdin is not None
            try:
                proc.stdin.close()
                proc.wait(timeout=self.answer_timeout_s)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
                proc.wait()
            finally:
                if proc.stdout is not None:
                    proc.stdout.close()

    def _running(self) -> subprocess.Popen[bytes]:
        if self._closed:
            raise AppendFailed("the audit appender is closed", uncertain=False)
        if os.getpid() != self._pid:
            # A forked worker: the parent's appender and pipes are the parent's; this process starts its own.
            self._pid, self._proc, self._failed_at = os.getpid(), None, None
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        if self._proc is not None:
            log.warning("the audit appender ended (exit code %s); starting another", self._proc.returncode)
            self._kill()
        if self._failed_at is not None and time.monotonic() - self._failed_at < self.restart_after_s:
            raise AppendFailed("the audit appender failed to start a moment ago", uncertain=False)
        try:
            self._proc = self._start()
        except (OSError, FrameError, ValueError) as exc:
            self._failed_at = time.monotonic()
            raise AppendFailed(f"the audit appender did not start ({exc})", uncertain=False) from exc
        self._failed_at = None
        return self._proc

    def _start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(  # noqa: S603 -- our own interpreter and module
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True
        )
        assert proc.stdin is not None and proc.stdout is not None
        try:
            write_frame(proc.stdin.fileno(), self.options)
            answer = read_frame(proc.stdout.fileno(), timeout_s=self.start_timeout_s)
            if not (isinstance(answer, tuple) and answer[:1] == ("ready",)):
                raise FrameError(f"unexpected first answer {str(answer)[:40]!r}")
        except BaseException:
            proc.kill()
            proc.wait()
            proc.stdin.close()
            proc.stdout.close()
            raise
        return proc

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def serve(fd_in: int, fd_out: int) -> int:
    """The appender's loop: configuration first, then one answer for every batch, until end of file."""
    from rhip.db.engine import Database, DatabaseConfig, build_engine
    from rhip.security.audit.batches import write_batch

    try:
        options = read_frame(fd_in)
    except FrameError:
        return 1
    logging.basicConfig(
        level=str(options.get("log_level", "WARNING")).upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    db = Database(build_engine(DatabaseConfig(**options["database"])))
    observer, algorithm = str(options["observer"]), str(options["algorithm"])
    write_frame(fd_out, ("ready", os.getpid()))
    try:
        while True:
            try:
                kind, retry, batch = read_frame(fd_in)
            except FrameError:
                return 0  # the server closed the pipe, or is gone
            if kind != "append":
                write_frame(fd_out, ("error", f"unknown request {str(kind)[:20]!r}"))
                continue
            try:
                written = write_batch(db, batch, observer=observer, algorithm=algorithm, retry=bool(retry))
                reply: tuple[str, Any] = ("ok", written)
            except Exception as exc:  # the database failed: the server keeps the batch and retries
                log.error("writing %d audit entries failed: %s", len(batch), type(exc).__name__)
                reply = ("error", type(exc).__name__)
            write_frame(fd_out, reply)
    finally:
        db.dispose()


def main() -> None:
    """Process entry: frames on stdin, answers on stdout (anything else printed goes to stderr)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when its appender stops
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    answers = os.dup(sys.stdout.fileno())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.exit(serve(sys.stdin.fileno(), answers))


if __name__ == "__main__":
    main()
