"""Organizations and Practitioners as the directory shows and edits them: flat fields in (a form, a CSV
row), the resource shaped as the region shapes it out (identifier systems, type codings, the division
extension, ``partOf``).

An edit changes only the fields it holds and keeps everything else of the stored resource (telephone,
qualifications …), so a resource round-trips through a form or a CSV file unchanged.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from rhip.registries.identifiers import (
    CODE,
    DIVISION_CODE,
    DIVISION_EXTENSION,
    INSTITUTION_CODE,
    INSTITUTION_LICENCE,
    KIND_SYSTEM,
    ORGANIZATION_TYPE,
    PRACTITIONER_LICENCE,
    STAFF_NO,
    TITLE_SYSTEM,
    USCC,
    uscc_problem,
)

__all__ = ["INSTITUTION_CODE", "PRACTITIONER_LICENCE", "RowError"]

DIVISION = DIVISION_EXTENSION
# Institution kinds: FHIR organization-type and the Chinese display the region writes.
KINDS: dict[str, tuple[str, str]] = {
    "commission": ("govt", "卫生健康委员会"),
    "cdc": ("govt", "疾病预防控制中心"),
    "mch": ("prov", "妇幼保健院"),
    "tertiary": ("prov", "三级医院"),
    "secondary": ("prov", "二级医院"),
    "chc": ("prov", "社区卫生服务中心"),
    "thc": ("prov", "乡镇卫生院"),
    "village": ("prov", "村卫生室"),
}
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
TRUE = frozenset({"1", "true", "yes", "y", "on", "是", "启用", "active"})
FALSE = frozenset({"0", "false", "no", "n", "off", "否", "停用", "inactive"})

# parent: the institution code of the Organization this one is part of (Organization.partOf).
ORGANIZATION_COLUMNS = ("code", "name", "uscc", "licence", "kind", "division", "address", "active", "parent")
ORGANIZATION_REQUIRED = ("code", "name")
# institution_code, department, role_start, role_end: the post (PractitionerRole) at the institution.
PRACTITIONER_COLUMNS = (
    "licence", "name", "family", "given", "gender", "birth_date", "institution_code", "staff_no", "title",
    "department", "active", "role_start", "role_end",
)  # fmt: skip
PRACTITIONER_REQUIRED = ("licence", "name")


class RowError(ValueError):
    """A field that cannot be accepted: the message key (``dir.err.…``, see REASONS) and the field."""

    def __init__(self, key: str, field: str, detail: str = "") -> None:
        super().__init__(key)
        self.key, self.field, self.detail = key, field, detail


def identifier(resource: Mapping[str, Any], system: str) -> str:
    """The value of the resource's identifier of ``system`` ('' when it has none)."""
    for ident in resource.get("identifier") or ():
        if ident.get("system") == system:
            return str(ident.get("value", ""))
    return ""


def _set_identifier(resource: dict[str, Any], system: str, value: str) -> None:
    idents = [i for i in resource.get("identifier") or [] if isinstance(i, dict)]
    found = next((i for i in idents if i.get("system") == system), None)
    if not value:
        idents = [i for i in idents if i.get("system") != system]
    elif found is not None:
        found["value"] = value
    else:
        idents.append({"system": system, "value": value})
    if idents:
        resource["identifier"] = idents
    else:
        resource.pop("identifier", None)


def _active(text: str) -> bool:
    value = text.strip().lower()
    if value == "" or value in TRUE:
        return True
    if value in FALSE:
        return False
    raise RowError("dir.err.active", "active")


def org_kind(org: Mapping[str, Any]) -> str:
    """The institution kind code of an Organization ('' when it has none)."""
    for concept in org.get("type") or ():
        for coding in concept.get("coding") or ():
            if coding.get("system") == KIND_SYSTEM:
                return str(coding.get("code", ""))
    return ""


def org_division(org: Mapping[str, Any]) -> str:
    """The division code of an Organization's first address."""
    for address in org.get("address") or ():
        for ext in address.get("extension") or ():
            if ext.get("url") == DIVISION:
                return str(ext.get("valueCode", ""))
    return ""


def org_fields(org: Mapping[str, Any]) -> dict[str, str]:
    """The form (and CSV) fields of an Organization."""
    address = (org.get("address") or [{}])[0]
    return {
        "id": str(org.get("id", "")),
        "code": identifier(org, INSTITUTION_CODE),
        "name": str(org.get("name", "")),
        "uscc": identifier(org, USCC),
        "licence": identifier(org, INSTITUTION_LICENCE),
        "kind": org_kind(org),
        "division": org_division(org),
        "address": str(address.get("text", "")),
        "active": "true" if org.get("active", True) else "false",
        "parent_id": reference_id(org.get("partOf"), "Organization"),
    }


def reference_id(reference: Any, resource_type: str) -> str:
    """The id a reference names when it is a literal ``Type/id`` reference of that type ('' otherwise)."""
    ref = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(ref, str) or not ref.startswith(resource_type + "/"):
        return ""
    return ref.split("/", 2)[1]


def check_org(fields: Mapping[str, str]) -> dict[str, str]:
    """The fields cleaned; raises :class:`RowError` for the first that cannot be accepted."""
    clean = {k: str(fields.get(k, "") or "").strip() for k in ORGANIZATION_COLUMNS}
    if not clean["name"]:
        raise RowError("dir.err.name", "name")
    if len(clean["name"]) > 200:
        raise RowError("dir.err.name", "name")
    if not CODE.match(clean["code"]):
        raise RowError("dir.err.code", "code")
    clean["uscc"] = clean["uscc"].upper()
    problem = uscc_problem(clean["uscc"]) if clean["uscc"] else None
    if problem:
        raise RowError("dir.err.uscc", "uscc", problem)
    if clean["parent"] and (not CODE.match(clean["parent"]) or clean["parent"] == clean["code"]):
        raise RowError("dir.err.parent", "parent")
    if clean["licence"] and not CODE.match(clean["licence"]):
        raise RowError("dir.err.licence", "licence")
    if clean["kind"] and clean["kind"] not in KINDS:
        raise RowError("dir.err.kind", "kind")
    if clean["division"] and not DIVISION_CODE.match(clean["division"]):
        raise RowError("dir.err.division", "division")
    if len(clean["address"]) > 300:
        raise RowError("dir.err.address", "address")
    clean["active"] = "true" if _active(clean["active"]) else "false"
    return clean


def apply_org(
    existing: Mapping[str, Any] | None, fields: Mapping[str, str], new_id: str, parent: str | None = None
) -> dict[str, Any]:
    """An Organization with checked ``fields`` applied to ``existing`` (a new one when None).

    ``parent``: the id of the Organization it is part of (None keeps the stored ``partOf``).
    """
    org: dict[str, Any] = copy.deepcopy(dict(existing)) if existing else {"resourceType": "Organization"}
    if parent is not None:
        org["partOf"] = {"reference": f"Organization/{parent}"}
    org["resourceType"] = "Organization"
    org.setdefault("id", new_id)
    org.pop("meta", None)
    org.pop("text", None)  # a narrative written for the old content would no longer be true
    _set_identifier(org, USCC, fields["uscc"])
    _set_identifier(org, INSTITUTION_LICENCE, fields["licence"])
    _set_identifier(org, INSTITUTION_CODE, fields["code"])
    org["active"] = fields["active"] == "true"
    org["name"] = fields["name"]
    kind = fields["kind"]
    if kind:
        fhir_type, display = KINDS[kind]
        others = [
            t
            for t in org.get("type") or []
            if not any(c.get("system") in (ORGANIZATION_TYPE, KIND_SYSTEM) for c in t.get("coding") or [])
        ]
        org["type"] = [
            {"coding": [{"system": ORGANIZATION_TYPE, "code": fhir_type}]},
            {"coding": [{"system": KIND_SYSTEM, "code": kind, "display": display}]},
            *others,
        ]
    addresses = [dict(a) for a in org.get("address") or []]
    if fields["address"] or fields["division"] or addresses:
        first = addresses[0] if addresses else {}
        if fields["address"]:
            first["text"] = fields["address"]
        else:
            first.pop("text", None)
        extensions = [e for e in first.get("extension") or [] if e.get("url") != DIVISION]
        if fields["division"]:
            extensions.append({"url": DIVISION, "valueCode": fields["division"]})
        if extensions:
            first["extension"] = extensions
        else:
            first.pop("extension", None)
        addresses = [first, *addresses[1:]] if first else addresses[1:]
        if addresses:
            org["address"] = addresses
        else:
            org.pop("address", None)
    return org


def practitioner_fields(res: Mapping[str, Any]) -> dict[str, str]:
    """The list (and CSV) fields of a Practitioner."""
    name = (res.get("name") or [{}])[0]
    given = name.get("given") or []
    quals = res.get("qualification") or []
    title = str(((quals[0] if quals else {}).get("code") or {}).get("text", ""))
    assigner = ""
    for ident in res.get("identifier") or ():
        if ident.get("system") == STAFF_NO:
            assigner = str((ident.get("assigner") or {}).get("reference", "")).removeprefix("Organization/")
    return {
        "id": str(res.get("id", "")),
        "licence": identifier(res, PRACTITIONER_LICENCE),
        "name": str(name.get("text") or (str(name.get("family", "")) + "".join(given))),
        "family": str(name.get("family", "")),
        "given": " ".join(str(g) for g in given),
        "gender": str(res.get("gender", "")),
        "birth_date": str(res.get("birthDate", "")),
        "organization": assigner,
        "staff_no": identifier(res, STAFF_NO),
        "title": title,
        "active": "true" if res.get("active", True) else "false",
    }


def check_practitioner(fields: Mapping[str, str]) -> dict[str, str]:
    """The fields of a practitioners CSV row cleaned; raises :class:`RowError`."""
    clean = {k: str(fields.get(k, "") or "").strip() for k in PRACTITIONER_COLUMNS}
    if not CODE.match(clean["licence"]):
        raise RowError("dir.err.licence", "licence")
    if not clean["name"] or len(clean["name"]) > 100:
        raise RowError("dir.err.name", "name")
    if clean["gender"] and clean["gender"] not in ("male", "female", "other", "unknown"):
        raise RowError("dir.err.gender", "gender")
    if clean["birth_date"] and not DATE.match(clean["birth_date"]):
        raise RowError("dir.err.birth_date", "birth_date")
    if clean["institution_code"] and not CODE.match(clean["institution_code"]):
        raise RowError("dir.err.code", "institution_code")
    if clean["staff_no"] and not CODE.match(clean["staff_no"]):
        raise RowError("dir.err.staff_no", "staff_no")
    if len(clean["department"]) > 100 or len(clean["title"]) > 100:
        raise RowError("dir.err.too_long", "department" if len(clean["department"]) > 100 else "title")
    for key in ("role_start", "role_end"):
        if clean[key] and not DATE.match(clean[key]):
            raise RowError("dir.err.period", key)
    if (clean["role_start"] or clean["role_end"]) and not clean["institution_code"]:
        raise RowError("dir.err.period", "institution_code")
    if clean["role_start"] and clean["role_end"] and clean["role_end"] < clean["role_start"]:
        raise RowError("dir.err.period", "role_end")
    clean["active"] = "true" if _active(clean["active"]) else "false"
    return clean


def apply_practitioner(
    existing: Mapping[str, Any] | None, fields: Mapping[str, str], organization: str | None
) -> dict[str, Any]:
    """A Practitioner with checked ``fields`` applied to ``existing`` (a new one when None)."""
    res: dict[str, Any] = copy.deepcopy(dict(existing)) if existing else {"resourceType": "Practitioner"}
    res.pop("meta", None)
    res.pop("text", None)
    _set_identifier(res, STAFF_NO, fields["staff_no"])
    _set_identifier(res, PRACTITIONER_LICENCE, fields["licence"])
    if fields["staff_no"] and organization:
        for ident in res["identifier"]:
            if ident.get("system") == STAFF_NO:
                ident["assigner"] = {"reference": f"Organization/{organization}"}
    res["active"] = fields["active"] == "true"
    name: dict[str, Any] = {"use": "official", "text": fields["name"]}
    if fields["family"]:
        name["family"] = fields["family"]
    if fields["given"]:
        name["given"] = fields["given"].split()
    res["name"] = [name, *[n for n in res.get("name") or [] if n.get("use") != "official"]]
    if fields["gender"]:
        res["gender"] = fields["gender"]
    if fields["birth_date"]:
        res["birthDate"] = fields["birth_date"]
    if fields["title"]:
        coding = {"system": TITLE_SYSTEM, "code": fields["title"], "display": fields["title"]}
        res["qualification"] = [{"code": {"coding": [coding], "text": fields["title"]}}]
    return res


def apply_role(
    existing: Mapping[str, Any] | None,
    practitioner: str,
    organization: str,
    department: str,
    start: str = "",
    end: str = "",
) -> dict[str, Any]:
    """The PractitionerRole tying a practitioner to an institution (``department``: its specialty text;
    ``start``/``end``: its period, each kept as stored when empty)."""
    role: dict[str, Any] = copy.deepcopy(dict(existing)) if existing else {"resourceType": "PractitionerRole"}
    role.pop("meta", None)
    role["active"] = True
    role["practitioner"] = {"reference": f"Practitioner/{practitioner}"}
    role["organization"] = {"reference": f"Organization/{organization}"}
    if department:
        role["specialty"] = [{"text": department}]
    period = {**(role.get("period") or {}), **{k: v for k, v in (("start", start), ("end", end)) if v}}
    if period:
        role["period"] = period
    return role


def role_fields(role: Mapping[str, Any]) -> dict[str, str]:
    """The post's CSV fields of a PractitionerRole (``organization_id`` for the export to name by code)."""
    period = role.get("period") or {}
    return {
        "organization_id": reference_id(role.get("organization"), "Organization"),
        "department": ", ".join(str(s.get("text", "")) for s in role.get("specialty") or [] if s.get("text")),
        "role_start": str(period.get("start", ""))[:10],
        "role_end": str(period.get("end", ""))[:10],
    }
