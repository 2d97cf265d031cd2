"""Replaying what the exchange doors refused, after a fix: one function for ``rhip exchange replay`` and the
portal's exchange-error page.

A replay runs the kept bytes through their door again as the current principal (the operator: the
command line's process principal, or the signed-in administrator), so the writes it makes pass the
security layer and are audited like the original would have been. An accepted replay marks the reject
``replayed`` with ``note``; a refusal leaves it open (the doors answer as they answered the sender).

A reject is claimed before it runs (an update that only succeeds while it is still open), so a double
click or two operators at once replay it once: the second finds it no longer open.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import update

from rhip.bootstrap.container import Platform
from rhip.exchange.rejects import MAX_REASON, Rejected, RejectStore
from rhip.exchange.rejects.tables import exchange_reject
from rhip.fhir.rest.messages import FhirRequest

# Reasons of who sent something: replayed by an operator it would be stored in the name of an institution
# the sender may not speak for (the HL7 v2 door's NotAuthorised, and every security refusal).
SENDER_REFUSALS = ("RHIP-V2-0061",)
SECURITY_PREFIX = "RHIP-SEC-"
CLAIM_NOTE = "replay in progress: "


@dataclass(frozen=True)
class ReplayResult:
    """How a replay went: ``accepted`` (the reject is now replayed), or refused again, and why."""

    reject_id: int
    accepted: bool
    detail: str


class ReplayNotAllowed(Exception):
    """This reject cannot be replayed (no longer open, or refused because of its sender)."""

    def __init__(self, reject_id: int, reason: str) -> None:
        super().__init__(reason)
        self.reject_id, self.reason = reject_id, reason


def rejects_of(platform: Platform) -> RejectStore:
    """The platform's rejects store."""
    return platform.exchange.rejects if platform.exchange is not None else RejectStore(platform.db)


def replayable(reject: Rejected) -> str | None:
    """Why ``reject`` cannot be replayed, or None when it can."""
    if reject.status != "open":
        return f"reject {reject.id} is {reject.status}, not open"
    code = reject.reason_code.upper()
    # A door may wrap a security refusal in a code of its own (the v3 door's StoreRefused did): the
    # security code anywhere in the reason counts as much as in the code.
    if (
        code.startswith(SECURITY_PREFIX)
        or code in SENDER_REFUSALS
        or SECURITY_PREFIX in reject.reason.upper()
    ):
        return (
            f"reject {reject.id} was refused because of its sender ({reject.reason_code}); it cannot be"
            " replayed: the institution resends it over its own authorised connection"
        )
    return None


def replay_reject(platform: Platform, reject_id: int, note: str) -> ReplayResult:
    """Run reject ``reject_id`` through its door again as the current principal.

    Raises :class:`ReplayNotAllowed` when it may not be replayed, ResourceNotFound when there is no such
    reject, and the doors' own errors (RhipError) as they come.
    """
    store = rejects_of(platform)
    reject = store.get(reject_id)
    why = replayable(reject)
    if why is not None:
        raise ReplayNotAllowed(reject_id, why)
    if not _claim(store, reject, note):
        # another replay or a dismissal got there between the read and now
        raise ReplayNotAllowed(reject_id, f"reject {reject_id} is {store.get(reject_id).status}, not open")
    accepted = False
    try:
        accepted, detail = _REPLAYERS[reject.channel](platform, store, reject, note)
    finally:
        if not accepted:
            _release(store, reject)
    return ReplayResult(reject_id, accepted, detail)


def _claim(store: RejectStore, reject: Rejected, note: str, *, status: str = "replayed") -> bool:
    """Mark ``reject`` ``status`` if and only if it is still open (one row changed): whoever claims it first
    replays (or dismisses) it. A replayer's resolve then writes the final note; :func:`_release` undoes the
    claim of a replay that was refused or failed."""
    t = exchange_reject
    if status == "replayed":
        note = CLAIM_NOTE + note
    with store.db.write() as conn:
        result = conn.execute(
            update(t)
            .where(t.c.id == reject.id, t.c.status == "open")
            .values(status=status, note=note[:MAX_REASON], resolved_us=time.time_ns() // 1000)
        )
        return int(result.rowcount) == 1


def _release(store: RejectStore, reject: Rejected) -> None:
    """Open a claimed reject again as it was (its replay was refused or failed)."""
    t = exchange_reject
    with store.db.write() as conn:
        conn.execute(
            update(t)
            .where(t.c.id == reject.id, t.c.status == "replayed")
            .values(status="open", note=reject.note, resolved_us=reject.resolved_us)
        )


def dismiss_reject(platform: Platform, reject_id: int, note: str) -> None:
    """Close an open reject without replaying it (an operator judged it needs nothing more)."""
    store = rejects_of(platform)
    reject = store.get(reject_id)
    if reject.status != "open" or not _claim(store, reject, note, status="dismissed"):
        raise ReplayNotAllowed(reject_id, f"reject {reject_id} is {store.get(reject_id).status}, not open")


def _resolver(store: RejectStore, note: str) -> Callable[[int], None]:
    return lambda i: store.resolve(i, status="replayed", note=note)


def _replay_v2(platform: Platform, store: RejectStore, reject: Rejected, note: str) -> tuple[bool, str]:
    """An HL7 v2 message through the v2 pipeline (with the platform's master patient index for merges)."""
    if platform.exchange is None:
        return False, "the platform was built without its exchange doors"
    answer = platform.exchange.v2.replay(reject, _resolver(store, note))
    if answer.code == "AA":
        return True, "AA"
    return False, f"{answer.code} {answer.error_code}: {answer.reason}"


def _replay_v3(platform: Platform, store: RejectStore, reject: Rejected, note: str) -> tuple[bool, str]:
    """An HL7 v3 request through the v3 door."""
    if platform.exchange is None:
        return False, "the platform was built without its exchange doors"
    answer = platform.exchange.hl7v3.replay(reject.raw, reject.content_type)
    if answer.ack_code == "AA":
        _resolver(store, note)(reject.id)
        return True, "AA"
    return False, f"{answer.ack_code} {answer.error_code}".strip()


def _replay_document(platform: Platform, store: RejectStore, reject: Rejected, note: str) -> tuple[bool, str]:
    """A CDA document through the document registry (a refusal is kept again as a new reject)."""
    if platform.exchange is None:
        return False, "the platform was built without its exchange doors"
    receipt = platform.exchange.documents.submit(reject.raw, sender=reject.sender, channel=reject.channel)
    _resolver(store, note)(reject.id)
    return True, f"DocumentReference/{receipt.document_reference_id}"


def _replay_bundle(platform: Platform, store: RejectStore, reject: Rejected, note: str) -> tuple[bool, str]:
    """A Provide Document Bundle (MHD) posted again to the FHIR API (its hook checks it again)."""
    answer = platform.fhir.handle(
        FhirRequest("POST", "", body=reject.raw, headers={"content-type": "application/fhir+json"})
    )
    if answer.status < 300:
        _resolver(store, note)(reject.id)
        return True, f"HTTP {answer.status}"
    return False, f"HTTP {answer.status}: {(answer.body or b'')[:300].decode('utf-8', 'replace')}"


_REPLAYERS = {"mllp": _replay_v2, "hl7v3": _replay_v3, "cda": _replay_document, "mhd": _replay_bundle}
