"""Checks of the HL7 v3 data types (datatypes-base.xsd, datatypes.xsd) that CDA R2 elements carry.

Each checker gets the element, its path and a ``report(path, message)`` callback, and checks what the
schema checks for that type: the attributes it allows, their lexical forms (uid, ts, cs, real, int, bl),
the element children (in order where the schema gives one) and whether character data is allowed.
Where the schema is silent but the value would be meaningless (an ``id`` with neither root nor
nullFlavor, a ``time`` without value), the checker says so too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from lxml import etree

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSI_TYPE = f"{{{XSI}}}type"
TYPE_ID_ROOT = "2.16.840.1.113883.1.3"

Report = Callable[[str, str], None]

NULL_FLAVORS = frozenset(
    {"NI", "OTH", "NINF", "PINF", "UNK", "ASKU", "NAV", "NASK", "TRC", "MSK", "NA", "NP"}
)
_OID = r"[0-2](\.(0|[1-9][0-9]*))*"
_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_RUID = r"[A-Za-z][A-Za-z0-9\-]*"
UID = re.compile(f"{_OID}|{_UUID}|{_RUID}")
TS_VALUE = re.compile(r"[0-9]{1,8}|([0-9]{9,14}|[0-9]{14}\.[0-9]+)([+\-][0-9]{1,4})?")
REAL = re.compile(r"[+\-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+\-]?[0-9]+)?")
INT = re.compile(r"[+\-]?[0-9]+")
TOKEN = re.compile(r"[^\s]+")

_CODED = frozenset({"code", "codeSystem", "codeSystemName", "codeSystemVersion", "displayName"})
_TEXT = frozenset({"language", "mediaType", "representation"})
_ED = _TEXT | {"compression", "integrityCheck", "integrityCheckAlgorithm"}
AD_PARTS = frozenset(
    {
        "delimiter", "country", "state", "county", "city", "postalCode", "streetAddressLine", "houseNumber",
        "houseNumberNumeric", "direction", "streetName", "streetNameBase", "streetNameType",
        "additionalLocator", "unitID", "unitType", "careOf", "censusTract", "deliveryAddressLine",
        "deliveryInstallationType", "deliveryInstallationArea", "deliveryInstallationQualifier",
        "deliveryMode", "deliveryModeIdentifier", "buildingNumberSuffix", "postBox", "precinct",
    }
)  # fmt: skip
_NAME_PARTS = {
    "EN": {"delimiter", "family", "given", "prefix", "suffix"},
    "ON": {"delimiter", "prefix", "suffix"},
}
_NAME_PARTS["PN"] = _NAME_PARTS["EN"]
# The types an ANY element (``value``) may name with xsi:type, and the checker each one uses.
VALUE_TYPES = {
    "ST": "ST", "SC": "SC", "ED": "ED", "CD": "CD", "CE": "CE", "CV": "CV", "CO": "CV", "CS": "CS",
    "II": "II", "TEL": "TEL", "AD": "AD", "PN": "PN", "ON": "ON", "EN": "EN", "BL": "BL", "BN": "BL",
    "INT": "INT", "REAL": "REAL", "PQ": "PQ", "MO": "MO", "TS": "TS", "IVL_PQ": "IVL_PQ",
    "IVL_TS": "IVL_TS", "IVL_INT": "IVL_INT", "IVL_REAL": "IVL_REAL", "PIVL_TS": "PIVL_TS",
    "EIVL_TS": "EIVL_TS", "RTO_PQ_PQ": "RTO_PQ_PQ", "RTO": "RTO_PQ_PQ",
}  # fmt: skip


def elements(el: etree._Element) -> list[etree._Element]:
    """The element children (comments and processing instructions left out)."""
    return [c for c in el if isinstance(c.tag, str)]


def local(el: etree._Element) -> str | None:
    """The local name of an element in the HL7 v3 namespace; None for any other namespace."""
    qname = etree.QName(el)
    return str(qname.localname) if qname.namespace == V3 else None


def child_paths(el: etree._Element, path: str) -> list[tuple[etree._Element, str]]:
    """The element children with their paths (``name[n]`` where a name repeats)."""
    kids = elements(el)
    names = [etree.QName(c).localname for c in kids]
    seen: dict[str, int] = {}
    out = []
    for child, name in zip(kids, names, strict=True):
        seen[name] = seen.get(name, 0) + 1
        suffix = f"[{seen[name]}]" if names.count(name) > 1 else ""
        out.append((child, f"{path}/{name}{suffix}"))
    return out


def check_attributes(
    el: etree._Element, path: str, report: Report, allowed: frozenset[str] | set[str]
) -> None:
    """Report attributes outside ``allowed`` (xsi:type is always allowed) and a bad nullFlavor."""
    for name in el.attrib:
        if name == XSI_TYPE:
            continue
        if name.startswith("{"):
            report(path, f"attribute {name} is not part of the CDA schema")
        elif name not in allowed and name != "nullFlavor":
            report(path, f"attribute @{name} is not allowed here")
    flavor = el.get("nullFlavor")
    if flavor is not None and flavor not in NULL_FLAVORS:
        report(path, f"@nullFlavor={flavor!r} is not a NullFlavor code")


def no_text(el: etree._Element, path: str, report: Report) -> None:
    """Report character data in an element whose type has element-only (or empty) content."""
    if (el.text or "").strip() or any((c.tail or "").strip() for c in el):
        report(path, "character data is not allowed here")


def _lexical(
    el: etree._Element, attr: str, pattern: re.Pattern[str], path: str, report: Report, what: str
) -> None:
    value = el.get(attr)
    if value is not None and not pattern.fullmatch(value):
        report(path, f"@{attr}={value!r} is not {what}")


def _only_children(
    el: etree._Element, path: str, report: Report, order: str
) -> list[tuple[etree._Element, str]]:
    """Check the children against a regex over ``name `` tokens; returns them with their paths."""
    kids = child_paths(el, path)
    names = "".join(f"{local(c) or etree.QName(c).text} " for c, _ in kids)
    if not re.fullmatch(order, names):
        report(path, f"children {names.strip()!r} do not fit the data type")
    return kids


def _empty(el: etree._Element, path: str, report: Report) -> None:
    if elements(el):
        report(path, "element children are not allowed here")
    no_text(el, path, report)


# -- the data types ---------------------------------------------------------------------------------------
def _ii(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, {"root", "extension", "assigningAuthorityName", "displayable"})
    _empty(el, path, report)
    if el.get("nullFlavor") is None:
        root = el.get("root")
        if root is None:
            report(path, "an identifier needs @root (or @nullFlavor)")
        elif not UID.fullmatch(root):
            report(path, f"@root={root!r} is not an OID, UUID or RUID")


def _type_id(el: etree._Element, path: str, report: Report) -> None:
    _ii(el, path, report)
    if el.get("root") != TYPE_ID_ROOT:
        report(path, f"typeId/@root must be {TYPE_ID_ROOT}")
    if not el.get("extension"):
        report(path, "typeId/@extension is required")


def _cs(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, {"code"})
    _empty(el, path, report)
    _lexical(el, "code", TOKEN, path, report, "a code (no spaces)")
    if el.get("code") is None and el.get("nullFlavor") is None:
        report(path, "a CS needs @code (or @nullFlavor)")


def _coded(kind: str) -> Callable[[etree._Element, str, Report], None]:
    order = {"CV": r"(originalText )?", "CE": r"(originalText )?(translation )*"}.get(
        kind, r"(originalText )?(qualifier )*(translation )*"
    )

    def check(el: etree._Element, path: str, report: Report) -> None:
        check_attributes(el, path, report, _CODED)
        no_text(el, path, report)
        _lexical(el, "code", TOKEN, path, report, "a code (no spaces)")
        _lexical(el, "codeSystem", UID, path, report, "an OID, UUID or RUID")
        for child, where in _only_children(el, path, report, order):
            name = local(child)
            if name == "originalText":
                _ed(child, where, report)
            elif name == "qualifier":
                _cr(child, where, report)
            elif name == "translation":
                _coded("CD")(child, where, report)

    return check


def _cr(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, {"inverted"})
    no_text(el, path, report)
    _lexical(el, "inverted", re.compile("true|false"), path, report, "true or false")
    for child, where in _only_children(el, path, report, r"(name )?(value )?"):
        _coded("CV" if local(child) == "name" else "CD")(child, where, report)


def _st(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, _TEXT)
    if elements(el):
        report(path, "a string holds character data only")


def _sc(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, _TEXT | _CODED)
    if elements(el):
        report(path, "a string holds character data only")


def _ed(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, _ED)
    _lexical(el, "representation", re.compile("B64|TXT"), path, report, "B64 or TXT")
    for child, where in _only_children(el, path, report, r"(reference )?(thumbnail )?"):
        (_tel if local(child) == "reference" else _ed)(child, where, report)


def _ts(el: etree._Element, path: str, report: Report, extra: frozenset[str] = frozenset()) -> None:
    check_attributes(el, path, report, {"value"} | extra)
    _empty(el, path, report)
    _lexical(el, "value", TS_VALUE, path, report, "an HL7 TS (YYYYMMDDHHMMSS)")
    _lexical(el, "inclusive", re.compile("true|false"), path, report, "true or false")
    if el.get("value") is None and el.get("nullFlavor") is None:
        report(path, "a point in time needs @value (or @nullFlavor)")


def _interval(
    point: Callable[[etree._Element, str, Report], None],
    value: re.Pattern[str],
    extra: frozenset[str] = frozenset(),
) -> Callable[[etree._Element, str, Report], None]:
    """An IVL_* checker: a @value, or bounds (low, high, width, center) of the ``point`` type."""

    def check(el: etree._Element, path: str, report: Report) -> None:
        check_attributes(el, path, report, {"value", "operator"} | extra)
        no_text(el, path, report)
        _lexical(el, "value", value, path, report, "a value of the interval's type")
        kids = _only_children(el, path, report, r"(low )?(width )?(high )?|center (width )?")
        if not kids and el.get("value") is None and el.get("nullFlavor") is None:
            report(path, "an interval needs a bound, @value or @nullFlavor")
        for child, where in kids:
            (_pq if local(child) == "width" else point)(child, where, report)

    return check


def _ivxb_ts(el: etree._Element, path: str, report: Report) -> None:
    _ts(el, path, report, frozenset({"inclusive"}))


def _pq(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, {"value", "unit", "inclusive"})
    no_text(el, path, report)
    _lexical(el, "value", REAL, path, report, "a number")
    _lexical(el, "unit", TOKEN, path, report, "a unit without spaces")
    for child, where in _only_children(el, path, report, r"(translation )*"):
        check_attributes(child, where, report, _CODED | {"value"})


def _number(
    pattern: re.Pattern[str], what: str, extra: frozenset[str] = frozenset()
) -> Callable[[etree._Element, str, Report], None]:
    def check(el: etree._Element, path: str, report: Report) -> None:
        check_attributes(el, path, report, {"value", "inclusive"} | extra)
        _empty(el, path, report)
        _lexical(el, "value", pattern, path, report, what)

    return check


def _sxcm_ts(el: etree._Element, path: str, report: Report) -> None:
    """A set of times: a TS, or the interval or periodic type that xsi:type names."""
    kind = type_name(el, path, report)
    if kind is None:
        _ts(el, path, report, frozenset({"operator"}))
    elif kind in ("IVL_TS", "PIVL_TS", "EIVL_TS"):
        check(kind, el, path, report)
    else:
        report(path, f"xsi:type {kind!r} is not a set of times")


def _pivl_ts(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, {"operator", "alignment", "institutionSpecified"})
    no_text(el, path, report)
    for child, where in _only_children(el, path, report, r"(phase )?(period )?"):
        (_ivl_ts if local(child) == "phase" else _pq)(child, where, report)


def _eivl_ts(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, {"operator"})
    no_text(el, path, report)
    for child, where in _only_children(el, path, report, r"(event )?(offset )?"):
        (_coded("CE") if local(child) == "event" else _ivl_pq)(child, where, report)


def _rto(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, set())
    no_text(el, path, report)
    for child, where in _only_children(el, path, report, r"numerator denominator "):
        _pq(child, where, report)


def _tel(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, {"value", "use"})
    no_text(el, path, report)
    if el.get("value") is None and el.get("nullFlavor") is None:
        report(path, "a telecom address needs @value (or @nullFlavor)")
    for child, where in _only_children(el, path, report, r"(useablePeriod )*"):
        _sxcm_ts(child, where, report)


def _ad(el: etree._Element, path: str, report: Report) -> None:
    check_attributes(el, path, report, {"use", "isNotOrdered"})
    for child, where in child_paths(el, path):
        name = local(child)
        if name == "useablePeriod":
            _sxcm_ts(child, where, report)
        elif name in AD_PARTS:
            check_attributes(child, where, report, {"partType"})
            if elements(child):
                report(where, "an address part holds character data only")
        else:
            report(where, f"<{etree.QName(child).localname}> is not an address part (AD)")


def _name(kind: str) -> Callable[[etree._Element, str, Report], None]:
    def check(el: etree._Element, path: str, report: Report) -> None:
        check_attributes(el, path, report, {"use"})
        for child, where in child_paths(el, path):
            name = local(child)
            if name == "validTime":
                _ivl_ts(child, where, report)
            elif name in _NAME_PARTS[kind]:
                check_attributes(child, where, report, {"qualifier", "partType"})
                if elements(child):
                    report(where, "a name part holds character data only")
            else:
                report(where, f"<{etree.QName(child).localname}> is not a name part ({kind})")

    return check


def _any(el: etree._Element, path: str, report: Report) -> None:
    """ANY (``value``): xsi:type must name a concrete data type, which then applies."""
    kind = type_name(el, path, report)
    if kind is None:
        report(path, "a value needs xsi:type (its type is ANY)")
    elif kind not in VALUE_TYPES:
        report(path, f"xsi:type {kind!r} is not a data type a value may take")
    else:
        check(VALUE_TYPES[kind], el, path, report)


def type_name(el: etree._Element, path: str, report: Report) -> str | None:
    """The local name xsi:type gives, checking that a prefix (if any) names the v3 namespace."""
    value = el.get(XSI_TYPE)
    if value is None:
        return None
    prefix, _, name = str(value).rpartition(":")
    if prefix and el.nsmap.get(prefix) != V3:
        report(path, f"xsi:type {value!r} is not a type of the HL7 v3 namespace")
    return name


_ivl_ts = _interval(_ivxb_ts, TS_VALUE)
_ivl_pq = _interval(_pq, REAL, frozenset({"unit"}))

CHECKERS: dict[str, Callable[[etree._Element, str, Report], None]] = {
    "II": _ii, "TypeId": _type_id, "CS": _cs, "CV": _coded("CV"), "CE": _coded("CE"), "CD": _coded("CD"),
    "ST": _st, "SC": _sc, "ED": _ed, "TS": _ts, "IVL_TS": _ivl_ts, "SXCM_TS": _sxcm_ts,
    "PIVL_TS": _pivl_ts, "EIVL_TS": _eivl_ts, "PQ": _pq, "IVL_PQ": _ivl_pq, "RTO_PQ_PQ": _rto,
    "INT": _number(INT, "an integer"), "IVL_INT": _interval(_number(INT, "an integer"), INT),
    "REAL": _number(REAL, "a number"), "IVL_REAL": _interval(_number(REAL, "a number"), REAL),
    "MO": _number(REAL, "a number", frozenset({"currency"})), "BL": _number(re.compile("true|false"), "true or false"),
    "TEL": _tel, "AD": _ad, "PN": _name("PN"), "EN": _name("EN"), "ON": _name("ON"), "ANY": _any,
}  # fmt: skip


def check(kind: str, el: etree._Element, path: str, report: Report) -> None:
    """Check ``el`` as the data type ``kind`` (a name in CHECKERS or StrucDocText)."""
    checker = CHECKERS.get(kind)
    if checker is None:
        raise KeyError(f"no checker for data type {kind!r}")
    checker(el, path, report)
