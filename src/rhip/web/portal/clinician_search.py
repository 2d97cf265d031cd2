"""Finding a resident from one search box: the query's shape decides the Patient search parameter.

- 18 characters, 17 digits and a digit or X: the resident ID number (身份证号, identifier system 1.3);
- 11 digits: a mobile phone (``phone``);
- other digits: the resident health-card number (居民健康卡号, system 1.19), else any identifier (an MRN);
- latin letters: the full name in pinyin (the resident index's ``pinyin`` parameter, spaces ignored);
- anything else: the name (``name``, characters).

A query needs :data:`MIN_QUERY` characters (the page checks). The rows list ID numbers and phones, which the
page always shows masked: a name finds residents the clinician may have no relationship with.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rhip.web.portal.core import Portal, PortalError
from rhip.web.portal.record import identifier, may_invoke, name_of
from rhip.web.portal.record_shape import HEALTH_CARD_SYSTEM, ID_NUMBER_SYSTEM, ref_id

ID_NUMBER = re.compile(r"^\d{17}[\dXx]$")
PHONE = re.compile(r"^1\d{10}$")
DIGITS = re.compile(r"^\d{4,30}$")
PINYIN = re.compile(r"^[A-Za-z][A-Za-z ']{0,63}$")
MAX_QUERY = 64
MIN_QUERY = 2  # characters (spaces aside): one is a surname, too broad a search
RESULTS = 50


def query_params(query: str) -> tuple[str, list[tuple[str, str]]]:
    """The kind of the query (id-number, phone, health-card, pinyin, name) and its Patient search."""
    q = " ".join(query.split())[:MAX_QUERY]
    compact = q.replace(" ", "")
    if ID_NUMBER.match(compact):
        return "id-number", [("identifier", f"{ID_NUMBER_SYSTEM}|{compact.upper()}")]
    if PHONE.match(compact):
        return "phone", [("phone", compact)]
    if DIGITS.match(compact):
        return "health-card", [("identifier", f"{HEALTH_CARD_SYSTEM}|{compact}")]
    if PINYIN.match(q):
        return "pinyin", [("pinyin", q.replace("'", "").lower())]
    return "name", [("name", q)]


def find_residents(portal: Portal, query: str) -> tuple[str, list[dict[str, Any]]]:
    """The residents a query finds (inside ``portal.run``): one row per person, their records grouped by
    ID number, with the institutions holding them."""
    kind, params = query_params(query)
    bundle = portal.fhir("GET", "Patient", [*params, ("_count", str(RESULTS))])
    found = [e["resource"] for e in (bundle or {}).get("entry", []) if "resource" in e]
    if not found and kind == "health-card":  # not a health card: any identifier (an MRN …)
        kind, params = "identifier", [("identifier", query.strip())]
        bundle = portal.fhir("GET", "Patient", [*params, ("_count", str(RESULTS))])
        found = [e["resource"] for e in (bundle or {}).get("entry", []) if "resource" in e]
    org_ids = sorted({ref_id(p.get("managingOrganization")) for p in found} - {""})
    names: dict[str, str] = {}
    if org_ids:
        orgs = portal.search("Organization", _id=",".join(org_ids), _elements="name", _count=len(org_ids))
        names = {str(o.get("id")): str(o.get("name") or o.get("id")) for o in orgs}
    return kind, group_people(found, names, masters_of(portal, params) if found else {})


def masters_of(portal: Portal, params: list[tuple[str, str]]) -> dict[str, str]:
    """Which person (resident-index master) each source Patient the same criterion finds belongs to: one
    ``$empi-masters`` call; {} for roles that may not ask the index (their rows group by ID number)."""
    if not may_invoke("empi-masters") or (params[0][0] == "identifier" and "|" not in params[0][1]):
        return {}
    try:
        bundle = portal.fhir("GET", "Patient/$empi-masters", [*params, ("_count", str(RESULTS))])
    except PortalError:
        return {}
    out: dict[str, str] = {}
    for entry in (bundle or {}).get("entry", []):
        master = entry.get("resource") or {}
        for link in master.get("link") or ():
            out.setdefault(ref_id(link.get("other")), str(master.get("id", "")))
    return out


def group_people(
    patients: list[dict[str, Any]], org_names: Mapping[str, str], masters: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """One row per person (records of one resident-index master, else of one ID number, together), in the
    order found."""
    rows: dict[str, dict[str, Any]] = {}
    for p in patients:
        number = identifier(p, ID_NUMBER_SYSTEM)
        master = (masters or {}).get(str(p.get("id", "")))
        key = f"master:{master}" if master else number or f"id:{p.get('id')}"
        org = ref_id(p.get("managingOrganization"))
        institution = org_names.get(org, org)
        row = rows.get(key)
        if row is None:
            phone = next(
                (str(t.get("value")) for t in p.get("telecom") or () if t.get("system") == "phone"), ""
            )
            rows[key] = {
                "id": str(p.get("id", "")),
                "name": name_of(p),
                "gender": str(p.get("gender") or ""),
                "birth": str(p.get("birthDate") or ""),
                "id_number": number,
                "phone": phone,
                "institutions": [institution] if institution else [],
                "records": 1,
            }
        else:
            row["records"] += 1
            if institution and institution not in row["institutions"]:
                row["institutions"].append(institution)
    return list(rows.values())
