"""个人信息注册/更新/合并: PRPA_IN201311UV02, PRPA_IN201314UV02 and PRPA_IN201304UV02.

Register and update carry the whole person and both become one conditional update of the institution's
source Patient (``PUT Patient?identifier=urn:rhip:mrn:<institution>|<local id>``): a register of a known
record revises it, an update of an unknown one creates it, so the order in which a sender's messages
arrive does not matter. The institution's Organization is created on the way if it is not registered yet.
The master patient index links the Patient by itself, as it does for FHIR and v2 Patients.

A merge (``registrationEvent`` with ``replacementOf/priorRegistration``) marks the obsolete local record
inactive with ``link`` replaced-by the surviving one in one transaction, then tells the master patient
index through the :class:`~rhip.exchange.ports.PatientMerger` port. Nothing is deleted.
"""

from __future__ import annotations

import logging
from typing import Any

from rhip.exchange.hl7v3.context import Accepted, Context, Inbound, first, meta
from rhip.exchange.hl7v3.datatypes import MRN_PREFIX, name_text
from rhip.exchange.hl7v3.entries import institution_entry, registration, subject, upsert_entry
from rhip.exchange.hl7v3.errors import BadValue, RecordNotFound, StoreRefused
from rhip.exchange.hl7v3.person_map import local_patient_id, patient_resource
from rhip.exchange.hl7v3.xmlread import Element, child, find, path_of

log = logging.getLogger("rhip.exchange.hl7v3")
_RETRIES = 3


def _institution_of(ctx: Context, inbound: Inbound, patient: Element) -> str:
    provider = child(patient, "providerOrganization")
    reg = registration(inbound.act)
    return ctx.institution(
        inbound,
        child(patient, "id"),
        find(provider, "id"),
        first(
            reg,
            "custodian/assignedEntity/representedOrganization/id",
            "author/assignedEntity/representedOrganization/id",
        ),
    )


def record_person(ctx: Context, inbound: Inbound) -> Accepted:
    """Register or revise one person as known at the sending institution."""
    patient = subject(inbound.act, "patient")
    institution = _institution_of(ctx, inbound, patient)
    local_id = local_patient_id(patient)
    provider = child(patient, "providerOrganization")
    org_url, org_entry = institution_entry(ctx, institution, name_text(child(provider, "name")))
    resource = patient_resource(patient, institution, local_id, ctx.zone, org_url)
    resource["meta"] = meta(ctx, institution)
    system = f"{MRN_PREFIX}{institution}"
    ctx.fhir.transaction(
        [org_entry, upsert_entry(ctx.uuid_url(), resource, identifier=f"{system}|{local_id}")]
    )
    log.info("v3 person stored: institution %s, interaction %s", institution, inbound.header.interaction)
    return Accepted()


def _find_patient(ctx: Context, system: str, local_id: str) -> dict[str, Any] | None:
    found = ctx.fhir.search("Patient", [("identifier", f"{system}|{local_id}")], count=2)
    return found[0] if found else None


def merge_persons(ctx: Context, inbound: Inbound) -> Accepted:
    """Merge the obsolete local record into the surviving one, then tell the master patient index."""
    act = inbound.act
    surviving_role = subject(act, "patient")
    reg = registration(act)
    obsolete_role = find(reg, "replacementOf/priorRegistration/subject1/priorRegisteredRole")
    if obsolete_role is None:
        where = f"{path_of(reg) if reg is not None else path_of(act)}/replacementOf/priorRegistration/subject1/priorRegisteredRole"
        raise RecordNotFound(f"{where} (the record merged away) is required", location=where)
    institution = _institution_of(ctx, inbound, surviving_role)
    obsolete_institution = ctx.institution(inbound, child(obsolete_role, "id"), required=False) or institution
    surviving_id, obsolete_id = local_patient_id(surviving_role), local_patient_id(obsolete_role)
    surviving_key = (f"{MRN_PREFIX}{institution}", surviving_id)
    obsolete_key = (f"{MRN_PREFIX}{obsolete_institution}", obsolete_id)
    if surviving_key == obsolete_key:
        raise BadValue("the surviving and the obsolete record are the same", location=path_of(obsolete_role))
    for attempt in range(_RETRIES):
        try:
            surviving, obsolete = _merge_once(
                ctx, surviving_role, institution, surviving_key, obsolete_key, f"{path_of(obsolete_role)}/id"
            )
            break
        except StoreRefused as error:
            if "RHIP-FHIR-0005" not in error.message or attempt == _RETRIES - 1:
                raise  # not a lost race on the obsolete record's version
    if ctx.merger is not None:
        ctx.merger.merge(surviving, obsolete, actor=f"v3:{institution}")
    log.info("v3 merge stored: institution %s", institution)
    return Accepted()


def _merge_once(
    ctx: Context,
    surviving_role: Element,
    institution: str,
    surviving_key: tuple[str, str],
    obsolete_key: tuple[str, str],
    obsolete_where: str,
) -> tuple[str, str]:
    """One attempt: (surviving Patient id, obsolete Patient id) once the transaction committed."""
    obsolete = _find_patient(ctx, *obsolete_key)
    if obsolete is None:
        raise RecordNotFound(
            f"{obsolete_where}: no record with this local patient id at institution "
            f"{obsolete_key[0].removeprefix(MRN_PREFIX)} to merge away",
            location=obsolete_where,
        )
    surviving = _find_patient(ctx, *surviving_key)
    entries = []
    if surviving is None:
        # The surviving record is new to the platform: register it from what the merge says about it.
        org_url, org_entry = institution_entry(ctx, institution)
        surviving_url = ctx.uuid_url()
        resource = (
            patient_resource(surviving_role, institution, surviving_key[1], ctx.zone, org_url)
            if child(surviving_role, "patientPerson") is not None
            else {
                "resourceType": "Patient",
                "identifier": [{"system": surviving_key[0], "value": surviving_key[1]}],
                "active": True,
                "managingOrganization": {"reference": org_url},
            }
        )
        resource["meta"] = meta(ctx, institution)
        entries += [org_entry, upsert_entry(surviving_url, resource, identifier="|".join(surviving_key))]
        surviving_ref = surviving_url
    else:
        surviving_ref = f"Patient/{surviving['id']}"
    if obsolete["id"] == (surviving or {}).get("id"):
        raise BadValue(
            "the surviving and the obsolete record are the same Patient", location=path_of(surviving_role)
        )
    changed = {k: v for k, v in obsolete.items() if k != "meta"}
    changed["meta"] = meta(ctx, institution)
    changed["active"] = False
    links = [link for link in changed.get("link", []) if link.get("type") != "replaced-by"]
    changed["link"] = [*links, {"other": {"reference": surviving_ref}, "type": "replaced-by"}]
    version = (obsolete.get("meta") or {}).get("versionId")
    request: dict[str, Any] = {"method": "PUT", "url": f"Patient/{obsolete['id']}"}
    if version:
        request["ifMatch"] = f'W/"{version}"'
    entries.append({"fullUrl": ctx.uuid_url(), "resource": changed, "request": request})
    locations = ctx.fhir.transaction(entries)
    surviving_id = surviving["id"] if surviving is not None else locations[1].split("/")[1]
    return surviving_id, str(obsolete["id"])
