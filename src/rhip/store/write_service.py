"""The writer process: one process writes the SQLite database on behalf of every HTTP worker.

SQLite has one writer at a time. When two worker processes take turns, each commit of one empties the
other's page cache and every commit carries one request's pages. Workers instead validate and index a
request themselves, then send the prepared rows (:class:`rhip.store.apply.PreparedWrite`) over a Unix
socket to this process, which writes whatever has arrived in one transaction (a SAVEPOINT per request,
one commit, see :class:`rhip.db.group_commit.GroupCommitter`) and answers each request only after the
commit. Requests that must read in the middle of their transaction (updates, conditional writes) still
write from their worker under the database's write lock.

Frames are a 4-byte length and a pickle of plain tuples, lists, dicts, strings, numbers and bytes
(:meth:`PreparedWrite.to_wire`; :mod:`rhip.core.frames`): the writer's unpickler refuses every class, so a
frame cannot make it run code, and plain containers are several times cheaper to pickle than objects. The socket is created
with mode 0600 next to nothing but rhip's own processes.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import threading
from dataclasses import astuple
from functools import partial
from typing import Any

from sqlalchemy.exc import IntegrityError

from rhip.core.errors import ERROR_CLASSES, Conflict, Issue, RhipError, StorageUnavailable
from rhip.core.frames import HEADER, encode, loads_plain
from rhip.db.engine import Database
from rhip.store.apply import PreparedWrite, apply

log = logging.getLogger("rhip.writer")
DRAIN_TIMEOUT_S = 60.0  # how long a stopping writer waits for the requests it is writing


def _send(sock: socket.socket, value: Any) -> None:
    sock.sendall(encode(value))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks, remaining = [], n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("connection closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _recv(sock: socket.socket, restricted: bool) -> Any:
    (size,) = HEADER.unpack(_recv_exact(sock, HEADER.size))
    data = _recv_exact(sock, size)
    return loads_plain(data) if restricted else pickle.loads(data)  # noqa: S301 -- from our own writer


class WriteServer:
    """Accepts prepared writes from workers and commits them in groups."""

    def __init__(self, db: Database, path: str) -> None:
        self.db = db
        self.path = path
        self._stop = threading.Event()
        self._busy = 0  # requests between their frame and their answer
        self._idle = threading.Condition()

    def serve_forever(self) -> None:
        """Listen on the Unix socket until :meth:`stop`."""
        if os.path.exists(self.path):
            os.unlink(self.path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            server.bind(self.path)
        finally:
            os.umask(old)
        server.listen(64)
        server.settimeout(0.5)
        log.info("writer listening", extra={"socket": self.path})
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                threading.Thread(target=self._serve_client, args=(conn,), daemon=True).start()
        finally:
            server.close()
            if os.path.exists(self.path):
                os.unlink(self.path)
            # A request being written may already be committed: its worker must get the answer.
            with self._idle:
                self._idle.wait_for(lambda: self._busy == 0, timeout=DRAIN_TIMEOUT_S)

    def stop(self) -> None:
        """Stop accepting; requests in flight still get their answer, later ones are refused unwritten."""
        self._stop.set()

    def _serve_client(self, conn: socket.socket) -> None:
        with conn:
            while True:
                try:
                    prepared = PreparedWrite.from_wire(_recv(conn, restricted=True))
                except (ConnectionError, OSError):
                    return
                except (pickle.UnpicklingError, TypeError, ValueError) as exc:
                    log.warning("refused a write request: %s", type(exc).__name__)
                    return
                with self._idle:
                    if self._stop.is_set():
                        return  # nothing written: the worker answers 503 and the client may retry
                    self._busy += 1
                try:
                    self._answer(conn, prepared)
                except OSError:
                    return
                finally:
                    with self._idle:
                        self._busy -= 1
                        self._idle.notify_all()

    def _answer(self, conn: socket.socket, prepared: PreparedWrite) -> None:
        """Write ``prepared`` and send the outcome."""
        try:
            self.db.run_grouped(partial(apply, prepared=prepared))
            reply: tuple[str, Any] = ("ok", None)
        except RhipError as error:
            reply = ("error", (error.code, error.message, [astuple(i) for i in error.extra_issues]))
        except IntegrityError:
            message = "A concurrent change touched the same resource; retry the request"
            reply = ("error", (Conflict.code, message, []))
        except Exception as exc:  # the database failed: the worker answers 503, nothing is acknowledged
            log.exception("write failed")
            reply = ("error", (StorageUnavailable.code, f"write failed: {type(exc).__name__}", []))
        _send(conn, reply)


class RemoteWriter:
    """A worker's client of the writer process (one connection per thread)."""

    def __init__(self, path: str, timeout_s: float = 120.0) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._local = threading.local()

    def _connection(self) -> socket.socket:
        sock: socket.socket | None = getattr(self._local, "sock", None)
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout_s)
            sock.connect(self.path)
            self._local.sock = sock
        return sock

    def write(self, prepared: PreparedWrite) -> None:
        """Have the writer store ``prepared``; returns once it is committed, raises what the write raised."""
        try:
            wire = prepared.to_wire()
            try:
                _send(self._connection(), wire)
            except OSError:
                # The connection died before the writer read anything (it restarted): send once more anew.
                self._drop()
                _send(self._connection(), wire)
            status, detail = _recv(self._connection(), restricted=False)
        except (OSError, ConnectionError) as exc:
            self._drop()
            raise StorageUnavailable(f"the writer process is not reachable ({type(exc).__name__})") from exc
        if status == "ok":
            return
        code, message, issues = detail
        cls = ERROR_CLASSES.get(code, StorageUnavailable)
        raise cls(message, issues=[Issue(*i) for i in issues])

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            sock.close()
