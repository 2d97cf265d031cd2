"""An MLLP sender: what an integrator's interface engine does, for ``rhip exchange send`` and the benchmark."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator

from rhip.exchange.mllp.framing import START_BLOCK, FrameDecoder, wrap

ACK_LIMIT = 1024 * 1024


def split_messages(data: bytes) -> list[bytes]:
    """The messages of a file: its MLLP frames, or else its messages one after another (each from MSH)."""
    if START_BLOCK in data:
        decoder = FrameDecoder(max(len(data), 1))
        frames = [f.data for f in decoder.feed(data)]
        tail = decoder.finish()
        if tail is not None and tail.data.strip():
            frames.append(tail.data)
        return frames
    text = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    messages: list[bytes] = []
    for segment in text.split(b"\r"):
        stripped = segment.lstrip(b"\xef\xbb\xbf")
        if not stripped.strip():
            continue
        if stripped.startswith(b"MSH") or not messages:
            messages.append(stripped + b"\r")
        else:
            messages[-1] += stripped + b"\r"
    return messages


def client_tls(ca_file: str | None, cert: str | None = None, key: str | None = None) -> ssl.SSLContext:
    """A TLS context that checks the server against ``ca_file`` (the system's CAs when None)."""
    context = ssl.create_default_context(cafile=ca_file)
    if cert:
        context.load_cert_chain(cert, key)
    return context


class MllpClient:
    """One MLLP connection: send a message, wait for its acknowledgement."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = FrameDecoder(ACK_LIMIT)
        self._acks: list[bytes] = []

    @classmethod
    async def connect(
        cls, host: str, port: int, *, tls: ssl.SSLContext | None = None, server_hostname: str | None = None
    ) -> MllpClient:
        """Open a connection."""
        reader, writer = await asyncio.open_connection(
            host, port, ssl=tls, server_hostname=server_hostname if tls else None
        )
        return cls(reader, writer)

    async def send(self, message: bytes, timeout: float = 30.0) -> bytes:
        """Send one message and return its acknowledgement (without framing)."""
        self.writer.write(wrap(message))
        await self.writer.drain()
        return await self.receive(timeout)

    async def receive(self, timeout: float = 30.0) -> bytes:
        """The next acknowledgement; raises ConnectionError when the server closes first."""
        while not self._acks:
            chunk = await asyncio.wait_for(self.reader.read(65536), timeout)
            if not chunk:
                raise ConnectionError("the server closed the connection before acknowledging")
            self._acks.extend(f.data for f in self.decoder.feed(chunk))
        return self._acks.pop(0)

    async def close(self) -> None:
        """Close the connection."""
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def ack_summary(ack: bytes) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, the error text) of an acknowledgement, read leniently (an ACK need not parse)."""
    from rhip.exchange.hl7v2.charset import readable
    from rhip.exchange.hl7v2.message import DEFAULT_DELIMITERS, Delimiters, split_segments, unescape

    text = readable(ack)
    lines = split_segments(text)
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        return "??", "", text[:200]
    head = lines[0]
    d = Delimiters(head[3], *head[4:8]) if len(set(head[3:8])) == 5 else DEFAULT_DELIMITERS
    segments = {line[:3]: line.split(d.field) for line in reversed(lines[1:])}
    msa = segments.get("MSA", [])
    err = segments.get("ERR", [])

    def at(fields: list[str], n: int, component: int = 0) -> str:
        value = fields[n] if n < len(fields) else ""
        if component:
            parts = value.split(d.component)
            value = parts[component - 1] if component <= len(parts) else ""
        return unescape(value, d)

    # ERR-8 user message, else ERR-3's text (2.5), else MSA-3, else ERR-1's code (2.3/2.4)
    detail = at(err, 8) or at(err, 3, 2) or at(msa, 3) or at(err, 1, 4)
    return at(msa, 1) or "??", at(msa, 2), detail


def iter_chunks(items: list[bytes], n: int) -> Iterator[list[bytes]]:
    """``items`` dealt out to ``n`` senders round-robin (each keeps its own order)."""
    for k in range(n):
        yield items[k::n]
