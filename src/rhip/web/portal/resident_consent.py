"""Consent settings (授权设置): which sensitive categories and which institutions may see the record.

The settings live in one FHIR Consent of the resident (scope ``patient-privacy``), in the shape
:mod:`rhip.security.consent` reads: a top-level ``permit`` (share under the platform's rules) with nested
``deny`` provisions, one naming the withheld categories (``securityLabel``) and one naming the institutions
that may not see the record at all (``actor`` Organizations). It is written through the FHIR door as the
resident, so the policy checks that the record is theirs and the change is audited.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rhip.security.consent import PRIVACY_SCOPE, is_privacy_consent, rules_of
from rhip.security.labels import Category, sensitivity_table
from rhip.web.portal.core import Portal
from rhip.web.portal.record_shape import local_time, ref_id

SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
CATEGORY = {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
POLICY = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}
RECIPIENT = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP",
            "display": "information recipient",
        }
    ]
}
ENCOUNTER_COUNT = 500  # encounters read to find the institutions that hold the resident's data


@dataclass(frozen=True)
class Settings:
    """What the resident has said: the consent's id (None: never saved) and what it denies."""

    consent_id: str | None
    categories: frozenset[str]
    institutions: frozenset[str]
    version: str | None = None
    updated: str = ""


def categories() -> tuple[Category, ...]:
    """The sensitivity categories the platform labels data with (the ones a consent can hold back)."""
    return sensitivity_table().categories


def current(portal: Portal, patient: str) -> Settings:
    """The resident's settings, read back from their active privacy Consent (call inside ``run``)."""
    found = portal.search("Consent", patient=f"Patient/{patient}", status="active", _count=50)
    mine = [c for c in found if is_privacy_consent(c) and ref_id(c.get("patient")) == patient]
    if not mine:
        return Settings(None, frozenset(), frozenset())
    consent = max(mine, key=lambda c: str((c.get("meta") or {}).get("lastUpdated", "")))
    labels: set[str] = set()
    orgs: set[str] = set()
    for rule in rules_of(consent):
        if rule.effect != "deny":
            continue
        if rule.labels and not rule.organizations:
            labels |= rule.labels
        elif rule.organizations and not rule.labels:
            orgs |= rule.organizations
    meta = consent.get("meta") or {}
    return Settings(
        str(consent.get("id")),
        frozenset(labels),
        frozenset(orgs),
        str(meta.get("versionId") or "") or None,
        local_time(meta.get("lastUpdated")),
    )


def consent_resource(
    patient: str, deny_categories: Iterable[str], deny_organizations: Iterable[str], consent_id: str | None
) -> dict[str, Any]:
    """The Consent that says: share under the platform's rules, except these categories and institutions."""
    table = sensitivity_table()
    known = {c.code for c in table.categories}
    labels = sorted(set(deny_categories) & known)
    orgs = sorted(set(deny_organizations))
    nested: list[dict[str, Any]] = []
    if labels:
        nested.append(
            {"type": "deny", "securityLabel": [{"system": table.label_system, "code": c} for c in labels]}
        )
    if orgs:
        nested.append(
            {
                "type": "deny",
                "actor": [{"role": RECIPIENT, "reference": {"reference": f"Organization/{o}"}} for o in orgs],
            }
        )
    provision: dict[str, Any] = {"type": "permit"}
    if nested:
        provision["provision"] = nested
    consent: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": PRIVACY_SCOPE}]},
        "category": [{"coding": [CATEGORY]}],
        "patient": {"reference": f"Patient/{patient}"},
        "dateTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "policyRule": {"coding": [POLICY]},
        "provision": provision,
    }
    if consent_id:
        consent["id"] = consent_id
    return consent


def save(
    portal: Portal, patient: str, deny_categories: Iterable[str], deny_organizations: Iterable[str]
) -> Settings:
    """Create or update the resident's Consent (call inside ``run``); the settings as stored."""
    before = current(portal, patient)
    body = consent_resource(patient, deny_categories, deny_organizations, before.consent_id)
    if before.consent_id:
        portal.fhir("PUT", f"Consent/{before.consent_id}", body=body)
    else:
        portal.fhir("POST", "Consent", body=body)
    return current(portal, patient)


def institutions(portal: Portal, records: Iterable[str], also: Iterable[str] = ()) -> list[dict[str, str]]:
    """The institutions that hold the person's data (their encounters' providers and the institutions
    managing their records), with ``also`` (those already denied); by name (call inside ``run``)."""
    refs = ",".join(f"Patient/{r}" for r in records)
    ids: set[str] = set(also)
    if refs:
        encounters = portal.search(
            "Encounter", patient=refs, _elements="serviceProvider", _count=ENCOUNTER_COUNT
        )
        ids |= {ref_id(e.get("serviceProvider")) for e in encounters}
        patients = portal.search("Patient", _id=",".join(records), _elements="managingOrganization")
        ids |= {ref_id(p.get("managingOrganization")) for p in patients}
    ids.discard("")
    if not ids:
        return []
    orgs = portal.search("Organization", _id=",".join(sorted(ids)), _elements="name", _count=len(ids))
    names = {str(o.get("id")): str(o.get("name") or o.get("id")) for o in orgs}
    return sorted(
        ({"id": i, "name": names.get(i, i)} for i in ids), key=lambda o: (o["name"] == o["id"], o["name"])
    )


def chosen(form: Mapping[str, Any], name: str) -> list[str]:
    """The values of a form's checkboxes (a multi-valued field)."""
    getlist = getattr(form, "getlist", None)
    values = getlist(name) if callable(getlist) else [form.get(name)]
    return [str(v) for v in values if v]
