"""医疗卫生机构(科室)注册/更新/查询: PRPM_IN401030UV01, PRPM_IN403010UV01, PRPM_IN406010UV01 → PRPM_IN406110UV01.

Register and update (``registrationRequest/subject1/assignedEntity``, LangZhongGit ``H0301Rt.xml``) become one
conditional update of the Organization by its identifier (``urn:oid:2.16.156.10011.1.5|<code>`` for an
institution; a department under 2.16.156.10011.1.26 keeps that system): ``assignedPrincipalOrganization/name``
is its name, the role's own ``name`` an alias, ``code`` its type, ``asAffiliate/scoper2`` the parent it is
``partOf`` (created on the way when not registered yet), and the ``extension`` items ``uscc``, ``licenceNo``
and ``institutionKind`` its USCC, licence number and kind, as the synthetic region writes them.

The query (``queryByParameterPayload``: ``organizationID/value``, ``organizationName/value``, ``status/value``)
answers each Organization in the register layout under ``registrationEvent``.
"""

from __future__ import annotations

from typing import Any

from rhip.exchange.hl7v3.ack import add_query_ack, query_id_of
from rhip.exchange.hl7v3.context import Accepted, Answered, Context, Inbound, meta
from rhip.exchange.hl7v3.datatypes import address, coding, name_text, oid_system, root_of, telecoms
from rhip.exchange.hl7v3.entries import ORGANIZATION_SYSTEM, registration, subject, upsert_entry
from rhip.exchange.hl7v3.errors import MissingElement, NoQueryParameters
from rhip.exchange.hl7v3.fhir import criteria
from rhip.exchange.hl7v3.person_query import MAX_RESULTS, limit_of, query_element
from rhip.exchange.hl7v3.xmlread import Element, attr, child, children, find, ids, path_of, value
from rhip.exchange.hl7v3.xmlwrite import (
    add,
    add_address,
    add_coded,
    add_ids,
    add_name,
    add_telecom,
    detached,
)

ANSWER = "PRPM_IN406110UV01"
USCC = "urn:rhip:sid:uscc"
LICENCE = "urn:rhip:sid:medical-institution-licence"
KIND = "urn:rhip:cs:institution-kind"
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
_GOVERNMENT_KINDS = ("commission", "cdc")  # the region's 卫健委 and 疾控中心 are government bodies
_INACTIVE = ("terminated", "nullified", "obsolete", "cancelled", "suspended")


def _identity(element: Element | None, where: str) -> tuple[str, str]:
    """(system, code) of an organization id: the institution root first, else the first identifier."""
    found = ids(element)
    chosen = next((i for i in found if i.root == root_of(ORGANIZATION_SYSTEM) and i.extension), None)
    chosen = chosen or next((i for i in found if i.root and i.extension), None)
    if chosen is None:
        raise MissingElement(
            f"{where} needs an organization id (item root 2.16.156.10011.1.5)", location=where
        )
    return oid_system(chosen.root), chosen.extension


def _extension_items(reg: Element | None) -> dict[str, tuple[str, str]]:
    """The ``extension/item`` attributes: code -> (value, displayName)."""
    items = (
        children(child(reg, "extension"), "item")
        if reg is not None and child(reg, "extension") is not None
        else []
    )
    return {attr(i, "code"): (attr(i, "value"), attr(i, "displayName")) for i in items if attr(i, "code")}


def organization_resource(
    ctx: Context, entity: Element, reg: Element | None
) -> tuple[dict[str, Any], tuple[str, str]]:
    """The FHIR Organization of an ``assignedEntity`` and the (system, code) it is upserted by."""
    system, code = _identity(child(entity, "id"), f"{path_of(entity)}/id")
    principal = child(entity, "assignedPrincipalOrganization")
    extension = _extension_items(reg)
    identifiers = [
        {"system": ident_system, "value": extension[key][0]}
        for key, ident_system in (("uscc", USCC), ("licenceNo", LICENCE))
        if extension.get(key, ("", ""))[0]
    ]
    identifiers.append({"system": system, "value": code})
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "identifier": identifiers,
        "active": attr(child(entity, "statusCode"), "code") not in _INACTIVE,
    }
    types = []
    kind, kind_display = extension.get("institutionKind", ("", ""))
    if kind:
        types.append(
            {"coding": [{"system": ORG_TYPE, "code": "govt" if kind in _GOVERNMENT_KINDS else "prov"}]}
        )
        kind_coding = {"system": KIND, "code": kind, **({"display": kind_display} if kind_display else {})}
        types.append({"coding": [kind_coding]})
    role_type = coding(child(entity, "code"))
    if role_type:
        types.append({"coding": [role_type]})
    if types:
        resource["type"] = types
    name = name_text(child(principal, "name")) if principal is not None else ""
    alias = name_text(child(entity, "name"))
    if name or alias:
        resource["name"] = name or alias
    if alias and name and alias != name:
        resource["alias"] = [alias]
    phones = telecoms(child(entity, "telecom"), mobile_default=False)
    if phones:
        resource["telecom"] = phones
    where = address(child(entity, "addr"))
    if where:
        resource["address"] = [where]
    return resource, (system, code)


def record_organization(ctx: Context, inbound: Inbound) -> Accepted:
    """Register or revise one organization (an institution or a department)."""
    entity = subject(inbound.act, "assignedEntity")
    reg = registration(inbound.act)
    resource, (system, code) = organization_resource(ctx, entity, reg)
    # An institution speaks for itself; a department for the institution sending it.
    speaker = code if system == ORGANIZATION_SYSTEM else ctx.institution(inbound, required=False) or code
    resource["meta"] = meta(ctx, speaker)
    entries = []
    parent = find(entity, "assignedPrincipalOrganization/asAffiliate/scoper2")
    if parent is not None and ids(child(parent, "id")):
        parent_system, parent_code = _identity(child(parent, "id"), f"{path_of(parent)}/id")
        parent_url = ctx.uuid_url()
        parent_resource: dict[str, Any] = {
            "resourceType": "Organization",
            "meta": resource["meta"],
            "identifier": [{"system": parent_system, "value": parent_code}],
            "active": True,
        }
        parent_name = name_text(child(parent, "name"))
        if parent_name:
            parent_resource["name"] = parent_name
        request = {
            "method": "POST",
            "url": "Organization",
            "ifNoneExist": criteria(identifier=f"{parent_system}|{parent_code}"),
        }
        entries.append({"fullUrl": parent_url, "resource": parent_resource, "request": request})
        resource["partOf"] = {"reference": parent_url}
    entries.append(upsert_entry(ctx.uuid_url(), resource, identifier=f"{system}|{code}"))
    ctx.fhir.transaction(entries)
    return Accepted()


def _code_of(org: dict[str, Any]) -> tuple[str, str]:
    """(root, code) an Organization is known by in v3."""
    idents = org.get("identifier", ())
    found = next((i for i in idents if i.get("system") == ORGANIZATION_SYSTEM), None)
    found = found or next((i for i in idents if str(i.get("system", "")).startswith("urn:oid:")), None)
    return (root_of(str(found["system"])), str(found["value"])) if found else ("", "")


def add_organization(parent: Element, org: dict[str, Any], parent_org: dict[str, Any] | None) -> Element:
    """An organization in the register layout (``assignedEntity``) from a FHIR Organization."""
    entity = add(parent, "assignedEntity", classCode="ASSIGNED")
    root, code = _code_of(org)
    add_ids(entity, [{"root": root, "extension": code}] if code else [])
    kind = next(
        (
            c
            for t in org.get("type", ())
            for c in t.get("coding", ())
            if c.get("system") not in (ORG_TYPE, KIND)
        ),
        None,
    )
    add_coded(entity, "code", kind)
    add_name(entity, (org.get("alias") or [None])[0])
    add_address(entity, org.get("address", ()), "DSET_AD")
    add_telecom(entity, org.get("telecom", ()))
    add(entity, "statusCode", code="active" if org.get("active", True) else "terminated")
    principal = add(entity, "assignedPrincipalOrganization", classCode="ORG", determinerCode="INSTANCE")
    add_name(principal, org.get("name"))
    if parent_org is not None:
        scoper = add(
            add(principal, "asAffiliate", classCode="AFFL"),
            "scoper2",
            classCode="ORG",
            determinerCode="INSTANCE",
        )
        parent_root, parent_code = _code_of(parent_org)
        add_ids(scoper, [{"root": parent_root, "extension": parent_code}] if parent_code else [])
        add_name(scoper, parent_org.get("name"))
    return entity


def _extension_of(org: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for system, code in ((USCC, "uscc"), (LICENCE, "licenceNo")):
        found = next((i for i in org.get("identifier", ()) if i.get("system") == system), None)
        if found:
            out.append({"code": code, "value": str(found["value"])})
    kind = next(
        (c for t in org.get("type", ()) for c in t.get("coding", ()) if c.get("system") == KIND), None
    )
    if kind:
        out.append(
            {
                "code": "institutionKind",
                "value": str(kind["code"]),
                "displayName": str(kind.get("display", "")),
            }
        )
    return out


def query_organizations(ctx: Context, inbound: Inbound) -> Answered:
    """Answer an organization query by id, name and status."""
    query = query_element(inbound.act)
    params: list[tuple[str, str]] = []
    for ii in [i for e in children(query, "organizationID") for v in children(e, "value") for i in ids(v)]:
        if ii.extension:
            params.append(
                ("identifier", f"{oid_system(ii.root)}|{ii.extension}" if ii.root else ii.extension)
            )
    name = name_text(find(query, "organizationName/value"))
    if name:
        params.append(("name", name))
    if not params:
        where = path_of(query)
        raise NoQueryParameters(
            f"{where}: an organization query needs organizationID or organizationName", location=where
        )
    status = value(find(query, "status/value"), attribute="code")
    if status:
        params.append(("active", "true" if status == "active" else "false"))
    limit = limit_of(query)
    found = ctx.fhir.search("Organization", params, count=MAX_RESULTS)
    act = detached("controlActProcess", classCode="CACT", moodCode="EVN")
    parents: dict[str, dict[str, Any] | None] = {}
    for org in found[:limit]:
        event = add(
            add(act, "subject", typeCode="SUBJ"), "registrationEvent", classCode="REG", moodCode="EVN"
        )
        add(event, "statusCode", code="active")
        ref = str((org.get("partOf") or {}).get("reference", ""))
        if ref.startswith("Organization/") and ref not in parents:
            parents[ref] = ctx.fhir.read("Organization", ref.split("/", 1)[1])
        add_organization(add(event, "subject1", typeCode="SBJ"), org, parents.get(ref))
        items = _extension_of(org)
        if items:
            extension = add(event, "extension")
            for item in items:
                add(extension, "item", item)
    add_query_ack(act, query_id_of(query), min(len(found), limit), len(found))
    return Answered(ANSWER, act)
