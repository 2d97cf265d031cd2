"""A section's coded entries in words, for sections that carry no narrative (many WS/T samples leave ``text`` empty).

:func:`describe_entries` turns each entry into a :class:`Line` — ``检验项目代码：空腹血糖（1558-6）`` — with the
statements it groups (organizer components, entryRelationships) as nested lines. It reads any clinical
statement of CDA R2 and every data type a ``value`` may have; it never fails on unexpected content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from rhip.cda.datatypes import V3, XSI_TYPE

NS = {"v3": V3}
_STATEMENTS = (
    "act", "encounter", "observation", "observationMedia", "organizer", "procedure", "regionOfInterest",
    "substanceAdministration", "supply",
)  # fmt: skip


@dataclass
class Line:
    """One statement in words and the statements it groups."""

    text: str
    children: list[Line] = field(default_factory=list)


def _local(el: etree._Element) -> str | None:
    qname = etree.QName(el)
    return str(qname.localname) if qname.namespace == V3 else None


def _child(el: etree._Element, name: str) -> etree._Element | None:
    return el.find(f"{{{V3}}}{name}")


def _flat(el: etree._Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def ts_text(value: str) -> str:
    """20230311103000 → 2023-03-11 10:30 (as much as the value holds)."""
    digits = value.split("+", maxsplit=1)[0].split("-", maxsplit=1)[0].split(".", maxsplit=1)[0]
    if not digits.isdigit():
        return value
    date = "-".join(p for p in (digits[:4], digits[4:6], digits[6:8]) if p)
    return f"{date} {digits[8:10]}:{digits[10:12] or '00'}" if len(digits) >= 10 else date


def coded_text(el: etree._Element | None) -> str:
    """A CD/CE as ``display（code）``; the display alone, the code alone, or the original text."""
    if el is None:
        return ""
    display = el.get("displayName") or _flat(_child(el, "originalText"))
    code = el.get("code")
    if display and code and display != code:
        return f"{display}（{code}）"
    return display or code or ""


def value_text(el: etree._Element) -> str:
    """A ``value`` (ANY) in words, by its xsi:type."""
    kind = (el.get(XSI_TYPE) or "").rpartition(":")[2]
    if kind in ("CD", "CE", "CV", "CO", "CS"):
        return coded_text(el)
    if kind in ("PQ", "MO"):
        unit = el.get("unit") or el.get("currency") or ""
        return f"{el.get('value', '')} {unit if unit != '1' else ''}".strip()
    if kind == "TS":
        return ts_text(el.get("value", ""))
    if kind in ("IVL_PQ", "IVL_TS", "IVL_INT"):
        low, high = _child(el, "low"), _child(el, "high")
        bounds = [str(b.get("value", "")) for b in (low, high) if b is not None]
        return "–".join(ts_text(b) if kind == "IVL_TS" else b for b in bounds)
    if kind in ("INT", "REAL", "BL"):
        return str(el.get("value", ""))
    if kind == "II":
        return str(el.get("extension") or el.get("root") or "")
    return _flat(el)


def _name(statement: etree._Element) -> str:
    code = _child(statement, "code")
    if code is not None:
        name = code.get("displayName") or _flat(_child(code, "originalText")) or code.get("code") or ""
        qualifier = code.find(f"{{{V3}}}qualifier/{{{V3}}}name")
        label = qualifier.get("displayName") if qualifier is not None else None
        return f"{name}（{label}）" if label and label not in name else name
    return ""


def _drug(statement: etree._Element) -> str:
    product = statement.find(f"{{{V3}}}consumable/{{{V3}}}manufacturedProduct")
    if product is None:
        return ""
    item = product.find(f"{{{V3}}}manufacturedLabeledDrug")
    if item is None:
        item = product.find(f"{{{V3}}}manufacturedMaterial")
    if item is None:
        return ""
    return _flat(_child(item, "name")) or coded_text(_child(item, "code"))


def statement_line(statement: etree._Element) -> Line:
    """One clinical statement (and what it groups) in words."""
    kind = _local(statement)
    parts: list[str] = []
    name = _name(statement)
    if kind == "substanceAdministration":
        parts.append(_drug(statement))
        dose = _child(statement, "doseQuantity")
        if dose is not None and dose.get("value"):
            parts.append(f"{dose.get('value')} {dose.get('unit', '')}".strip())
        route = _child(statement, "routeCode")
        if route is not None:
            parts.append(coded_text(route))
    values = [value_text(v) for v in statement.findall(f"{{{V3}}}value")]
    text = _flat(_child(statement, "text"))
    effective = _child(statement, "effectiveTime")
    when = ""
    if effective is not None:
        low = _child(effective, "low")
        when = ts_text(effective.get("value") or (low.get("value", "") if low is not None else ""))
    body = "，".join(p for p in [*parts, *values, text] if p)
    line = f"{name}：{body}" if name and body else name or body
    if when and line:
        line = f"{line}（{when}）"
    children = [
        statement_line(s)
        for holder in statement
        if _local(holder) in ("component", "entryRelationship")
        for s in holder
        if _local(s) in _STATEMENTS
    ]
    return Line(line, children)


def describe_entries(section: etree._Element) -> list[Line]:
    """The section's entries in words, in document order."""
    return [
        statement_line(statement)
        for entry in section.findall(f"{{{V3}}}entry")
        for statement in entry
        if _local(statement) in _STATEMENTS
    ]
