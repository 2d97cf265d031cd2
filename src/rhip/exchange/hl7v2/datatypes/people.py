"""Identifiers, names, addresses, telecoms, practitioners and locations (CX, EI, XPN, XAD, XTN, XCN, PL)."""

from __future__ import annotations

import re

from rhip.exchange.hl7v2.datatypes.primitives import (
    DEPARTMENT_NO,
    DIVISION_EXTENSION,
    ID_CARD,
    MRN_PREFIX,
    STAFF_NO,
    V2_TABLE,
    Json,
    Parts,
    hd_system,
    organization_identifier,
    ts_date,
    uri_name,
)
from rhip.exchange.hl7v2.message import Delimiters

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_DIVISION = re.compile(r"^\d{6}(\d{3}(\d{3})?)?$")

LOCAL_ID_TYPES = frozenset(("", "MR", "MRT", "PI", "PN", "PT"))  # table 0203 types of a local patient id
_NATIONAL_TYPES = {"NNCHN": ID_CARD}


def cx_identifier(raw: str, d: Delimiters, institution: str) -> Json | None:
    """A CX as an Identifier: MRN-like types under ``urn:rhip:mrn:<authority>``, OIDs as ``urn:oid:``."""
    p = Parts(raw, d)
    value = p(1)
    if not value:
        return None
    namespace, uid, uid_type = (p(4, i) for i in (1, 2, 3))
    id_type = p(5).upper()
    system = None
    if id_type in LOCAL_ID_TYPES and namespace:
        system = MRN_PREFIX + uri_name(namespace)
    if system is None:
        system = hd_system(namespace, uid, uid_type)
    if system is None:
        if namespace:
            system = f"urn:rhip:id:{uri_name(namespace)}"
        elif id_type in _NATIONAL_TYPES:
            system = _NATIONAL_TYPES[id_type]
        elif id_type in LOCAL_ID_TYPES:
            system = MRN_PREFIX + uri_name(institution)
        else:
            system = f"urn:rhip:id:{uri_name(institution)}:{uri_name(id_type)}"
    identifier: Json = {"system": system, "value": value}
    if id_type and not (system.startswith((MRN_PREFIX, "urn:oid:2.16.156.10011.1."))):
        identifier["type"] = {"coding": [{"system": V2_TABLE + "0203", "code": id_type}]}
    period = _period(p(7), p(8))
    if period:
        identifier["period"] = period
    return identifier


def ei_identifier(raw: str, d: Delimiters, prefix: str, institution: str) -> Json | None:
    """An EI as an Identifier: ``urn:oid:`` for an ISO universal id, else ``<prefix>:<namespace>``."""
    p = Parts(raw, d)
    value = p(1)
    if not value:
        return None
    namespace = p(2)
    system = hd_system(namespace, p(3), p(4))
    return {"system": system or f"{prefix}:{uri_name(namespace or institution)}", "value": value}


def _period(start: str, end: str) -> Json:
    period = {}
    if start:
        period["start"] = ts_date(start)
    if end:
        period["end"] = ts_date(end)
    return period


# -- names, addresses, telecom ---------------------------------------------------------------------

_NAME_USE = {"L": "official", "R": "official", "D": "usual", "A": "usual", "M": "maiden", "N": "nickname"}
_NAME_USE |= {"BAD": "old", "MSK": "anonymous", "NAV": "temp", "TEMP": "temp", "NOUSE": "old"}


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds Chinese characters."""
    return bool(_CJK.search(text))


def person_name(family: str, given: list[str], *, use: str | None = None) -> Json | None:
    """A HumanName with its text: Chinese family+given without a space, Latin given names then family."""
    given = [g for g in given if g]
    if not family and not given:
        return None
    if has_cjk(family + "".join(given)):
        text = family + "".join(given)
    else:
        text = " ".join([*given, family]).strip()
    name: Json = {}
    if use:
        name["use"] = use
    name["text"] = text
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    return name


def xpn_name(raw: str, d: Delimiters, default_use: str | None = None) -> Json | None:
    """An XPN as a HumanName (XPN-7 name type as ``use``, else ``default_use``)."""
    return _name(Parts(raw, d), 1, default_use, 7)


def _name(p: Parts, first: int, default_use: str | None, type_at: int) -> Json | None:
    family = p(first)
    given = [p(first + 1), p(first + 2)]
    name_type = p(type_at).upper()
    name = person_name(family, given, use=_NAME_USE.get(name_type, default_use))
    if name is None:
        return None
    suffix = [s for s in (p(first + 3), p(first + 5)) if s]
    prefix = p(first + 4)
    if prefix:
        name["prefix"] = [prefix]
    if suffix:
        name["suffix"] = suffix
    return name


_ADDRESS_USE = {"H": "home", "P": "home", "O": "work", "B": "work", "C": "temp", "BI": "billing", "BA": "old"}


def xad_address(raw: str, d: Delimiters) -> Json | None:
    """An XAD as an Address: province/city/district, GB/T 2260 code in XAD-9 as the division extension."""
    p = Parts(raw, d)
    street = " ".join(x for x in (p(1, i) for i in (1, 2, 3)) if x)  # SAD: street, name, number
    line = [x for x in (street, p(2)) if x]
    city, state, postal, country = (p(i) for i in (3, 4, 5, 6))
    kind, district, county = p(7).upper(), p(8), p(9)
    division = county if _DIVISION.match(county) else ""
    if not district and county and not division:
        district = county
    if not (line or city or state or postal or country or district or division):
        return None
    address: Json = {}
    if kind in _ADDRESS_USE:
        address["use"] = _ADDRESS_USE[kind]
    elif kind == "M":
        address["type"] = "postal"
    whole = "".join(line)
    area = state + city + district
    if has_cjk(whole + area):
        if area and whole.startswith(area):
            address["text"] = whole
            line = [] if whole == area else line
        elif state and whole.startswith(state):
            address["text"] = whole
        else:
            address["text"] = area + whole
    if line:
        address["line"] = line
    for key, value in (("city", city), ("district", district), ("state", state)):
        if value:
            address[key] = value
    if postal:
        address["postalCode"] = postal
    if country:
        address["country"] = country
    if division:
        address["extension"] = [{"url": DIVISION_EXTENSION, "valueCode": division}]
    return address


_EQUIPMENT = {"PH": "phone", "CP": "phone", "FX": "fax", "BP": "pager", "INTERNET": "email", "X.400": "email"}
_TELECOM_USE = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "PRS": "mobile"}


def xtn_contact(raw: str, d: Delimiters) -> Json | None:
    """An XTN as a ContactPoint: CP a mobile phone, PRN home, WPN work, NET/Internet an email address."""
    p = Parts(raw, d)
    use_code, equipment = p(2).upper(), p(3).upper()
    email = p(4)
    system = _EQUIPMENT.get(equipment)
    if use_code == "NET" or (system is None and email and not p(1)):
        system = "email"
    if system == "email":
        value = email or p(1)
    else:
        value = p(1) or p(12) or _dialled(p)
    if not value:
        return None
    if system is None:
        system = "email" if "@" in value else "phone"
    contact: Json = {"system": system, "value": value}
    use = "mobile" if equipment == "CP" else _TELECOM_USE.get(use_code)
    if use and system != "email":
        contact["use"] = use
    elif use == "work":
        contact["use"] = "work"
    return contact


def _dialled(p: Parts) -> str:
    country, area, local, ext = (p(i) for i in (5, 6, 7, 8))
    if not local:
        return ""
    text = (f"+{country} " if country else "") + (f"{area}-" if area else "") + local
    return f"{text} ext. {ext}" if ext else text


# -- people and places -----------------------------------------------------------------------------


def xcn_practitioner(raw: str, d: Delimiters, institution: str) -> Json | None:
    """An XCN as ``{"identifier", "name", "display"}`` (parts absent when not sent); None when empty.

    The staff number (XCN-1) is unique within its institution only, so it is an identifier under
    ``urn:oid:2.16.156.10011.1.4`` with that institution (XCN-9, else the sender) as assigner.
    """
    p = Parts(raw, d)
    staff_no = p(1)
    name = _name(p, 2, None, 10)
    if not staff_no and name is None:
        return None
    out: Json = {}
    if staff_no:
        namespace = p(9)
        system = hd_system(namespace, p(9, 2), p(9, 3))
        if system is not None:
            out["identifier"] = {"system": system, "value": staff_no}
        else:
            assigner = {"identifier": organization_identifier(namespace or institution)}
            out["identifier"] = {"system": STAFF_NO, "value": staff_no, "assigner": assigner}
    if name is not None:
        out["name"] = name
        out["display"] = name["text"]
    return out


def xcn_reference(raw: str, d: Delimiters, institution: str) -> Json | None:
    """An XCN as a logical Reference to a Practitioner (identifier and display; never a guessed id)."""
    person = xcn_practitioner(raw, d, institution)
    if person is None:
        return None
    ref: Json = {"type": "Practitioner"}
    if "identifier" in person:
        ref["identifier"] = person["identifier"]
    if "display" in person:
        ref["display"] = person["display"]
    return ref


def pl_reference(raw: str, d: Delimiters, institution: str) -> Json | None:
    """A PL as a logical Reference to a Location: department code (PL-1) under 1.26, PL-9 as display."""
    p = Parts(raw, d)
    point, room, bed = p(1), p(2), p(3)
    description = p(9)
    if not (point or room or bed or description):
        return None
    ref: Json = {"type": "Location"}
    code = "/".join(x for x in (point, room, bed) if x)
    if code:
        facility = p(4) or institution
        ref["identifier"] = {
            "system": DEPARTMENT_NO,
            "value": code,
            "assigner": {"identifier": organization_identifier(facility)},
        }
    ref["display"] = description or " ".join(x for x in (point, room, bed) if x)
    return ref
