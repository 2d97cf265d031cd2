"""The MLLP listener: asyncio, optional TLS, one message at a time per connection.

Each connection reads frames and hands them to the intake one by one, writing each ACK before the next
frame is taken (original acknowledgement mode keeps the sender's order). A frame that is not a message
(cut off, too large) is answered with an AR and the connection stays up. A message the platform could
neither store nor keep in its rejects store (the database is down) gets no ACK: the connection is closed,
so that the sender sends it again. A connection silent for
``idle_timeout_s`` is closed. ``stop()`` stops accepting, closes idle connections at once and lets busy
ones finish the message they are on. With several server processes (``rhip serve --workers``) each binds
the port with ``SO_REUSEPORT`` and the kernel spreads connections over them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from zoneinfo import ZoneInfo

from rhip.exchange.hl7v2.ack import AckError, Header, build_ack
from rhip.exchange.hl7v2.intake.faults import log_fault
from rhip.exchange.hl7v2.intake.messages import Answer, Inbound
from rhip.exchange.mllp.framing import OK, Frame, FrameDecoder, wrap

log = logging.getLogger("rhip.exchange.mllp")
READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class MllpConfig:
    """Where and how the listener listens."""

    host: str = "127.0.0.1"
    port: int = 2575  # 0: any free port (tests)
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    max_message_kb: int = 4096
    idle_timeout_s: float = 600.0
    reuse_port: bool = False
    stop_timeout_s: float = 15.0
    zone: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Sender:
    """Who is on the other end of a connection: a subject for the audit log and the institutions it may
    send for (None: any, a trusted peer; empty: none, every message is refused)."""

    subject: str
    institutions: frozenset[str] | None


# (peer address, SHA-256 of the client certificate or None) -> who sends; may read the database.
Identify = Callable[[str, str | None], Sender]


def anyone(peer: str, _fingerprint: str | None) -> Sender:
    """Every connection may send for any institution (security disabled)."""
    return Sender(f"peer:{peer}", None)


class Intake(Protocol):
    """What the listener hands messages to (``rhip.exchange.hl7v2.intake.batcher.BatchingIntake``)."""

    connections: int

    async def receive(self, item: Inbound) -> Answer:
        """The answer to one message."""


def tls_context(config: MllpConfig) -> ssl.SSLContext | None:
    """The server's TLS context from the certificate and key files, or None for plain TCP."""
    if not config.tls_cert:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(config.tls_cert, config.tls_key or None)
    if config.tls_client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(config.tls_client_ca)
    return context


class MllpServer:
    """An MLLP listener feeding an intake."""

    def __init__(self, config: MllpConfig, intake: Intake, identify: Identify = anyone) -> None:
        self.config = config
        self.intake = intake
        self.identify = identify
        self.zone = ZoneInfo(config.zone)
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], bool] = {}  # task → busy with a message
        self._stopping = False
        self.accepted = 0

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose when configured with 0)."""
        assert self._server is not None and self._server.sockets
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        """Bind and start accepting connections."""
        self._server = await asyncio.start_server(
            self._connection,
            self.config.host,
            self.config.port,
            ssl=tls_context(self.config),
            reuse_port=self.config.reuse_port or None,
            ssl_handshake_timeout=30 if self.config.tls_cert else None,
        )
        log.info("MLLP listening", extra={"port": self.port, "tls": bool(self.config.tls_cert)})

    async def stop(self) -> None:
        """Stop accepting; close idle connections; let busy ones finish their message (up to a timeout)."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task, busy in list(self._connections.items()):
            if not busy:
                task.cancel()
        if self._connections:
            _, late = await asyncio.wait(list(self._connections), timeout=self.config.stop_timeout_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        peername = writer.get_extra_info("peername")
        peer = str(peername[0]) if isinstance(peername, tuple) and peername else ""
        self._connections[task] = False
        self.intake.connections += 1
        self.accepted += 1
        decoder = FrameDecoder(self.config.max_message_kb * 1024)
        fingerprint = _fingerprint(writer)
        try:
            while not self._stopping:
                try:
                    chunk = await asyncio.wait_for(reader.read(READ_SIZE), self.config.idle_timeout_s)
                except TimeoutError:
                    log.info("MLLP connection idle, closed")
                    break
                if not chunk:
                    if decoder.finish() is not None:
                        log.info("MLLP connection closed in the middle of a frame")
                    break
                frames = decoder.feed(chunk)
                if not frames:
                    continue
                self._connections[task] = True
                for frame in frames:
                    # Asked again for every message: a client disabled meanwhile sends nothing more.
                    sender = await asyncio.to_thread(self.identify, peer, fingerprint)
                    answer = await self._answer(frame, peer, sender)
                    if answer.withheld:
                        # Refused and kept nowhere: no ACK, so that the sender sends it (and what
                        # follows it) again on a new connection.
                        log.warning("MLLP message could not be kept; connection closed without an ACK")
                        return
                    writer.write(wrap(answer.ack))
                    await writer.drain()
                    if self._stopping:
                        break  # the sender sends the rest again to the next listener
                self._connections[task] = False
        except asyncio.CancelledError:
            pass
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            log.info("MLLP connection lost", extra={"error": type(exc).__name__})
        except Exception as exc:
            log_fault(log, "MLLP connection failed", exc)
        finally:
            self._connections.pop(task, None)
            self.intake.connections -= 1
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def _answer(self, frame: Frame, peer: str, sender: Sender) -> Answer:
        item = Inbound(
            frame.data,
            peer=peer,
            received=datetime.now(UTC),
            frame_problem="" if frame.kind == OK else frame.kind,
            sender=sender.subject,
            institutions=sender.institutions,
        )
        try:
            return await self.intake.receive(item)
        except Exception:
            # The intake is stopping (or broke): the sender gets a refusal and will send again.
            header = Header.salvage(frame.data.decode("utf-8", "replace"))
            error = AckError(
                "207", "the receiver is stopping; send the message again", rhip_code="RHIP-V2-0056"
            )
            ack = build_ack("AR", header, at=datetime.now(UTC), zone=self.zone, error=error, raw=frame.data)
            return Answer(ack, "AR", header.control_id)


def _fingerprint(writer: asyncio.StreamWriter) -> str | None:
    """SHA-256 (hex) of the client's TLS certificate, when it presented one."""
    tls = writer.get_extra_info("ssl_object")
    der = tls.getpeercert(binary_form=True) if isinstance(tls, ssl.SSLObject) else None
    return hashlib.sha256(der).hexdigest() if der else None


async def start_mllp(config: MllpConfig, intake: Intake, identify: Identify = anyone) -> MllpServer:
    """A started MLLP listener (call ``stop()`` on it at shutdown)."""
    server = MllpServer(config, intake, identify)
    await server.start()
    return server
