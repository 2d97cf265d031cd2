"""HL7 v3 data types as FHIR R4 shapes: TS, EN/PN, AD, TEL, CD and II.

Conventions follow the Chinese platform samples (cn-standards.md §1) and the synthetic region's FHIR
(``var/ex-small/fhir``), which is what a v3 message should come out as:
- a TS without offset is local time (Asia/Shanghai by default); dates stay dates;
- a name written as one ``part`` is split into surname and given name (compound surnames kept together);
- address parts follow the samples' use: SAL whole text, STA province, CTY city, CNT county/district,
  STB township, STR street/village, BNR house number, ZIP postcode;
- plain phone numbers are ``phone`` (``mobile`` when they look like a Chinese mobile number), ``mailto:``
  is ``email``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from rhip.exchange.hl7v3.errors import BadValue
from rhip.exchange.hl7v3.xmlread import (
    II,
    Element,
    attr,
    child,
    children,
    display_name,
    elements,
    local,
    path_of,
    value,
)

OID = re.compile(r"^[0-2](\.(0|[1-9]\d*))+$")
LOCAL_PATIENT_ROOT = "2.16.156.10011.2.5.1.4"  # 本地系统患者ID
DOMAIN_ROOT = "2.16.156.10011.2.5.1.5"  # 域ID: the institution the local id belongs to
ORGANIZATION_ROOT = "2.16.156.10011.1.5"
MRN_PREFIX = "urn:rhip:mrn:"

# Compound surnames (复姓) of 《百家姓》 and a few others; any other name's surname is its first character.
_COMPOUND_SURNAMES = frozenset(
    [
        "万俟",
        "司马",
        "上官",
        "欧阳",
        "夏侯",
        "诸葛",
        "闻人",
        "东方",
        "赫连",
        "皇甫",
        "尉迟",
        "公羊",
        "澹台",
        "公冶",
        "濮阳",
        "淳于",
        "单于",
        "太叔",
        "申屠",
        "公孙",
        "仲孙",
        "轩辕",
        "令狐",
        "宇文",
        "长孙",
        "慕容",
        "鲜于",
        "闾丘",
        "司徒",
        "司空",
        "亓官",
        "司寇",
        "仉督",
        "子车",
        "颛孙",
        "端木",
        "巫马",
        "公西",
        "漆雕",
        "壤驷",
        "公良",
        "拓跋",
        "夹谷",
        "宰父",
        "东郭",
        "南门",
        "呼延",
        "归海",
        "羊舌",
        "微生",
        "东门",
        "西门",
        "南宫",
        "第五",
        "百里",
        "独孤",
    ]
)
_HAN = re.compile(r"^[\u3400-\u9fff\u00b7]+$")
_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")
_MOBILE = re.compile(r"^(\+?86)?1[3-9]\d{9}$")
_TEL_USE = {
    "H": "home",
    "HP": "home",
    "HV": "home",
    "WP": "work",
    "MC": "mobile",
    "PG": "mobile",
    "TMP": "temp",
}


def oid_system(root: str) -> str:
    """The FHIR system of an II root: ``urn:oid:`` for an OID, the root itself for a URI."""
    return f"urn:oid:{root}" if OID.match(root) else root


def root_of(system: str) -> str:
    """The II root of a FHIR system, "" when the system is not an OID."""
    return system.removeprefix("urn:oid:") if system.startswith("urn:oid:") else ""


def parse_ts(text: str, zone: ZoneInfo, where: str) -> str:
    """A TS as a FHIR date (up to a day) or dateTime with offset (a time without offset is ``zone``)."""
    raw = text.strip()
    if re.match(r"^\d{4}-\d{2}", raw):  # some senders write ISO 8601
        raw = re.sub(r"[-:T ]", "", raw)
        raw = re.sub(r"Z$", "+0000", raw)
    found = _TS.match(raw)
    if not found:
        raise BadValue(f"{where} is not an HL7 timestamp (YYYYMMDDHHMMSS): {text[:40]!r}", location=where)
    year, month, day, hour, minute, second, fraction, offset = found.groups()
    try:
        if hour is None:
            datetime(int(year), int(month or 1), int(day or 1))
            return "-".join(p for p in (year, month, day) if p)
        moment = datetime(
            int(year), int(month or 1), int(day or 1), int(hour), int(minute or 0), int(second or 0)
        )
    except ValueError:
        raise BadValue(f"{where} is not a valid date: {text[:40]!r}", location=where) from None
    if offset:
        sign = 1 if offset[0] == "+" else -1
        hours, minutes = int(offset[1:3]), int(offset[3:5])
        tz = f"{'+' if sign > 0 else '-'}{hours:02d}:{minutes:02d}"
    else:
        tz = moment.replace(tzinfo=zone).strftime("%z")
        tz = f"{tz[:3]}:{tz[3:]}"
    frac = fraction or ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + frac + tz


def ts_of(element: Element | None, zone: ZoneInfo) -> str | None:
    """The FHIR date/dateTime of a TS element's ``value`` (None when absent or null)."""
    if element is None:
        return None
    text = attr(element, "value")
    return parse_ts(text, zone, path_of(element)) if text else None


def birth_date(element: Element | None, zone: ZoneInfo) -> str | None:
    """A birthTime as a FHIR date (a time of birth is cut to the day)."""
    moment = ts_of(element, zone)
    return moment[:10] if moment else None


def format_ts(moment: datetime, zone: ZoneInfo) -> str:
    """An aware datetime as a TS in ``zone`` (YYYYMMDDHHMMSS, no offset, as the samples write them)."""
    return moment.astimezone(zone).strftime("%Y%m%d%H%M%S")


def fhir_to_ts(moment: str) -> str:
    """A FHIR date or dateTime as a TS, keeping its offset."""
    digits = re.sub(r"[-:T]", "", moment)
    if "+" in digits or digits.endswith("Z"):
        digits = digits.replace("Z", "+0000")
    return digits


def split_han_name(name: str) -> tuple[str, str]:
    """(surname, given name) of a Han name: a compound surname of the table, else the first character."""
    if len(name) >= 3 and name[:2] in _COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[:1], name[1:]


def _item(element: Element) -> Element:
    """The first ``item`` of a DSET/LIST (R2 data types), or the element itself (R1)."""
    found = child(element, "item")
    return found if found is not None else element


def human_name(element: Element | None) -> dict[str, Any] | None:
    """An EN/PN (LIST_EN items of parts, typed parts, or R1 family/given) as a FHIR HumanName."""
    if element is None or attr(element, "nullFlavor"):
        return None
    item = _item(element)
    family, given, untyped = [], [], []
    for part in elements(item):
        text = value(part)
        kind = attr(part, "type") if local(part) == "part" else local(part)
        if not text or kind in ("PFX", "SFX", "TITLE", "DEL", "prefix", "suffix", "delimiter"):
            continue
        if kind in ("FAM", "family"):
            family.append(text)
        elif kind in ("GIV", "given"):
            given.append(text)
        else:
            untyped.append(text)
    if not (family or given or untyped) and len(item) == 0 and (item.text or "").strip():
        untyped.append((item.text or "").strip())
    if not (family or given or untyped):
        return None
    if family or given:
        han = all(_HAN.match(p) for p in family + given)
        text = ("" if han else " ").join(family + given)
        out: dict[str, Any] = {"use": "official", "text": text}
        if family:
            out["family"] = "".join(family) if han else " ".join(family)
        if given:
            out["given"] = given
        return out
    text = ("" if all(_HAN.match(p) for p in untyped) else " ").join(untyped)
    out = {"use": "official", "text": text}
    if _HAN.match(text) and len(text) >= 2:
        surname, rest = split_han_name(text)
        out["family"], out["given"] = surname, [rest]
    return out


def name_text(element: Element | None) -> str:
    """The whole name written in an EN (organization names, query parameters)."""
    found = human_name(element)
    return str(found["text"]) if found else ""


def address(element: Element | None, use: str | None = None) -> dict[str, Any] | None:
    """An AD (its first ``item``, or itself) as a FHIR Address."""
    if element is None or attr(element, "nullFlavor"):
        return None
    item = _item(element)
    parts: dict[str, list[str]] = {}
    for part in elements(item):
        kind = attr(part, "type") if local(part) == "part" else local(part)
        text = value(part)
        if text:
            parts.setdefault(kind, []).append(text)
    first = {k: v[0] for k, v in parts.items()}
    line = "".join(
        "".join(parts.get(k, []))
        for k in ("STB", "STR", "streetName", "BNR", "houseNumber", "ADL", "DAL", "streetAddressLine")
    )
    out: dict[str, Any] = {}
    wanted = use or {"H": "home", "HP": "home", "WP": "work", "TMP": "temp"}.get(attr(item, "use"))
    if wanted:
        out["use"] = wanted
    text = first.get("SAL") or ""
    state = first.get("STA") or first.get("state")
    city = first.get("CTY") or first.get("city")
    district = first.get("CNT") or first.get("CPA") or first.get("county")
    if not text and (state or city or district or line):
        text = "".join(p for p in (state, city, district, line) if p)
    if text:
        out["text"] = text
    if line:
        out["line"] = [line]
    for key, found in (("city", city), ("district", district), ("state", state)):
        if found:
            out[key] = found
    zip_code = first.get("ZIP") or first.get("postalCode")
    if zip_code:
        out["postalCode"] = zip_code
    return out if set(out) - {"use"} else None


def telecoms(element: Element | None, mobile_default: bool = True) -> list[dict[str, Any]]:
    """A TEL or DSET_TEL as FHIR ContactPoints."""
    if element is None:
        return []
    out = []
    for item in children(element, "item") or [element]:
        raw = attr(item, "value")
        if not raw or attr(item, "nullFlavor"):
            continue
        scheme, _, rest = raw.partition(":")
        system, number = "phone", raw
        if scheme.lower() in ("tel", "mailto", "fax") and rest:
            system = {"tel": "phone", "mailto": "email", "fax": "fax"}[scheme.lower()]
            number = rest.lstrip("/")
        point: dict[str, Any] = {"system": system, "value": number}
        use = _TEL_USE.get(attr(item, "use").split(" ")[0])
        if use:
            point["use"] = use
        elif system == "phone" and mobile_default and _MOBILE.match(number.replace("-", "")):
            point["use"] = "mobile"
        out.append(point)
    return out


def coding(element: Element | None, system: str | None = None) -> dict[str, Any] | None:
    """A CD/CE/CV as a FHIR Coding (``system`` when the element names none); None when null or absent."""
    if element is None:
        return None
    code = attr(element, "code")
    if not code or attr(element, "nullFlavor"):
        return None
    oid = attr(element, "codeSystem")
    out: dict[str, Any] = {"system": oid_system(oid) if oid else system, "code": code}
    if out["system"] is None:
        del out["system"]
    shown = display_name(element)
    if shown:
        out["display"] = shown
    return out


def identifier_system(ii: II, institution: str | None) -> str | None:
    """The FHIR system of an identifier; local patient ids need the institution (None without it)."""
    if ii.root == LOCAL_PATIENT_ROOT:
        return f"{MRN_PREFIX}{institution}" if institution else None
    if ii.root:
        return oid_system(ii.root)
    return ii.authority or None


def ii_of(system: str, value_: str) -> tuple[dict[str, str], str]:
    """The II attributes of a FHIR identifier, and the institution scoping it ("" when none)."""
    if system.startswith(MRN_PREFIX):
        return {"root": LOCAL_PATIENT_ROOT, "extension": value_}, system.removeprefix(MRN_PREFIX)
    root = root_of(system)
    if root:
        return {"root": root, "extension": value_}, ""
    return {"extension": value_, "assigningAuthorityName": system}, ""
