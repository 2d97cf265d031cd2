"""The writer process of a multi-worker SQLite server: started by ``rhip serve``, restarted if it dies.

The writer runs as its own interpreter (``python -m rhip.bootstrap.writer``) rather than through
multiprocessing, whose spawn start method imports the parent's main module in the child: the writer
imports only the database layer and the write service, about 40 MB where a platform process takes 90.
For the same reason this module imports neither the settings tree nor the platform at module level.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rhip.bootstrap.settings import Settings

log = logging.getLogger("rhip.writer")
CONFIG_ENV = "RHIP_WRITER_CONFIG"
START_TIMEOUT_S = 30.0


def writer_options(settings: Settings, socket_path: str) -> dict[str, Any]:
    """What the writer process needs to know, as plain JSON values."""
    return {
        "database": settings.database_options(settings.sqlite.writer_cache_mb),
        "linger_s": settings.sqlite.writer_linger_ms / 1000,
        "workers": settings.server.workers,
        "socket": socket_path,
        "log_level": settings.log_level,
        "log_format": settings.log_format,
    }


def main() -> None:
    """Process entry: serve prepared writes on the socket until SIGTERM."""
    from rhip.bootstrap.logging import configure_logging
    from rhip.bootstrap.runtime import settle_heap
    from rhip.db.engine import Database, DatabaseConfig, build_engine
    from rhip.store.write_service import WriteServer

    options = json.loads(os.environ[CONFIG_ENV])
    configure_logging(options["log_level"], options["log_format"])
    db = Database(build_engine(DatabaseConfig(**options["database"])))
    db.linger(options["linger_s"], until=options["workers"])
    server = WriteServer(db, options["socket"])
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when the writer stops
    # The supervisor holds the other end of stdin: end of file means it is gone, even killed outright,
    # and a writer must not outlive it (it would keep the database's write lock).
    threading.Thread(target=_stop_when_orphaned, args=(server,), name="parent-watch", daemon=True).start()
    settle_heap()
    try:
        server.serve_forever()
    finally:
        db.dispose()


def _stop_when_orphaned(server: Any) -> None:
    while sys.stdin.buffer.read(4096):
        pass
    server.stop()


class WriterProcess:
    """Starts the writer, waits until it listens, restarts it when it dies, stops it at the end."""

    def __init__(self, settings: Settings) -> None:
        self.path = str(Path(tempfile.mkdtemp(prefix="rhip-")) / "writer.sock")
        self._env = {**os.environ, CONFIG_ENV: json.dumps(writer_options(settings, self.path))}
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # spawning and stopping never overlap
        self._watchdog: threading.Thread | None = None

    def start(self) -> str:
        """Start the writer and its watchdog; returns the socket path for the workers."""
        with self._lock:
            self._spawn()
        self._watchdog = threading.Thread(target=self._watch, name="writer-watchdog", daemon=True)
        self._watchdog.start()
        return self.path

    def _spawn(self) -> None:
        if os.path.exists(self.path):
            os.unlink(self.path)  # a dead writer's socket: the new one's appearing is the signal below
        # -P: the working directory is not put on sys.path. stdin stays open for the writer's lifetime.
        proc = subprocess.Popen(
            [sys.executable, "-P", "-m", "rhip.bootstrap.writer"], env=self._env, stdin=subprocess.PIPE
        )
        self._proc = proc
        deadline = time.monotonic() + START_TIMEOUT_S
        while not os.path.exists(self.path):
            if time.monotonic() > deadline or proc.poll() is not None:
                _end(proc)
                raise RuntimeError("the writer process did not start")
            time.sleep(0.05)

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            with self._lock:
                proc = self._proc
                if self._stopping.is_set() or proc is None or proc.poll() is None:
                    continue
                log.error("writer process exited with %s; restarting it", proc.returncode)
                _close_stdin(proc)
                try:
                    self._spawn()
                except RuntimeError:
                    log.exception("writer process failed to restart")

    def stop(self) -> None:
        """Stop the writer after the requests in flight (it answers each before it exits)."""
        self._stopping.set()
        with self._lock:
            if self._proc is not None:
                _end(self._proc)
        if self._watchdog is not None:
            self._watchdog.join(5)
        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)


def _close_stdin(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Stop a writer process: SIGTERM, then SIGKILL if it has not gone within 30 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _close_stdin(proc)


if __name__ == "__main__":
    main()
