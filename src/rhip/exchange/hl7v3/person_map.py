"""A person (``patient`` role with its ``patientPerson``) as a FHIR Patient, and back.

Layout of the register sample (LangZhongGit ``H0201Rt.xml``) and the synthetic region's messages: the local
patient id under root 2.16.156.10011.2.5.1.4 (with the institution as domain id .2.5.1.5), 身份证 under
2.16.156.10011.1.3 in ``patientPerson/id``, 健康卡/健康档案编号/医保卡 in ``asOtherIDs``, sex in GB/T 2261.1,
marital status GB/T 2261.2, ethnicity GB 3304, occupation GB/T 6565 (``asEmployee/occupationCode``),
contacts in ``personalRelationship``. The Patient comes out as the synthetic FHIR has it.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rhip.exchange.hl7v3.datatypes import (
    DOMAIN_ROOT,
    LOCAL_PATIENT_ROOT,
    MRN_PREFIX,
    ORGANIZATION_ROOT,
    address,
    birth_date,
    coding,
    fhir_to_ts,
    human_name,
    identifier_system,
    oid_system,
    telecoms,
    ts_of,
)
from rhip.exchange.hl7v3.errors import BadValue, MissingElement
from rhip.exchange.hl7v3.xmlread import Element, attr, child, children, find, find_all, ids, path_of
from rhip.exchange.hl7v3.xmlwrite import (
    add,
    add_address,
    add_coded,
    add_ids,
    add_name,
    add_org_ids,
    add_telecom,
    identifier_items,
)

SEX = "urn:oid:2.16.156.10011.2.3.3.4"
MARITAL = "urn:oid:2.16.156.10011.2.3.3.5"
ETHNICITY = "urn:oid:2.16.156.10011.2.3.3.3"
OCCUPATION = "urn:oid:2.16.156.10011.2.3.3.7"
ID_CATEGORY = "urn:oid:2.16.156.10011.2.3.1.1"
ETHNICITY_EXT = "urn:rhip:ext:ethnicity"
OCCUPATION_EXT = "urn:rhip:ext:occupation"
# GB/T 2261.1 and the HL7 AdministrativeGender codes some senders use instead.
GENDER_CODES = {
    "1": "male",
    "2": "female",
    "0": "unknown",
    "9": "other",
    "M": "male",
    "F": "female",
    "UN": "unknown",
}
SEX_CODES = {  # FHIR gender -> GB/T 2261.1 (code, display)
    "male": ("1", "男性"),
    "female": ("2", "女性"),
    "other": ("9", "未说明的性别"),
    "unknown": ("0", "未知的性别"),
}
_MARITAL_DISPLAY = {
    "10": "未婚",
    "20": "已婚",
    "21": "初婚",
    "22": "再婚",
    "23": "复婚",
    "30": "丧偶",
    "40": "离婚",
}
_INACTIVE = ("terminated", "nullified", "obsolete", "cancelled", "aborted")


def local_patient_id(patient: Element) -> str:
    """The local patient id (root 2.16.156.10011.2.5.1.4) of a ``patient`` role; MissingElement without it."""
    found = next((i.extension for i in ids(child(patient, "id")) if i.root == LOCAL_PATIENT_ROOT), "")
    if not found:
        where = f"{path_of(patient)}/id"
        raise MissingElement(
            f"{where} needs the local patient id (item root {LOCAL_PATIENT_ROOT} with an extension)",
            location=where,
        )
    return found


def _concept(
    element: Element | None, system: str, displays: dict[str, str] | None = None
) -> dict[str, Any] | None:
    found = coding(element, system)
    if found is None:
        return None
    if displays and "display" not in found and found["code"] in displays:
        found["display"] = displays[found["code"]]
    return {"coding": [found]}


def _gender(person: Element) -> str | None:
    element = child(person, "administrativeGenderCode")
    code = attr(element, "code")
    if element is None or not code:
        return None
    if code not in GENDER_CODES:
        raise BadValue(
            f"{path_of(element)} code {code[:10]!r} is not a GB/T 2261.1 sex code (0, 1, 2, 9)",
            location=path_of(element),
        )
    return GENDER_CODES[code]


def _identifiers(patient: Element, person: Element, institution: str, local_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"system": f"{MRN_PREFIX}{institution}", "value": local_id}]
    category = attr(child(person, "idCategory"), "code")
    places = [child(person, "id"), *find_all(person, "asOtherIDs/id"), child(patient, "id")]
    for place in places:
        for ii in ids(place):
            if ii.root in (LOCAL_PATIENT_ROOT, DOMAIN_ROOT, ORGANIZATION_ROOT) or not ii.extension:
                continue  # other institutions' local ids belong to their own records
            system = identifier_system(ii, institution)
            if not system or system.startswith(MRN_PREFIX):
                continue
            ident: dict[str, Any] = {"system": system, "value": ii.extension}
            if place is child(person, "id") and category and category != "01":
                ident["type"] = {"coding": [{"system": ID_CATEGORY, "code": category}]}
            if ident not in out and not any(
                o["system"] == system and o["value"] == ii.extension for o in out
            ):
                out.append(ident)
    return out


def _contacts(person: Element) -> list[dict[str, Any]]:
    out = []
    for rel in children(person, "personalRelationship"):
        contact: dict[str, Any] = {}
        relationship = coding(child(rel, "code"))
        if relationship:
            contact["relationship"] = [{"coding": [relationship]}]
        name = human_name(find(rel, "relationshipHolder1/name"))
        if name:
            name.pop("use", None)
            contact["name"] = name
        phones = telecoms(child(rel, "telecom"))
        if phones:
            contact["telecom"] = phones
        if contact:
            out.append(contact)
    return out


def patient_resource(
    patient: Element, institution: str, local_id: str, zone: ZoneInfo, organization_ref: str
) -> dict[str, Any]:
    """The FHIR Patient of a ``patient`` role (without id and meta)."""
    person = child(patient, "patientPerson")
    if person is None:
        where = f"{path_of(patient)}/patientPerson"
        raise MissingElement(f"{where} is required", location=where)
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": _identifiers(patient, person, institution, local_id),
        "active": attr(child(patient, "statusCode"), "code") not in _INACTIVE,
    }
    name = human_name(child(person, "name"))
    if name:
        resource["name"] = [name]
    phones = telecoms(child(person, "telecom"))
    if phones:
        resource["telecom"] = phones
    gender = _gender(person)
    if gender:
        resource["gender"] = gender
    born = birth_date(child(person, "birthTime"), zone)
    if born:
        resource["birthDate"] = born
    deceased = ts_of(child(person, "deceasedTime"), zone)
    if deceased:
        resource["deceasedDateTime"] = deceased
    elif attr(child(person, "deceasedInd"), "value") == "true":
        resource["deceasedBoolean"] = True
    home = address(child(person, "addr"), use="home")
    if home:
        resource["address"] = [home]
    marital = _concept(child(person, "maritalStatusCode"), MARITAL, _MARITAL_DISPLAY)
    if marital:
        resource["maritalStatus"] = marital
    extensions = []
    ethnic = child(person, "ethnicGroupCode")
    ethnicity = _concept(child(ethnic, "item") if ethnic is not None else None, ETHNICITY) or _concept(
        ethnic, ETHNICITY
    )
    if ethnicity:
        extensions.append({"url": ETHNICITY_EXT, "valueCodeableConcept": ethnicity})
    occupation = _concept(find(person, "asEmployee/occupationCode"), OCCUPATION)
    if occupation:
        extensions.append({"url": OCCUPATION_EXT, "valueCodeableConcept": occupation})
    if extensions:
        resource["extension"] = extensions
    contacts = _contacts(person)
    if contacts:
        resource["contact"] = contacts
    resource["managingOrganization"] = {"reference": organization_ref}
    return resource


def _ext_coding(patient: dict[str, Any], url: str) -> dict[str, Any] | None:
    for ext in patient.get("extension", ()):
        if ext.get("url") == url:
            codings = (ext.get("valueCodeableConcept") or {}).get("coding") or [None]
            return codings[0]  # type: ignore[no-any-return]
    return None


def local_id_items(mrn: dict[str, Any]) -> list[dict[str, str]]:
    """The domain id and local patient id items of an ``urn:rhip:mrn:<institution>`` identifier."""
    institution = str(mrn["system"]).removeprefix(MRN_PREFIX)
    return [
        {"root": DOMAIN_ROOT, "extension": institution},
        {"root": LOCAL_PATIENT_ROOT, "extension": str(mrn["value"])},
    ]


def add_patient(parent: Element, patient: dict[str, Any], extra_ids: list[tuple[str, str]]) -> Element:
    """A ``patient`` role of a query answer from a FHIR Patient, ``extra_ids`` in ``asOtherIDs``."""
    role = add(parent, "patient", classCode="PAT")
    identifiers = [i for i in patient.get("identifier", ()) if i.get("system") and i.get("value")]
    mrn = next((i for i in identifiers if str(i["system"]).startswith(MRN_PREFIX)), None)
    institution = str(mrn["system"]).removeprefix(MRN_PREFIX) if mrn else ""
    add_ids(role, local_id_items(mrn) if mrn else [])
    add(role, "statusCode", code="active" if patient.get("active", True) else "terminated")
    person = add(role, "patientPerson", classCode="PSN", determinerCode="INSTANCE")
    id_card = next((i for i in identifiers if i["system"] == oid_system("2.16.156.10011.1.3")), None)
    if id_card:
        add_ids(person, [{"root": "2.16.156.10011.1.3", "extension": id_card["value"]}])
    names = patient.get("name") or [{}]
    add_name(
        person, names[0].get("text") or "".join([names[0].get("family", ""), *names[0].get("given", [])])
    )
    add_telecom(person, patient.get("telecom", ()))
    sex = SEX_CODES.get(patient.get("gender", ""))
    if sex:
        add_coded(person, "administrativeGenderCode", {"system": SEX, "code": sex[0], "display": sex[1]})
    if patient.get("birthDate"):
        add(person, "birthTime", value=fhir_to_ts(patient["birthDate"]))
    add_address(person, patient.get("address", ()), "LIST_AD")
    add_coded(person, "maritalStatusCode", ((patient.get("maritalStatus") or {}).get("coding") or [None])[0])
    ethnicity = _ext_coding(patient, ETHNICITY_EXT)
    if ethnicity:
        add_coded(add(person, "ethnicGroupCode"), "item", ethnicity)
    occupation = _ext_coding(patient, OCCUPATION_EXT)
    if occupation:
        add_coded(add(person, "asEmployee", classCode="EMP"), "occupationCode", occupation)
    main = [i for i in (mrn, id_card) if i is not None]
    others = [(str(i["system"]), str(i["value"])) for i in identifiers if all(i is not m for m in main)]
    seen = {(str(i["system"]), str(i["value"])) for i in main}
    for system, value_ in [*others, *extra_ids]:
        if (system, value_) in seen:
            continue
        seen.add((system, value_))
        ((item, scope),) = identifier_items([{"system": system, "value": value_}])
        other = add(person, "asOtherIDs", classCode="PAT")
        add_ids(other, [item])
        scoping = add(other, "scopingOrganization", classCode="ORG", determinerCode="INSTANCE")
        add_org_ids(scoping, scope or institution)
    if institution:
        provider = add(role, "providerOrganization", classCode="ORG", determinerCode="INSTANCE")
        add_org_ids(provider, institution)
    return role
