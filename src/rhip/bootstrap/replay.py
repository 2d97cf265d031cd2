"""Replaying what the exchange doors refused, after a fix: one function for ``rhip exchange replay`` and the
portal's exchange-error page.

A replay runs the kept bytes through their door again as the current principal (the operator: the
command line's process principal, or the signed-in administrator), so the writes it makes pass the
security layer and are audited like the original would have been. An accepted replay marks the reject
``replayed`` with ``note``; a refusal leaves it open (the doors answer as they answered the sender).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rhip.bootstrap.container import Platform
from rhip.exchange.rejects import Rejected, RejectStore
from rhip.fhir.rest.messages import FhirRequest

# Reasons of who sent something: replayed by an operator it would be stored in the name of an institution
# the sender may not speak for (the HL7 v2 door's NotAuthorised, and every security refusal).
SENDER_REFUSALS = ("RHIP-V2-0061",)


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
    if reject.reason_code.startswith("RHIP-SEC-") or reject.reason_code in SENDER_REFUSALS:
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
    accepted, detail = _REPLAYERS[reject.channel](platform, store, reject, note)
    return ReplayResult(reject_id, accepted, detail)


def dismiss_reject(platform: Platform, reject_id: int, note: str) -> None:
    """Close an open reject without replaying it (an operator judged it needs nothing more)."""
    store = rejects_of(platform)
    reject = store.get(reject_id)
    if reject.status != "open":
        raise ReplayNotAllowed(reject_id, f"reject {reject_id} is {reject.status}, not open")
    store.resolve(reject_id, status="dismissed", note=note)


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
