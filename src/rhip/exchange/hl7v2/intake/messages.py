"""What goes into the v2 intake and what comes out: a message as it arrived, and its answer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Inbound:
    """One message as it arrived: its bytes, the peer address, and what the framing found wrong with it."""

    raw: bytes
    peer: str = ""
    received: datetime | None = None
    frame_problem: str = ""  # "oversized" | "unterminated" (rhip.exchange.mllp.framing)
    replay: bool = False  # a replay from the rejects store: processed again whatever happened before
    # Who sent it (rhip.security): the authenticated client (``client:<id>``) or peer (``peer:<address>``),
    # and the institution codes it may send for (None: any, a trusted peer; empty: none).
    sender: str = ""
    institutions: frozenset[str] | None = None


@dataclass(frozen=True)
class Answer:
    """The acknowledgement of one message and what the platform did with it."""

    ack: bytes
    code: str  # AA | AE | AR
    control_id: str = ""
    duplicate: bool = False  # a retransmission, answered as before
    reject_id: int | None = None
    error_code: str = ""
    reason: str = ""
    # The message was refused and could not be kept either (the rejects store failed): no ACK may be sent,
    # since an AE or AR would tell the sender the message was dealt with. The MLLP listener closes the
    # connection without answering, so that the sender sends the message again; ``ack`` is an AE saying so
    # for any other caller.
    withheld: bool = False
