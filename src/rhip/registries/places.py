"""Locations (科室、场所) and HealthcareServices (服务) as CSV rows: fields in, the resource out.

A place or a service belongs to an institution and is keyed by its code there: the identifier
``urn:rhip:sid:location:<institution code>|<code>`` (``…:service:…`` for a service). A new one gets the id
``loc-<institution>-<code>`` (``hs-…``). As with institutions, an update changes only the row's fields.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from rhip.registries.identifiers import (
    CODE,
    DEPARTMENT_SYSTEM,
    DIVISION_CODE,
    DIVISION_EXTENSION,
    LOCATION_PREFIX,
    SERVICE_CATEGORY,
    SERVICE_PREFIX,
)
from rhip.registries.records import RowError, reference_id

LOCATION_COLUMNS = ("institution_code", "code", "name", "type", "partof", "division", "address", "status")
LOCATION_REQUIRED = ("institution_code", "code", "name")
SERVICE_COLUMNS = ("institution_code", "code", "name", "category", "location", "active")
SERVICE_REQUIRED = ("institution_code", "code", "name")
LOCATION_STATUS = ("active", "suspended", "inactive")
_TRUE = {"", "1", "true", "yes", "y", "是", "启用", "active"}
_FALSE = {"0", "false", "no", "n", "否", "停用", "inactive"}


def _clean(fields: Mapping[str, str], columns: tuple[str, ...]) -> dict[str, str]:
    clean = {k: str(fields.get(k, "") or "").strip() for k in columns}
    for key in ("institution_code", "code"):
        if not CODE.match(clean[key]):
            raise RowError("dir.err.code", key)
    if not clean["name"] or len(clean["name"]) > 200:
        raise RowError("dir.err.name", "name")
    return clean


def check_location(fields: Mapping[str, str]) -> dict[str, str]:
    """A Location row cleaned; raises :class:`RowError` for the first field that cannot be accepted."""
    clean = _clean(fields, LOCATION_COLUMNS)
    for key in ("type", "partof"):
        if clean[key] and not CODE.match(clean[key]):
            raise RowError("dir.err.code", key)
    if clean["partof"] == clean["code"]:
        raise RowError("dir.err.parent", "partof")
    if clean["division"] and not DIVISION_CODE.match(clean["division"]):
        raise RowError("dir.err.division", "division")
    if len(clean["address"]) > 300:
        raise RowError("dir.err.address", "address")
    clean["status"] = clean["status"].lower() or "active"
    if clean["status"] not in LOCATION_STATUS:
        raise RowError("dir.err.status", "status")
    return clean


def check_service(fields: Mapping[str, str]) -> dict[str, str]:
    """A HealthcareService row cleaned; raises :class:`RowError`."""
    clean = _clean(fields, SERVICE_COLUMNS)
    for key in ("category", "location"):
        if clean[key] and not CODE.match(clean[key]):
            raise RowError("dir.err.code", key)
    active = clean["active"].lower()
    if active not in _TRUE | _FALSE:
        raise RowError("dir.err.active", "active")
    clean["active"] = "true" if active in _TRUE else "false"
    return clean


def _base(existing: Mapping[str, Any] | None, rtype: str, system: str, code: str) -> dict[str, Any]:
    res: dict[str, Any] = copy.deepcopy(dict(existing)) if existing else {"resourceType": rtype}
    res.pop("meta", None)
    res.pop("text", None)  # a narrative written for the old content would no longer be true
    others = [i for i in res.get("identifier") or [] if isinstance(i, dict) and i.get("system") != system]
    res["identifier"] = [*others, {"system": system, "value": code}]
    return res


def apply_location(
    existing: Mapping[str, Any] | None, fields: Mapping[str, str], organization: str, parent: str | None
) -> dict[str, Any]:
    """A Location with a checked row applied (``parent``: the enclosing Location's id, None keeps it)."""
    loc = _base(existing, "Location", LOCATION_PREFIX + fields["institution_code"], fields["code"])
    loc["status"] = fields["status"]
    loc["name"] = fields["name"]
    loc["mode"] = "instance"
    loc["managingOrganization"] = {"reference": f"Organization/{organization}"}
    if parent is not None:
        loc["partOf"] = {"reference": f"Location/{parent}"}
    if fields["type"]:
        loc["type"] = [{"coding": [{"system": DEPARTMENT_SYSTEM, "code": fields["type"]}]}]
    address = dict(loc.get("address") or {})
    address.pop("text", None)  # an empty cell clears, as for an institution
    if fields["address"]:
        address["text"] = fields["address"]
    extensions = [e for e in address.get("extension") or [] if e.get("url") != DIVISION_EXTENSION]
    if fields["division"]:
        extensions.append({"url": DIVISION_EXTENSION, "valueCode": fields["division"]})
    address.pop("extension", None)
    if extensions:
        address["extension"] = extensions
    if address:
        loc["address"] = address
    else:
        loc.pop("address", None)
    return loc


def apply_service(
    existing: Mapping[str, Any] | None, fields: Mapping[str, str], organization: str, location: str | None
) -> dict[str, Any]:
    """A HealthcareService with a checked row applied (``location``: a Location id, None keeps them)."""
    service = _base(
        existing, "HealthcareService", SERVICE_PREFIX + fields["institution_code"], fields["code"]
    )
    service["active"] = fields["active"] == "true"
    service["name"] = fields["name"]
    service["providedBy"] = {"reference": f"Organization/{organization}"}
    if fields["category"]:
        service["category"] = [{"coding": [{"system": SERVICE_CATEGORY, "code": fields["category"]}]}]
    if location is not None:
        service["location"] = [{"reference": f"Location/{location}"}]
    return service


def _code_in(resource: Mapping[str, Any], prefix: str) -> tuple[str, str]:
    """(institution code, code) of the resource's identifier under ``prefix``."""
    for ident in resource.get("identifier") or ():
        system = str(ident.get("system", ""))
        if system.startswith(prefix):
            return system[len(prefix) :], str(ident.get("value", ""))
    return "", ""


def location_fields(loc: Mapping[str, Any]) -> dict[str, str]:
    """The CSV fields of a Location (``partof_id``: the enclosing Location's id, for the export to name)."""
    institution, code = _code_in(loc, LOCATION_PREFIX)
    address = loc.get("address") or {}
    types = [
        c
        for t in loc.get("type") or []
        for c in t.get("coding") or []
        if c.get("system") == DEPARTMENT_SYSTEM
    ]
    division = next(
        (
            str(e.get("valueCode", ""))
            for e in address.get("extension") or []
            if e.get("url") == DIVISION_EXTENSION
        ),
        "",
    )
    return {
        "institution_code": institution,
        "code": code,
        "name": str(loc.get("name", "")),
        "type": str(types[0].get("code", "")) if types else "",
        "partof_id": reference_id(loc.get("partOf"), "Location"),
        "division": division,
        "address": str(address.get("text", "")),
        "status": str(loc.get("status", "")),
    }


def service_fields(service: Mapping[str, Any]) -> dict[str, str]:
    """The CSV fields of a HealthcareService (``location_id``: its first Location's id)."""
    institution, code = _code_in(service, SERVICE_PREFIX)
    categories = [
        c
        for t in service.get("category") or []
        for c in t.get("coding") or []
        if c.get("system") == SERVICE_CATEGORY
    ]
    return {
        "institution_code": institution,
        "code": code,
        "name": str(service.get("name", "")),
        "category": str(categories[0].get("code", "")) if categories else "",
        "location_id": reference_id((service.get("location") or [None])[0], "Location"),
        "active": "true" if service.get("active", True) else "false",
    }


def location_code(loc: Mapping[str, Any]) -> str:
    """The code of a Location at its institution ('' when it has none)."""
    return _code_in(loc, LOCATION_PREFIX)[1]
