"""The rejects store: nothing a sender gave is lost, even when it was refused.

Every refused HL7 v2 message, HL7 v3 request and CDA document is kept with its raw bytes, sender, control
id, reason and the answer the sender got. ``rhip exchange errors`` lists them, ``rhip exchange replay ID``
runs one through its door again after a fix; a retransmission of a refused message gets the same answer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from rhip.core.errors import InvalidRequest, ResourceNotFound
from rhip.db.engine import Database
from rhip.exchange.rejects import repository as sql

CHANNELS = frozenset({"mllp", "hl7v3", "cda", "mhd"})
STATUSES = frozenset({"open", "replayed", "dismissed"})
MAX_REASON = 4000


@dataclass(frozen=True)
class Rejected:
    """One refused message or document."""

    id: int
    received_us: int
    channel: str
    sender: str
    application: str
    control_id: str
    content_type: str
    reason_code: str
    reason: str
    raw: bytes
    ack: bytes | None
    status: str
    note: str
    resolved_us: int | None


def _now_us() -> int:
    return time.time_ns() // 1000


class RejectStore:
    """Keeps refused input with its raw bytes until someone replays or dismisses it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(
        self,
        *,
        channel: str,
        sender: str,
        raw: bytes,
        reason_code: str,
        reason: str,
        control_id: str = "",
        content_type: str = "",
        ack: bytes | None = None,
        application: str = "",
    ) -> int:
        """Keep one refused input; its reject id. Committed before the sender is answered.

        ``application``: the sending system (HL7 v2 MSH-3): a hospital's HIS and LIS number their messages
        each on their own, so a control id is the sender's only together with it.
        """
        if channel not in CHANNELS:
            raise ValueError(f"unknown channel {channel!r}")
        values: dict[str, Any] = {
            "received_us": _now_us(),
            "channel": channel,
            "sender": sender[:128],
            "application": application[:128],
            "control_id": control_id[:128],
            "content_type": content_type[:64],
            "reason_code": reason_code[:32],
            "reason": reason[:MAX_REASON],
            "raw": raw,
            "ack": ack,
            "status": "open",
            "note": "",
            "resolved_us": None,
        }
        with self.db.write() as conn:
            return sql.insert_reject(conn, values)

    def find_ack(self, channel: str, sender: str, control_id: str, application: str = "") -> bytes | None:
        """The answer an open reject of this control id got (a retransmission gets the same)."""
        if not control_id:
            return None
        with self.db.read() as conn:
            return sql.latest_ack(conn, channel, sender[:128], control_id[:128], application[:128])

    def list(
        self,
        *,
        status: str | None = "open",
        channel: str | None = None,
        since_us: int | None = None,
        limit: int = 100,
        with_raw: bool = False,
    ) -> list[Rejected]:
        """Rejects, newest first (without their bytes unless ``with_raw``)."""
        if status is not None and status not in STATUSES:
            raise InvalidRequest(f"unknown status {status!r}: one of {', '.join(sorted(STATUSES))}")
        with self.db.read() as conn:
            rows = sql.select_rejects(
                conn, status=status, channel=channel, since_us=since_us, limit=limit, with_raw=with_raw
            )
        return [_rejected(row._mapping) for row in rows]

    def get(self, reject_id: int) -> Rejected:
        """One reject with its raw bytes; raises ResourceNotFound."""
        with self.db.read() as conn:
            row = sql.select_reject(conn, reject_id)
        if row is None:
            raise ResourceNotFound(f"no rejected message or document with id {reject_id}")
        return _rejected(row._mapping)

    def resolve(self, reject_id: int, *, status: str, note: str = "") -> None:
        """Mark a reject replayed (accepted on a later try) or dismissed (by an operator)."""
        if status not in ("replayed", "dismissed"):
            raise InvalidRequest("a reject is resolved as 'replayed' or 'dismissed'")
        with self.db.write() as conn:
            if not sql.update_status(conn, reject_id, status, note[:MAX_REASON], _now_us()):
                raise ResourceNotFound(f"no rejected message or document with id {reject_id}")

    def open_counts(self) -> dict[str, int]:
        """How many rejects are open, per channel (for health pages and metrics)."""
        with self.db.read() as conn:
            return sql.count_open(conn)


def _rejected(m: Any) -> Rejected:
    return Rejected(
        id=int(m["id"]),
        received_us=int(m["received_us"]),
        channel=m["channel"],
        sender=m["sender"],
        application=m["application"],
        control_id=m["control_id"],
        content_type=m["content_type"],
        reason_code=m["reason_code"],
        reason=m["reason"],
        raw=bytes(m["raw"]) if m.get("raw") is not None else b"",
        ack=bytes(m["ack"]) if m.get("ack") is not None else None,
        status=m["status"],
        note=m["note"],
        resolved_us=m["resolved_us"],
    )
