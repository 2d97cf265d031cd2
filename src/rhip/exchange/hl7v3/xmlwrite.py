"""Writing HL7 v3 XML in the layout of the Chinese platform samples (R2-style data types, platform OIDs).

Answers are built as lxml trees in the ``urn:hl7-org:v3`` namespace; FHIR shapes go back to the same data
types the requests use (``<id><item/></id>``, ``LIST_EN`` names with one ``part``, ``DSET_TEL`` …) so that a
sender can read an answer with the code it writes its requests with.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lxml import etree

from rhip.exchange.hl7v3.datatypes import ORGANIZATION_ROOT, ii_of, root_of
from rhip.exchange.hl7v3.xmlread import HL7_NS, XSI_NS, Element

NSMAP = {None: HL7_NS, "xsi": XSI_NS}
_XSI_TYPE = f"{{{XSI_NS}}}type"


def root_element(name: str) -> Element:
    """A new interaction root (``ITSVersion="XML_1.0"``) with the HL7 and xsi namespaces declared."""
    return etree.Element(f"{{{HL7_NS}}}{name}", {"ITSVersion": "XML_1.0"}, nsmap=NSMAP)


def detached(name: str, **attrs: str | None) -> Element:
    """An element in the HL7 namespace with no parent yet (a ``controlActProcess`` an answer appends)."""
    clean = {k: v for k, v in attrs.items() if v}
    return etree.Element(f"{{{HL7_NS}}}{name}", clean, nsmap=NSMAP)


def add(
    parent: Element, name: str, attrs: Mapping[str, str | None] | None = None, **kw: str | None
) -> Element:
    """A child element in the HL7 namespace; attributes whose value is None or "" are left out."""
    values = {**(attrs or {}), **kw}
    clean = {(_XSI_TYPE if k == "xsi_type" else k): v for k, v in values.items() if v}
    return etree.SubElement(parent, f"{{{HL7_NS}}}{name}", clean)


def add_ids(parent: Element, items: Iterable[Mapping[str, str]], tag: str = "id") -> Element | None:
    """An R2-style ``<id><item …/></id>`` with one item per attribute set (nothing when empty)."""
    listed = [i for i in items if i]
    if not listed:
        return None
    wrapper = add(parent, tag)
    for item in listed:
        add(wrapper, "item", item)
    return wrapper


def add_org_ids(parent: Element, code: str, tag: str = "id") -> Element | None:
    """An institution identifier (root 2.16.156.10011.1.5)."""
    return add_ids(parent, [{"root": ORGANIZATION_ROOT, "extension": code}], tag) if code else None


def add_name(parent: Element, text: str | None, tag: str = "name") -> Element | None:
    """A ``LIST_EN`` name with the whole name in one part, as the samples write Chinese names."""
    if not text:
        return None
    name = add(parent, tag, xsi_type="LIST_EN")
    add(add(name, "item"), "part", value=text)
    return name


def add_coded(
    parent: Element, tag: str, coding: Mapping[str, Any] | None, system_name: str | None = None
) -> Element | None:
    """A CD with its ``displayName`` child, from a FHIR Coding."""
    if not coding or not coding.get("code"):
        return None
    system = str(coding.get("system") or "")
    element = add(parent, tag, code=str(coding["code"]), codeSystem=root_of(system) or system or None)
    if system_name:
        element.set("codeSystemName", system_name)
    if coding.get("display"):
        add(element, "displayName", value=str(coding["display"]))
    return element


def add_telecom(parent: Element, points: Iterable[Mapping[str, Any]]) -> Element | None:
    """A ``DSET_TEL`` from FHIR ContactPoints (plain numbers, ``mailto:`` for e-mail)."""
    values = [
        ("mailto:" if p.get("system") == "email" else "") + str(p["value"]) for p in points if p.get("value")
    ]
    if not values:
        return None
    telecom = add(parent, "telecom", xsi_type="DSET_TEL")
    for text in values:
        add(telecom, "item", value=text)
    return telecom


def add_address(parent: Element, addresses: Iterable[Mapping[str, Any]], xsi_type: str) -> Element | None:
    """An address (the first of ``addresses``) as one item of typed parts."""
    first = next(iter(addresses), None)
    if not first:
        return None
    parts = (
        ("SAL", first.get("text")),
        ("STA", first.get("state")),
        ("CTY", first.get("city")),
        ("CNT", first.get("district")),
        ("STR", "".join(first.get("line") or ())),
        ("ZIP", first.get("postalCode")),
    )
    present = [(kind, str(text)) for kind, text in parts if text]
    if not present:
        return None
    addr = add(parent, "addr", xsi_type=xsi_type)
    item = add(addr, "item")
    for kind, text in present:
        add(item, "part", type=kind, value=text)
    return addr


def identifier_items(identifiers: Iterable[Mapping[str, Any]]) -> list[tuple[dict[str, str], str]]:
    """The II attributes and scoping institution of FHIR identifiers (see ``datatypes.ii_of``)."""
    return [
        ii_of(str(i.get("system") or ""), str(i["value"]))
        for i in identifiers
        if i.get("value") and i.get("system")
    ]


def serialize(element: Element) -> bytes:
    """UTF-8 XML with a declaration."""
    return bytes(etree.tostring(element, xml_declaration=True, encoding="UTF-8"))
