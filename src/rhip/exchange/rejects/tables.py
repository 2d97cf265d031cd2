"""The rejects table: every message or document the platform refused, with its raw bytes (migration 0004)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, LargeBinary, String, Table, Text

from rhip.db.metadata import BigKey, metadata

exchange_reject = Table(
    "exchange_reject",
    metadata,
    Column("id", BigKey, primary_key=True, autoincrement=True),
    Column("received_us", BigInteger, nullable=False),
    Column("channel", String(16), nullable=False),  # mllp | hl7v3 | cda | mhd
    Column("sender", String(128), nullable=False),  # institution code, or the peer address when unknown
    Column("application", String(128), nullable=False),  # the sending system (MSH-3); '' when none
    Column("control_id", String(128), nullable=False),  # MSH-10, v3 message id, document id; '' if none
    Column("content_type", String(64), nullable=False),
    Column("reason_code", String(32), nullable=False),  # RHIP-V2-0010 …
    Column("reason", Text, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("ack", LargeBinary, nullable=True),  # the answer the sender got, repeated for a retransmission
    Column("status", String(16), nullable=False),  # open | replayed | dismissed
    Column("note", Text, nullable=False),
    Column("resolved_us", BigInteger, nullable=True),
    Index(None, "channel", "sender", "control_id"),
    Index(None, "status", "id"),
)
