"""MLLP framing: ``0x0B`` message ``0x1C 0x0D``, read tolerantly from a byte stream.

Bytes between frames (line feeds, keep-alive NULs, a stray carriage return) are skipped. A frame whose end
block is not followed by a carriage return still ends there. A start block inside a frame means the
previous frame was cut off: it is handed on as ``unterminated`` (and answered with an AR), and the new
frame starts. A frame larger than the limit is skipped to its end and handed on as ``oversized`` with its
first bytes only, so that its answer can still name its control id (a cut-off frame is kept whole). None of these bytes (0x0B, 0x1C) can
occur inside UTF-8, GBK or GB 18030 text.
"""

from __future__ import annotations

from dataclasses import dataclass

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
HEAD_KEPT = 4096  # bytes kept of an oversized frame (its MSH)

OK = "ok"
OVERSIZED = "oversized"
UNTERMINATED = "unterminated"


@dataclass(frozen=True)
class Frame:
    """One frame's content (without the block characters) and whether it arrived whole."""

    data: bytes
    kind: str = OK  # ok | oversized | unterminated
    size: int = 0  # bytes the frame had (more than len(data) when oversized)


def wrap(payload: bytes) -> bytes:
    """``payload`` inside MLLP block characters."""
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


class FrameDecoder:
    """Turns the chunks a socket delivers into frames."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.garbage = 0  # bytes skipped between frames (carriage returns after end blocks excluded)
        self._buf = bytearray()
        self._in_frame = False
        self._scanned = 0  # bytes of the frame already searched for block characters
        self._skipping = False  # inside an oversized frame, discarding to its end
        self._skipped = 0
        self._head = b""
        self._after_end = False  # the previous frame ended with 0x1C, so a 0x0D may follow

    @property
    def pending(self) -> int:
        """Bytes held of a frame not yet complete."""
        return len(self._buf) + self._skipped

    def feed(self, chunk: bytes) -> list[Frame]:
        """The frames ``chunk`` completes, in order."""
        frames: list[Frame] = []
        self._buf += chunk
        while self._buf:
            if not self._in_frame:
                if not self._seek_start():
                    break
                continue
            frame = self._frame_end()
            if frame is None:
                break
            frames.append(frame)
        return frames

    def finish(self) -> Frame | None:
        """At end of stream: the frame that was cut off, if any."""
        if self._skipping:
            frame = Frame(self._head, OVERSIZED, self._skipped)
        elif self._in_frame and self._buf:
            frame = Frame(bytes(self._buf), UNTERMINATED, len(self._buf))
        else:
            frame = None
        self._reset()
        self._buf.clear()
        return frame

    def _reset(self) -> None:
        self._in_frame = False
        self._scanned = 0
        self._skipping = False
        self._skipped = 0
        self._head = b""

    def _seek_start(self) -> bool:
        start = self._buf.find(START_BLOCK)
        skipped = len(self._buf) if start < 0 else start
        if skipped and self._after_end and self._buf[:1] == CARRIAGE_RETURN:
            skipped -= 1  # the carriage return of the previous frame's end, not garbage
        self.garbage += skipped
        self._after_end = False
        if start < 0:
            self._buf.clear()
            return False
        del self._buf[: start + 1]
        self._in_frame = True
        return True

    def _frame_end(self) -> Frame | None:
        buf = self._buf
        end = buf.find(END_BLOCK, self._scanned)
        restart = buf.find(START_BLOCK, self._scanned, end if end >= 0 else len(buf))
        if restart >= 0:
            # A new frame began before this one ended: this one was cut off.
            frame = self._emit(restart, UNTERMINATED)
            del buf[:restart]
            return frame
        if end < 0:
            self._scanned = len(buf)
            if self._skipping or len(buf) > self.max_bytes:
                self._skip(len(buf))
            return None
        frame = self._emit(end, OK)
        del buf[: end + 1]
        self._after_end = True
        return frame

    def _skip(self, n: int) -> None:
        """Drop ``n`` bytes of an oversized frame, keeping its head."""
        if not self._skipping:
            self._head = bytes(self._buf[:HEAD_KEPT])
            self._skipping = True
        self._skipped += n
        del self._buf[:n]
        self._scanned = 0

    def _emit(self, end: int, kind: str) -> Frame:
        size = self._skipped + end
        if self._skipping or size > self.max_bytes:
            head = self._head if self._skipping else bytes(self._buf[:HEAD_KEPT])
            frame = Frame(head, OVERSIZED, size)
        elif kind == UNTERMINATED:
            frame = Frame(bytes(self._buf[:end]), UNTERMINATED, size)
        else:
            frame = Frame(bytes(self._buf[:end]), OK, size)
        self._reset()
        return frame
