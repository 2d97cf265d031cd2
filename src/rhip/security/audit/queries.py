"""Questions asked of the audit log: entries by patient, user, institution, time, action and outcome, and
"who viewed my record" for residents."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from rhip.core.clock import fhir_instant
from rhip.db.engine import Database
from rhip.fhir.search.values import us_to_datetime
from rhip.security.audit.repository import AuditFilter, AuditRecord, TimeTest, find

VIEWING_ACTIONS = ("R", "E")  # reads, searches and operations such as $everything
PLATFORM_ROLE = "platform"  # the platform's own processes (matching, imports) are not viewers


def audit_filter(
    *,
    patient: str | None = None,
    user: str | None = None,
    institution: str | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    action: str | None = None,
    outcome: str | None = None,
) -> AuditFilter:
    """The filter of :func:`search`'s arguments (``until_us`` exclusive)."""
    flt = AuditFilter()
    if patient:
        flt.patients.append((patient,))
    if user:
        flt.equal.append(("subject", (user,)))
    if institution:
        flt.equal.append(("institution", (institution,)))
    if action:
        flt.equal.append(("action", (action,)))
    if outcome:
        flt.equal.append(("outcome", (outcome,)))
    if since_us is not None:
        flt.times.append((TimeTest("ge", since_us, since_us),))
    if until_us is not None:
        flt.times.append((TimeTest("lt", until_us, until_us),))
    return flt


def search(
    db: Database,
    *,
    patient: str | None = None,
    user: str | None = None,
    institution: str | None = None,
    since_us: int | None = None,
    until_us: int | None = None,
    action: str | None = None,
    outcome: str | None = None,
    limit: int = 100,
    before: int | None = None,
) -> list[AuditRecord]:
    """Entries matching every argument given, newest first (``before``: only entries older than that seq).

    ``user`` is a subject (``user:<name>``, ``client:<id>``, ``platform:<process>``).
    """
    flt = audit_filter(
        patient=patient,
        user=user,
        institution=institution,
        since_us=since_us,
        until_us=until_us,
        action=action,
        outcome=outcome,
    )
    return find(db, flt, limit=limit, before=before)


def viewing(record: AuditRecord) -> dict[str, Any]:
    """What a resident is shown of one access to their record: ids and codes, no AuditEvent."""
    return {
        "recorded": fhir_instant(us_to_datetime(record.recorded_us)),
        "who": record.subject,
        "role": record.role,
        "institution": record.institution,
        "purpose": record.purpose,
        "action": record.action,
        "interaction": record.subtype,
        "patients": list(record.patients),
        "resources": list(record.entities),
        "id": record.id,
    }


def who_viewed(
    db: Database,
    patient_ids: Collection[str],
    *,
    exclude_subjects: Collection[str] = (),
    since_us: int | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The successful reads of these Patients' records, newest first, by anyone but ``exclude_subjects``
    (the resident's own accounts) and the platform's own processes."""
    patients = tuple(p for p in patient_ids if p)
    if not patients:
        return []
    flt = AuditFilter(
        patients=[patients],
        equal=[("action", VIEWING_ACTIONS), ("outcome", ("0",))],
        exclude_subjects=tuple(exclude_subjects),
        exclude_roles=(PLATFORM_ROLE,),
    )
    if since_us is not None:
        flt.times.append((TimeTest("ge", since_us, since_us),))
    return [viewing(r) for r in find(db, flt, limit=limit)]
