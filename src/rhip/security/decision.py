"""The outcome of a policy question, with a stable reason the audit log and the error message carry."""

from __future__ import annotations

from dataclasses import dataclass

from rhip.core.errors import Forbidden

# Why access was refused, in words a caller can act on (the audit log keeps the short reason).
EXPLANATIONS = {
    "scope": "the token's scopes do not grant this",
    "role": "this role may not do this",
    "no-relationship": (
        "no care relationship with this resident (encounter, referral or appointment at your institution "
        "in the care window) and no consent; a clinician may break the glass with a stated reason "
        "(header X-Rhip-Break-Glass)"
    ),
    "consent": "the resident's consent withholds this from your institution",
    "confidential": "the source institution marked this confidential",
    "not-own-data": "an institution changes only what it sent itself",
    "foreign-source": "meta.source names another institution",
    "append-only": "the audit log is append-only: AuditEvents are written by the platform",
    "outside": "resident data outside a Patient compartment is read through the record it belongs to",
    "has": "_has and chained searches through clinical data are for administrators",
    "history": "type- and system-level history is for administrators",
    "district": "the resident is not in your district",
    "own-record": "a resident sees only their own record and their children's",
    "consent-owner": "privacy consents are recorded by the resident (or an administrator), not an institution",
    "identifying": "a statistician counts; a count may not name or single out a resident",
}


@dataclass(frozen=True, slots=True)
class Decision:
    """Allowed or not, and why (``admin``, ``care``, ``consent``, ``break-glass``, ``own-source`` … or a
    refusal reason from :data:`EXPLANATIONS`)."""

    allowed: bool
    reason: str
    patient: str | None = None
    glass: bool = False

    def require(self) -> Decision:
        """This decision, or Forbidden naming the reason."""
        if not self.allowed:
            raise Forbidden(f"Access denied: {EXPLANATIONS.get(self.reason, self.reason)}")
        return self


def allow(reason: str, patient: str | None = None, *, glass: bool = False) -> Decision:
    """An allowing decision."""
    return Decision(True, reason, patient, glass)


def deny(reason: str, patient: str | None = None) -> Decision:
    """A refusing decision."""
    return Decision(False, reason, patient)
