"""Frames between rhip's own processes: plain values only, a deadline on every read."""

from __future__ import annotations

import contextlib
import os
import pickle
from collections.abc import Iterator
from fractions import Fraction

import pytest

from rhip.core.frames import HEADER, FrameError, encode, loads_plain, read_frame, write_frame


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    try:
        yield r, w
    finally:
        for fd in (r, w):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_plain_values_round_trip(pipe: tuple[int, int]) -> None:
    r, w = pipe
    value = ("append", True, [("id", 1, None, (("Patient", "p", 2),), {"k": b"v"}, 1.5)])
    write_frame(w, value)
    assert read_frame(r, timeout_s=5) == value


def test_a_class_in_a_frame_is_refused(pipe: tuple[int, int]) -> None:
    r, w = pipe
    with pytest.raises(pickle.UnpicklingError):
        loads_plain(pickle.dumps(Fraction(1, 3)))
    write_frame(w, Fraction(1, 3))
    with pytest.raises(FrameError, match="plain values"):
        read_frame(r, timeout_s=5)


def test_end_of_file_garbage_and_silence_are_frame_errors(pipe: tuple[int, int]) -> None:
    r, w = pipe
    with pytest.raises(FrameError, match="in time"):
        read_frame(r, timeout_s=0.05)
    os.write(w, HEADER.pack(4) + b"\x00\x01")  # a frame cut short
    with pytest.raises(FrameError, match="in time"):
        read_frame(r, timeout_s=0.05)
    os.close(w)
    with pytest.raises(FrameError, match="closed"):
        read_frame(r, timeout_s=5)


def test_an_oversized_length_is_refused_unread(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, HEADER.pack(0xFFFF_FFFF))
    with pytest.raises(FrameError, match="too large"):
        read_frame(r, timeout_s=5)


def test_encode_is_length_then_pickle() -> None:
    data = encode(("ok", 3))
    (size,) = HEADER.unpack(data[: HEADER.size])
    assert size == len(data) - HEADER.size and loads_plain(data[HEADER.size :]) == ("ok", 3)
