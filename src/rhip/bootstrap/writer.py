"""The writer process of a multi-worker SQLite server: started by ``rhip serve``, restarted if it dies."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rhip.bootstrap.logging import configure_logging
from rhip.bootstrap.settings import Settings

log = logging.getLogger("rhip.writer")


def _run(settings_json: str, path: str) -> None:
    """Process target: serve prepared writes until SIGTERM."""
    from rhip.bootstrap.container import database, settle_heap
    from rhip.store.write_service import WriteServer

    settings = Settings.model_validate_json(settings_json)
    configure_logging(settings.log_level, settings.log_format)
    db = database(settings, cache_mb=settings.sqlite.writer_cache_mb)
    db.linger(settings.sqlite.writer_linger_ms / 1000, until=settings.server.workers)
    server = WriteServer(db, path)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when the writer stops
    settle_heap()
    try:
        server.serve_forever()
    finally:
        db.dispose()


class WriterProcess:
    """Starts the writer, waits until it listens, restarts it when it dies, stops it at the end."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.path = str(Path(tempfile.mkdtemp(prefix="rhip-")) / "writer.sock")
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._stopping = threading.Event()

    def start(self) -> str:
        """Start the writer and its watchdog; returns the socket path for the workers."""
        self._spawn()
        threading.Thread(target=self._watch, name="writer-watchdog", daemon=True).start()
        return self.path

    def _spawn(self) -> None:
        self._proc = self._ctx.Process(
            target=_run, args=(self.settings.model_dump_json(), self.path), name="rhip-writer"
        )
        self._proc.start()
        deadline = time.monotonic() + 30
        while not os.path.exists(self.path):
            if time.monotonic() > deadline or not self._proc.is_alive():
                raise RuntimeError("the writer process did not start")
            time.sleep(0.05)

    def _watch(self) -> None:
        while not self._stopping.wait(1.0):
            if not self._proc.is_alive():
                log.error("writer process exited with %s; restarting it", self._proc.exitcode)
                try:
                    self._spawn()
                except RuntimeError:
                    log.exception("writer process failed to restart")

    def stop(self) -> None:
        """Stop the writer after the requests in flight."""
        self._stopping.set()
        if self._proc is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(30)
        shutil.rmtree(os.path.dirname(self.path), ignore_errors=True)
