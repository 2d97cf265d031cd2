"""What the store already holds of a batch's institutions, patients, visits and authors: one search per kind.

A document refers to a known record directly (``Patient/<id>``); only the unknown ones become conditional
creates in the transaction. Besides saving a conditional search per entry, this lets a document find its
patient when the institution has registered that person twice (two Patients with the same ID card: a
conditional create would refuse the whole transaction with "multiple matches"); the lowest id is taken,
and the resident index links the two anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rhip.documents import queries
from rhip.documents import registry as reg
from rhip.documents.facts import PERSON_SYSTEMS, DocumentFacts
from rhip.fhir.rest.service import FhirService

KIND = "urn:rhip:cs:institution-kind"  # the registry's kind of institution (医院, 乡镇卫生院 …)
PatientKey = tuple[str, str, str]  # (institution code, identifier system, value)


@dataclass
class Known:
    """Records found in the store, by the keys documents name them with (values are ``Type/id``)."""

    organizations: dict[str, str] = field(default_factory=dict)  # institution code
    facility_types: dict[str, dict[str, Any]] = field(default_factory=dict)  # institution code -> its kind
    patients: dict[PatientKey, str] = field(default_factory=dict)
    encounters: dict[str, str] = field(default_factory=dict)  # visit identifier token
    visit_patients: dict[str, str] = field(default_factory=dict)  # visit identifier token -> its subject
    practitioners: dict[tuple[str, str], str] = field(default_factory=dict)  # (institution code, staff no)


def patient_keys(facts: DocumentFacts) -> list[PatientKey]:
    """The keys a document's patient may be known by, most specific first."""
    found = reg.patient_criteria(facts)
    if found is None:
        return []
    _, identifiers = found
    ordered = sorted(
        identifiers, key=lambda i: (not i["system"].startswith("urn:rhip:mrn:"), _rank(i["system"]))
    )
    return [(facts.author_org.code, i["system"], i["value"]) for i in ordered]


def _rank(system: str) -> int:
    return PERSON_SYSTEMS.index(system) if system in PERSON_SYSTEMS else -1


def lookup(fhir: FhirService, facts: Iterable[DocumentFacts], visits: Iterable[str]) -> Known:
    """Search the store for the records a batch names (``visits``: visit identifier tokens)."""
    facts = list(facts)
    known = Known()
    codes = sorted({f.author_org.code for f in facts} | {f.custodian.code for f in facts if f.custodian.code})
    org_ids: dict[str, str] = {}  # Organization id -> institution code
    for r in _search(
        fhir, "Organization", "identifier", [f"{reg.ORGANIZATION_SYSTEM}|{reg.escape(c)}" for c in codes]
    ):
        for ident in r.get("identifier", ()):
            if ident.get("system") == reg.ORGANIZATION_SYSTEM and ident.get("value") in codes:
                org_ids[r["id"]] = ident["value"]
                _keep(known.organizations, ident["value"], f"Organization/{r['id']}")
                kinds = [c for t in r.get("type", ()) for c in t.get("coding", ()) if c.get("system") == KIND]
                if kinds:
                    known.facility_types.setdefault(ident["value"], {"coding": kinds[:1]})
    if not org_ids:
        return known  # no institution of the batch is registered: none of its patients, visits or staff is
    wanted = {k for f in facts for k in patient_keys(f)}
    tokens = sorted({reg.token({"system": s, "value": v}) for _, s, v in wanted})
    for r in _search(fhir, "Patient", "identifier", tokens):
        code = org_ids.get(
            str(r.get("managingOrganization", {}).get("reference", "")).removeprefix("Organization/")
        )
        for ident in r.get("identifier", ()):
            key = (code or "", str(ident.get("system", "")), str(ident.get("value", "")))
            if key in wanted:
                _keep(known.patients, key, f"Patient/{r['id']}")
    wanted_visits = set(visits)
    for r in _search(fhir, "Encounter", "identifier", sorted(wanted_visits)):
        for ident in r.get("identifier", ()):
            token = reg.token(ident) if "system" in ident and "value" in ident else ""
            subject = str(r.get("subject", {}).get("reference", ""))
            if token and token in wanted_visits:
                _keep(known.encounters, token, f"Encounter/{r['id']}")
                if subject.startswith("Patient/"):
                    _keep(known.visit_patients, token, subject)
    staff = sorted({f.author.staff_no for f in facts if f.author and f.author.staff_no})
    if staff:
        _practitioners(fhir, known, org_ids, staff)
    return known


def _practitioners(fhir: FhirService, known: Known, org_ids: dict[str, str], staff: list[str]) -> None:
    params = [
        ("organization", ",".join(f"Organization/{i}" for i in sorted(org_ids))),
        ("practitioner.identifier", ",".join(f"{reg.STAFF_SYSTEM}|{reg.escape(s)}" for s in staff)),
        ("_include", "PractitionerRole:practitioner"),
        ("_count", str(queries.MAX_MATCHES)),
    ]
    bundle = queries.get(fhir, "PractitionerRole", params)
    practitioners = {
        e["resource"]["id"]: e["resource"]
        for e in bundle.get("entry", ())
        if e.get("resource", {}).get("resourceType") == "Practitioner"
    }
    for role in queries.matches(bundle):
        code = org_ids.get(
            str(role.get("organization", {}).get("reference", "")).removeprefix("Organization/")
        )
        pid = str(role.get("practitioner", {}).get("reference", "")).removeprefix("Practitioner/")
        for ident in practitioners.get(pid, {}).get("identifier", ()):
            if code and ident.get("system") == reg.STAFF_SYSTEM:
                _keep(known.practitioners, (code, str(ident.get("value"))), f"Practitioner/{pid}")


def _search(fhir: FhirService, rtype: str, param: str, values: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(values), queries.TOKENS_PER_SEARCH):
        chunk = values[start : start + queries.TOKENS_PER_SEARCH]
        params = [(param, ",".join(chunk)), ("_count", str(queries.MAX_MATCHES))]
        out += queries.matches(queries.get(fhir, rtype, params))
    return out


def _keep(found: dict[Any, str], key: Any, ref: str) -> None:
    """Several records for one key (registered twice): the lowest id, so every document picks the same."""
    if key not in found or ref < found[key]:
        found[key] = ref
