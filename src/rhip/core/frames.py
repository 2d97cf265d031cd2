"""Frames between rhip's own processes: a 4-byte length and a pickle of plain values.

A frame holds tuples, lists, dicts, strings, numbers, bytes and None only: the reading side refuses every
class (:class:`PlainUnpickler`), so a frame cannot make the reader run code, and plain containers are
several times cheaper to pickle than objects. Pipes are read with a deadline, so a peer that hangs is
noticed rather than waited for forever.
"""

from __future__ import annotations

import io
import os
import pickle
import select
import struct
import time
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 1 << 30


class FrameError(Exception):
    """The peer closed the pipe, sent something that is not a frame, or did not answer in time."""


class PlainUnpickler(pickle.Unpickler):
    """Plain containers and values only."""

    def find_class(self, module: str, name: str) -> Any:
        """Refuse every class."""
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a frame")


def loads_plain(data: bytes) -> Any:
    """Unpickle plain values (``pickle.UnpicklingError`` for anything else)."""
    return PlainUnpickler(io.BytesIO(data)).load()


def encode(value: Any) -> bytes:
    """One frame: the length, then the pickle."""
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


def write_frame(fd: int, value: Any) -> None:
    """Write one frame to the file descriptor ``fd`` (blocking until all of it is written)."""
    view = memoryview(encode(value))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    remaining = n
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise FrameError("no answer in time")
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise FrameError("the pipe was closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, *, timeout_s: float | None = None) -> Any:
    """Read one frame of plain values from ``fd``; FrameError on end of file, garbage or timeout."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size, deadline))
    if size > MAX_FRAME:
        raise FrameError(f"a frame of {size} bytes is too large")
    try:
        return loads_plain(_read_exact(fd, size, deadline))
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise FrameError(f"not a frame of plain values ({type(exc).__name__})") from exc
