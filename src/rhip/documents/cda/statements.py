"""Shared entry readers: clinical statements, their data-element codes, qualifiers and values."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from rhip.documents.cda.codes import DATA_ELEMENTS
from rhip.documents.cda.values import SHANGHAI, concept, number, quantity, string, time_of
from rhip.documents.cda.xmlpath import Element, attr, child, children, first, tag, xsi_type

STATEMENTS = frozenset(
    ("observation", "organizer", "substanceAdministration", "procedure", "act", "encounter", "supply")
)
_STATEMENT_TAGS = frozenset(tag(name) for name in STATEMENTS)
_CODE = tag("code")


def statement(entry: Element) -> Element | None:
    """The clinical statement an entry (or component / entryRelationship) holds."""
    for node in entry:
        if node.tag in _STATEMENT_TAGS:
            return node
    return None


def element_id(obs: Element | None) -> str:
    """The WS 363 data element an observation's code names (``DE04.10.174.00``), or empty."""
    code = first(obs, _CODE)
    if code is None or code.get("codeSystem") != DATA_ELEMENTS:
        return ""
    return (code.get("code") or "").strip()


def code_of(obs: Element | None) -> tuple[str, str, str]:
    """(code, codeSystem OID, displayName) of a statement's code."""
    code = child(obs, "code")
    return attr(code, "code"), attr(code, "codeSystem"), attr(code, "displayName")


def qualifier(obs: Element | None) -> str:
    """The qualifier name of a statement's code (主要诊断, 入院诊断 …), else empty."""
    return attr(child(obs, "code", "qualifier", "name"), "displayName")


def label(obs: Element | None) -> str:
    """What a statement's code calls the data (its displayName)."""
    return attr(child(obs, "code"), "displayName")


def components(organizer: Element) -> list[Element]:
    """The statements of an organizer's components."""
    out = []
    for comp in children(organizer, "component"):
        found = statement(comp)
        if found is not None:
            out.append(found)
    return out


def related(owner: Element) -> list[Element]:
    """The statements of an element's entryRelationships."""
    out = []
    for rel in children(owner, "entryRelationship"):
        found = statement(rel)
        if found is not None:
            out.append(found)
    return out


def by_element(statements: list[Element], *elements: str) -> Element | None:
    """The first statement coded with one of the data elements."""
    for found in statements:
        if element_id(found) in elements:
            return found
    return None


def value_of(obs: Element | None) -> Element | None:
    """An observation's (first) value."""
    return child(obs, "value")


def fhir_value(
    value: Element | None, zone: ZoneInfo = SHANGHAI, printed_unit: str | None = None
) -> dict[str, Any]:
    """An observation value as the FHIR ``value[x]`` it maps to (empty when absent or unknown)."""
    if value is None or attr(value, "nullFlavor"):
        return {}
    kind = xsi_type(value)
    if kind in ("PQ", "REAL"):
        found = quantity(value, printed_unit)
        return {"valueQuantity": found} if found else {}
    if kind == "INT":
        raw = attr(value, "value")
        return {"valueInteger": int(number(raw, value, integer=True))} if raw else {}
    if kind == "BL":
        raw = attr(value, "value")
        return {"valueBoolean": raw == "true"} if raw in ("true", "false") else {}
    if kind in ("TS", "IVL_TS"):
        when = time_of(value if kind == "TS" else child(value, "low"), zone)
        return {"valueDateTime": when} if when else {}
    if kind in ("CD", "CE", "CV", "CO", "CS"):
        found = concept(value)
        return {"valueCodeableConcept": found} if found else {}
    text_value = string(value)
    return {"valueString": text_value} if text_value else {}
