"""医疗卫生人员注册/更新/查询: PRPM_IN301010UV01, PRPM_IN303010UV01, PRPM_IN306010UV01 → PRPM_IN306011UV01.

Register and update (``registrationRequest/subject1/healthCareProvider``, LangZhongGit ``H0401Rt.xml``) give
a Practitioner and a PractitionerRole at the institution. A staff number (工号, root 2.16.156.10011.1.4) is
unique only within its institution, so both are upserted by ``urn:rhip:staff:<institution>|<staff no>``; the
Practitioner also carries the staff number under 2.16.156.10011.1.4 with the institution as assigner (as the
synthetic FHIR has it), the ID number, and the ``certificateNo`` extension item as its licence number. The
``code`` (GB/T 8561 专业技术职务) becomes a qualification, the role's ``telecom`` and ``effectiveTime`` the
PractitionerRole's, the affiliated organization (root 2.16.156.10011.1.5) the role's organization.

The query (``queryByParameterPayload``: ``providerID/value``, ``providerName/value``, ``administrativeGender``,
``dOB`` with ``low``/``high``) answers each Practitioner with its roles in the register layout.
"""

from __future__ import annotations

from typing import Any

from rhip.exchange.hl7v3.ack import add_query_ack, query_id_of
from rhip.exchange.hl7v3.context import Accepted, Answered, Context, Inbound, meta
from rhip.exchange.hl7v3.datatypes import (
    ORGANIZATION_ROOT,
    address,
    birth_date,
    coding,
    fhir_to_ts,
    human_name,
    name_text,
    oid_system,
    root_of,
    telecoms,
    ts_of,
)
from rhip.exchange.hl7v3.entries import (
    ORGANIZATION_SYSTEM,
    institution_entry,
    registration,
    subject,
    upsert_entry,
)
from rhip.exchange.hl7v3.errors import MissingElement, NoQueryParameters
from rhip.exchange.hl7v3.person_map import GENDER_CODES, SEX, SEX_CODES
from rhip.exchange.hl7v3.person_query import MAX_RESULTS, limit_of, query_element
from rhip.exchange.hl7v3.xmlread import Element, attr, child, children, find, find_all, ids, path_of
from rhip.exchange.hl7v3.xmlwrite import (
    add,
    add_address,
    add_coded,
    add_ids,
    add_name,
    add_org_ids,
    add_telecom,
    detached,
)

ANSWER = "PRPM_IN306011UV01"
STAFF_ROOT = "2.16.156.10011.1.4"
STAFF_KEY = "urn:rhip:staff:"
TITLE = "urn:oid:2.16.156.10011.2.3.3.10"  # GB/T 8561 专业技术职务代码
ROLE_TEXT = "urn:rhip:cs:practitioner-role"  # the synthetic region's role names (医师, 主治医师 …)
LICENCE = "urn:rhip:sid:practitioner-licence"
_INACTIVE = ("terminated", "nullified", "obsolete", "cancelled", "suspended")


def _staff_number(provider: Element) -> str:
    found = next(
        (i.extension for i in ids(child(provider, "id")) if i.root == STAFF_ROOT and i.extension), ""
    )
    found = found or next((i.extension for i in ids(child(provider, "id")) if i.extension), "")
    if not found:
        where = f"{path_of(provider)}/id"
        raise MissingElement(f"{where} needs the staff number (item root {STAFF_ROOT})", location=where)
    return found


def _qualification(provider: Element) -> dict[str, Any] | None:
    element = child(provider, "code")
    if element is None:
        return None
    title = coding(element, TITLE)
    text = (title or {}).get("display") or value_display(element)
    codings = [title] if title else []
    if text:
        codings.append({"system": ROLE_TEXT, "code": text, "display": text})
    if not codings:
        return None
    return {"code": {"coding": codings, **({"text": text} if text else {})}}


def value_display(element: Element) -> str:
    """The displayName of a CD that has no code (``nullFlavor="OTH"`` with a display, as the samples write)."""
    return attr(element, "displayName") or attr(child(element, "displayName"), "value")


def record_provider(ctx: Context, inbound: Inbound) -> Accepted:
    """Register or revise one health-care provider and their role at the institution."""
    provider = subject(inbound.act, "healthCareProvider")
    person = child(provider, "healthCarePrincipalPerson")
    if person is None:
        where = f"{path_of(provider)}/healthCarePrincipalPerson"
        raise MissingElement(f"{where} is required", location=where)
    affiliated = find(person, "asAffiliate/affiliatedPrincipalOrganization")
    reg = registration(inbound.act)
    institution = ctx.institution(
        inbound, find(affiliated, "id"), find(reg, "author/assignedEntity/representedOrganization/id")
    )
    staff = _staff_number(provider)
    org_name = name_text(child(affiliated, "name")) if _is_institution(affiliated) else ""
    org_url, org_entry = institution_entry(ctx, institution, org_name)
    key = f"{STAFF_KEY}{institution}|{staff}"
    identifiers: list[dict[str, Any]] = [
        {"system": oid_system(STAFF_ROOT), "value": staff, "assigner": {"reference": org_url}},
        {"system": f"{STAFF_KEY}{institution}", "value": staff},
    ]
    for ii in ids(child(person, "id")):
        if ii.extension and ii.root:
            identifiers.append({"system": oid_system(ii.root), "value": ii.extension})
    extension = {
        attr(i, "code"): attr(i, "value") for i in find_all(reg, "extension/item") if attr(i, "code")
    }
    if extension.get("certificateNo"):
        identifiers.append({"system": LICENCE, "value": extension["certificateNo"]})
    active = attr(child(provider, "statusCode"), "code") not in _INACTIVE
    practitioner: dict[str, Any] = {
        "resourceType": "Practitioner",
        "meta": meta(ctx, institution),
        "identifier": identifiers,
        "active": active,
    }
    name = human_name(child(person, "name"))
    if name:
        practitioner["name"] = [name]
    gender = GENDER_CODES.get(attr(child(person, "administrativeGenderCode"), "code"))
    if gender:
        practitioner["gender"] = gender
    born = birth_date(child(person, "birthTime"), ctx.zone)
    if born:
        practitioner["birthDate"] = born
    work = address(child(provider, "addr"), use="work")
    if work:
        practitioner["address"] = [work]
    qualification = _qualification(provider)
    if qualification:
        practitioner["qualification"] = [qualification]
    practitioner_url = ctx.uuid_url()
    role: dict[str, Any] = {
        "resourceType": "PractitionerRole",
        "meta": meta(ctx, institution),
        "identifier": [{"system": f"{STAFF_KEY}{institution}", "value": staff}],
        "active": active,
        "practitioner": {"reference": practitioner_url},
        "organization": {"reference": org_url},
    }
    if qualification:
        role["code"] = [qualification["code"]]
    period = {
        k: v
        for k, v in (
            ("start", ts_of(find(provider, "effectiveTime/low"), ctx.zone)),
            ("end", ts_of(find(provider, "effectiveTime/high"), ctx.zone)),
        )
        if v
    }
    if period:
        role["period"] = period
    if affiliated is not None and not _is_institution(affiliated) and name_text(child(affiliated, "name")):
        role["specialty"] = [
            {"text": name_text(child(affiliated, "name"))}
        ]  # a department (2.16.156.10011.1.26)
    phones = telecoms(child(provider, "telecom"), mobile_default=False)
    if phones:
        role["telecom"] = phones
    ctx.fhir.transaction(
        [
            org_entry,
            upsert_entry(practitioner_url, practitioner, identifier=key),
            upsert_entry(ctx.uuid_url(), role, identifier=key),
        ]
    )
    return Accepted()


def _is_institution(element: Element | None) -> bool:
    return (
        any(i.root == ORGANIZATION_ROOT for i in ids(child(element, "id"))) if element is not None else False
    )


def _query_params(query: Element, ctx: Context) -> list[tuple[str, str]]:
    params: list[tuple[str, str]] = []
    for ii in [i for e in children(query, "providerID") for v in children(e, "value") for i in ids(v)]:
        if ii.extension:
            params.append(
                ("identifier", f"{oid_system(ii.root)}|{ii.extension}" if ii.root else ii.extension)
            )
    name = name_text(find(query, "providerName/value"))
    if name:
        params.append(("name", name))
    if not params:
        where = path_of(query)
        raise NoQueryParameters(f"{where}: a provider query needs providerID or providerName", location=where)
    gender = GENDER_CODES.get(attr(find(query, "administrativeGender/value"), "code"))
    if gender:
        params.append(("gender", gender))
    dob = find(query, "dOB/value")
    low = birth_date(child(dob, "low"), ctx.zone) if dob is not None else None
    high = birth_date(child(dob, "high"), ctx.zone) if dob is not None else None
    exact = birth_date(dob, ctx.zone) if dob is not None and attr(dob, "value") else None
    for prefix, day in (("ge", low), ("le", high), ("eq", exact)):
        if day:
            params.append(("birthdate", f"{prefix}{day}"))
    return params


def query_providers(ctx: Context, inbound: Inbound) -> Answered:
    """Answer a provider query: each Practitioner with its roles' organizations."""
    query = query_element(inbound.act)
    found = ctx.fhir.search("Practitioner", _query_params(query, ctx), count=MAX_RESULTS)
    limit = limit_of(query)
    act = detached("controlActProcess", classCode="CACT", moodCode="EVN")
    orgs: dict[str, dict[str, Any] | None] = {}
    for practitioner in found[:limit]:
        roles = ctx.fhir.search(
            "PractitionerRole", [("practitioner", f"Practitioner/{practitioner['id']}")], count=20
        )
        for ref in {str((r.get("organization") or {}).get("reference", "")) for r in roles}:
            if ref.startswith("Organization/") and ref not in orgs:
                orgs[ref] = ctx.fhir.read("Organization", ref.split("/", 1)[1])
        event = add(
            add(act, "subject", typeCode="SUBJ"), "registrationEvent", classCode="REG", moodCode="EVN"
        )
        add(event, "statusCode", code="active")
        add_provider(add(event, "subject1", typeCode="SBJ"), practitioner, roles, orgs)
    add_query_ack(act, query_id_of(query), min(len(found), limit), len(found))
    return Answered(ANSWER, act)


def add_provider(
    parent: Element,
    practitioner: dict[str, Any],
    roles: list[dict[str, Any]],
    orgs: dict[str, dict[str, Any] | None],
) -> Element:
    """A ``healthCareProvider`` in the register layout from a Practitioner and its roles."""
    provider = add(parent, "healthCareProvider", classCode="PROV")
    idents = practitioner.get("identifier", ())
    staff = next((i for i in idents if i.get("system") == oid_system(STAFF_ROOT)), None)
    add_ids(provider, [{"root": STAFF_ROOT, "extension": str(staff["value"])}] if staff else [])
    qualification = ((practitioner.get("qualification") or [{}])[0].get("code") or {}).get("coding", ())
    title = next((c for c in qualification if c.get("system") == TITLE), None)
    shown = next((c.get("display") for c in qualification if c.get("display")), None)
    if title or shown:
        element = (
            add_coded(provider, "code", title)
            if title
            else add(provider, "code", nullFlavor="OTH", codeSystem=root_of(TITLE))
        )
        if element is not None and not title and shown:
            add(element, "displayName", value=shown)
    add_address(provider, practitioner.get("address", ()), "DSET_AD")
    add_telecom(provider, [t for r in roles for t in r.get("telecom", ())])
    add(provider, "statusCode", code="active" if practitioner.get("active", True) else "terminated")
    person = add(provider, "healthCarePrincipalPerson", classCode="PSN", determinerCode="INSTANCE")
    others = [i for i in idents if str(i.get("system", "")).startswith("urn:oid:") and i is not staff]
    add_ids(person, [{"root": root_of(str(i["system"])), "extension": str(i["value"])} for i in others])
    names = practitioner.get("name") or [{}]
    add_name(person, names[0].get("text"))
    sex = SEX_CODES.get(practitioner.get("gender", ""))
    if sex:
        add_coded(person, "administrativeGenderCode", {"system": SEX, "code": sex[0], "display": sex[1]})
    if practitioner.get("birthDate"):
        add(person, "birthTime", value=fhir_to_ts(practitioner["birthDate"]))
    for role in roles:
        org = orgs.get(str((role.get("organization") or {}).get("reference", "")))
        if org is None:
            continue
        code = next(
            (str(i["value"]) for i in org.get("identifier", ()) if i.get("system") == ORGANIZATION_SYSTEM), ""
        )
        affiliate = add(
            add(person, "asAffiliate", classCode="AFFL"),
            "affiliatedPrincipalOrganization",
            classCode="ORG",
            determinerCode="INSTANCE",
        )
        add_org_ids(affiliate, code)
        add_name(affiliate, org.get("name"))
    return provider
