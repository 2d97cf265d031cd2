"""Batches of recorded accesses in plain values, and how a batch becomes entries of the log.

The trail takes the accesses it buffered a batch at a time and gives each entry its id at once; the
batch then goes to whoever writes it (the audit appender process, or the trail's own thread), possibly
twice: a batch whose writer failed after receiving it may have been written, so it is sent again with
``retry`` and entries already in the log are skipped (their ids say which).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from rhip.db.audit import AuditRow, audit_row
from rhip.db.engine import Database
from rhip.security.audit.balp import Actor, ResourceRef, actor_of, audit_entry
from rhip.security.audit.repository import append_entries
from rhip.security.principal import Principal

log = logging.getLogger("rhip.audit")

# (id, recorded_us, action, subtype, resources, patients, outcome, query, detail pairs, actor): plain
# tuples, strings and numbers, which pickle fast and pass the appender's class-refusing unpickler.
Wire = tuple[Any, ...]


class Access(NamedTuple):
    """What was recorded of one access, kept until a batch of them is written."""

    principal: Principal
    action: str
    subtype: str
    resources: tuple[ResourceRef, ...]
    patients: tuple[str, ...]
    outcome: str
    query: str | None
    detail: Mapping[str, str] | None
    recorded_us: int


class AppendFailed(Exception):
    """The appender did not write a batch; ``uncertain``: it may have written it before failing."""

    def __init__(self, message: str, *, uncertain: bool) -> None:
        super().__init__(message)
        self.uncertain = uncertain


class BatchAppender(Protocol):
    """Writes batches of accesses to the log somewhere else (rhip.security.audit.appender)."""

    def append(self, batch: Sequence[Wire], *, retry: bool) -> None:
        """Write ``batch`` (skipping entries already logged when ``retry``); raises AppendFailed."""

    def close(self) -> None:
        """Stop; batches are not accepted afterwards."""


def entry_id(recorded_us: int, rand: int) -> str:
    """An entry's id: a UUID of version 7 (RFC 9562), its recording millisecond then 74 random bits.

    Ids in time order land at the end of the log's unique index on ``id``; random ones (version 4)
    would each change a page somewhere inside it, and every such page is written to the WAL again.
    """
    ms = (recorded_us // 1000) & 0xFFFF_FFFF_FFFF
    a, b = (rand >> 62) & 0xFFF, rand & 0x3FFF_FFFF_FFFF_FFFF
    return f"{ms >> 16:08x}-{ms & 0xFFFF:04x}-{0x7000 | a:04x}-{0x8000 | b >> 48:04x}-{b & 0xFFFF_FFFF_FFFF:012x}"


def new_entry_id(recorded_us: int) -> str:
    """A fresh entry id for an entry recorded at ``recorded_us``."""
    return entry_id(recorded_us, int.from_bytes(os.urandom(10), "big"))


def to_wire(accesses: Sequence[Access]) -> list[Wire]:
    """The batch in plain values, each entry with its id (one read of the random source for all)."""
    noise = os.urandom(10 * len(accesses))
    wire: list[Wire] = []
    for k, a in enumerate(accesses):
        rand = int.from_bytes(noise[10 * k : 10 * k + 10], "big")
        wire.append(
            (
                entry_id(a.recorded_us, rand),
                a.recorded_us,
                a.action,
                a.subtype,
                a.resources,
                a.patients,
                a.outcome,
                a.query,
                tuple(a.detail.items()) if a.detail else None,
                tuple(actor_of(a.principal)),
            )
        )
    return wire


def rows_of(batch: Sequence[Wire], *, observer: str, algorithm: str) -> list[AuditRow]:
    """The log rows of a batch (an entry that cannot be built is logged and left out, not the batch)."""
    rows = []
    for w in batch:
        try:
            ident, recorded_us, action, subtype, resources, patients, outcome, query, detail, actor = w
            entry = audit_entry(
                Actor(*actor),
                id=ident,
                recorded_us=recorded_us,
                action=action,
                subtype=subtype,
                resources=[tuple(r) for r in resources],
                patients=patients,
                outcome=outcome,
                query=query,
                detail=dict(detail) if detail else None,
                observer=observer,
                algorithm=algorithm,
            )
            rows.append(audit_row(entry))
        except Exception:  # a bug in building one entry must not hold back every other one
            log.exception("an audit entry could not be built (%s)", w[3] if len(w) > 3 else "?")
    return rows


def write_batch(
    db: Database, batch: Sequence[Wire], *, observer: str, algorithm: str, retry: bool = False
) -> int:
    """Chain a batch onto the log in a transaction of its own; how many entries it added."""
    rows = rows_of(batch, observer=observer, algorithm=algorithm)
    return len(append_entries(db, rows, skip_existing=retry))
