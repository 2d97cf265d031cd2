"""MLLP framing: frames out of any chunking, garbage between frames skipped, cut-off and oversized frames."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rhip.exchange.mllp.client import split_messages
from rhip.exchange.mllp.framing import OK, OVERSIZED, UNTERMINATED, FrameDecoder, wrap

A = b"MSH|^~\\&|HIS|H1|||20250101||ADT^A04|1|P|2.5.1\r"
B = "MSH|^~\\&|HIS|H1|||20250101||ADT^A04|2|P|2.5.1\rPID|1||9^^^H1^MR||张三\r".encode("gb18030")


def feed_all(decoder: FrameDecoder, data: bytes, size: int) -> list[tuple[bytes, str]]:
    out = []
    for start in range(0, len(data), size):
        out += [(f.data, f.kind) for f in decoder.feed(data[start : start + size])]
    return out


def test_two_frames_in_one_chunk() -> None:
    frames = FrameDecoder(1024).feed(wrap(A) + wrap(B))
    assert [(f.data, f.kind) for f in frames] == [(A, OK), (B, OK)]


@given(st.integers(min_value=1, max_value=40))
def test_any_chunking_gives_the_same_frames(size: int) -> None:
    data = b"\n\x00" + wrap(A) + b"\r\n" + wrap(B) + wrap(A)
    assert feed_all(FrameDecoder(1024), data, size) == [(A, OK), (B, OK), (A, OK)]


def test_garbage_between_frames_is_skipped_and_counted() -> None:
    decoder = FrameDecoder(1024)
    frames = decoder.feed(b"hello" + wrap(A) + b"\r\r" + wrap(B))
    assert [f.data for f in frames] == [A, B]
    assert decoder.garbage == 7  # "hello" and two carriage returns (the one right after 0x1C is the end)


def test_end_block_without_carriage_return_still_ends_the_frame() -> None:
    frames = FrameDecoder(1024).feed(b"\x0b" + A + b"\x1c" + b"\x0b" + B + b"\x1c\r")
    assert [f.data for f in frames] == [A, B]


def test_a_start_block_inside_a_frame_cuts_the_first_one_off() -> None:
    frames = FrameDecoder(1024).feed(b"\x0b" + A[:20] + wrap(B))
    assert [(f.data, f.kind) for f in frames] == [(A[:20], UNTERMINATED), (B, OK)]


def test_an_oversized_frame_is_skipped_keeping_its_head() -> None:
    big = A + b"OBX|" + b"x" * 5000 + b"\r"
    decoder = FrameDecoder(1000)
    out = feed_all(decoder, wrap(big) + wrap(B), 300)
    assert [kind for _, kind in out] == [OVERSIZED, OK]
    assert out[0][0].startswith(A)
    assert len(out[0][0]) <= 4096
    assert out[1][0] == B
    assert decoder.pending == 0


def test_finish_reports_a_frame_cut_off_by_the_end_of_the_stream() -> None:
    decoder = FrameDecoder(1024)
    assert decoder.feed(b"\x0b" + A[:10]) == []
    tail = decoder.finish()
    assert tail is not None and tail.kind == UNTERMINATED and tail.data == A[:10]
    assert decoder.finish() is None


def test_split_messages_of_a_framed_file_and_of_a_plain_file() -> None:
    assert split_messages(wrap(A) + b"\n" + wrap(B)) == [A, B]
    plain = A.replace(b"\r", b"\n") + b"\n" + B.replace(b"\r", b"\r\n")
    assert split_messages(b"\xef\xbb\xbf" + plain) == [A, B]
