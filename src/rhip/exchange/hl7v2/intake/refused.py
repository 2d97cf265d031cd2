"""Which control ids were refused before, without a query per message.

A retransmission of a refused message gets the answer it got (the rejects store keeps it). Asking the
store for every message costs a query each; instead this keeps the set of open MLLP rejects' (sender,
application, control id) in memory and reloads it only when the store's open rejects change: their count and the
newest one's id say so (a new reject is always the newest; a resolved one lowers the count), two small
queries a batch. Only a message whose key is in the set is looked up for its stored answer.
"""

from __future__ import annotations

from typing import Protocol

from rhip.exchange.rejects import Rejected

CHANNEL = "mllp"
RELOAD_LIMIT = 1_000_000


class OpenRejects(Protocol):
    """What this needs of ``rhip.exchange.rejects.RejectStore``."""

    def find_ack(self, channel: str, sender: str, control_id: str, application: str = "") -> bytes | None:
        """The answer an open reject of this control id got."""

    def list(
        self,
        *,
        status: str | None = "open",
        channel: str | None = None,
        since_us: int | None = None,
        limit: int = 100,
        with_raw: bool = False,
    ) -> list[Rejected]:
        """Rejects, newest first."""

    def open_counts(self) -> dict[str, int]:
        """Open rejects per channel."""


class RefusedBefore:
    """The (sender, application, control id) keys of the open MLLP rejects, kept in step with the store."""

    def __init__(self, store: OpenRejects) -> None:
        self.store = store
        self._fingerprint: tuple[int, int] | None = None
        self._keys: set[tuple[str, str, str]] = set()

    def refresh(self) -> None:
        """Reload the keys when the open rejects changed since the last look."""
        count = self.store.open_counts().get(CHANNEL, 0)
        newest = self.store.list(status="open", channel=CHANNEL, limit=1)
        fingerprint = (count, newest[0].id if newest else 0)
        if fingerprint == self._fingerprint:
            return
        rows = self.store.list(status="open", channel=CHANNEL, limit=RELOAD_LIMIT) if count else []
        self._keys = {(r.sender, r.application, r.control_id) for r in rows}
        self._fingerprint = fingerprint

    def answer(self, sender: str, application: str, control_id: str) -> bytes | None:
        """The stored answer of a refused message with this sender, application and control id, if any."""
        if (sender[:128], application[:128], control_id[:128]) not in self._keys:
            return None
        return self.store.find_ack(CHANNEL, sender, control_id, application)
