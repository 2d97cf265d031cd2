"""Reading HL7 v3 XML by local names, tolerant of the namespace and of both data-type releases.

Senders write the messages in the ``urn:hl7-org:v3`` namespace, or strip it (some integration code removes
``xmlns`` before it parses), so elements are matched by local name only. Identifiers come as R2-style
``<id><item root= extension=/></id>`` (the Chinese samples) or R1-style ``<id root= extension=/>``; both
are read. Every helper returns plain values; the data-type readers turn them into FHIR shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

from lxml import etree

from rhip.exchange.hl7v3.errors import MissingElement

HL7_NS = "urn:hl7-org:v3"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

Element: TypeAlias = etree._Element


def local(element: Element) -> str:
    """The element's name without its namespace ("" for comments and processing instructions)."""
    tag = element.tag
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def elements(element: Element) -> Iterator[Element]:
    """The child elements (comments and processing instructions skipped)."""
    return (c for c in element if isinstance(c.tag, str))


def children(element: Element, name: str) -> list[Element]:
    """The child elements called ``name``."""
    return [c for c in elements(element) if local(c) == name]


def child(element: Element | None, name: str) -> Element | None:
    """The first child element called ``name``."""
    if element is None:
        return None
    return next((c for c in elements(element) if local(c) == name), None)


def find(element: Element | None, path: str) -> Element | None:
    """The first element at ``path`` ("a/b/c", local names), following the first match at each step."""
    for step in path.split("/"):
        element = child(element, step)
        if element is None:
            return None
    return element


def find_all(element: Element | None, path: str) -> list[Element]:
    """Every element at ``path``, following every match at each step."""
    found = [element] if element is not None else []
    for step in path.split("/"):
        found = [c for e in found for c in children(e, step)]
    return found


def require(element: Element, path: str) -> Element:
    """The element at ``path``; MissingElement naming it when absent."""
    found = find(element, path)
    if found is None:
        raise MissingElement(f"{path_of(element)}/{path} is required", location=f"{path_of(element)}/{path}")
    return found


def attr(element: Element | None, name: str) -> str:
    """An attribute's value, stripped ("" when absent)."""
    if element is None:
        return ""
    value = element.get(name)
    return value.strip() if value else ""


def value(element: Element | None, path: str = "", attribute: str = "value") -> str:
    """The ``value`` attribute (or ``attribute``) of the element at ``path``; its text when it has none."""
    target = find(element, path) if path else element
    if target is None:
        return ""
    found = attr(target, attribute)
    if found:
        return found
    return (target.text or "").strip() if len(target) == 0 else ""


def path_of(element: Element) -> str:
    """The path of local names from the document root to ``element`` (for acknowledgement locations)."""
    names = []
    node: Element | None = element
    while node is not None:
        names.append(local(node))
        node = node.getparent()
    return "/".join(reversed(names))


@dataclass(frozen=True)
class II:
    """An instance identifier: root (OID or UUID) and extension."""

    root: str
    extension: str
    authority: str = ""  # assigningAuthorityName, where a sender names a non-OID namespace

    @property
    def value(self) -> str:
        """The identifier's value: the extension, or the root alone when there is none."""
        return self.extension or self.root


def ids(element: Element | None) -> list[II]:
    """The identifiers of an ``id`` (or ``value``) element: its ``item`` children, else itself."""
    if element is None:
        return []
    items = children(element, "item") or [element]
    out = []
    for item in items:
        root, extension = attr(item, "root"), attr(item, "extension")
        if (root or extension) and not attr(item, "nullFlavor"):
            out.append(II(root, extension, attr(item, "assigningAuthorityName")))
    return out


def ids_at(element: Element | None, path: str) -> list[II]:
    """The identifiers of every element at ``path``."""
    return [i for e in find_all(element, path) for i in ids(e)]


def id_with_root(identifiers: list[II], root: str) -> str:
    """The extension of the first identifier under ``root`` ("" when none)."""
    return next((i.extension for i in identifiers if i.root == root and i.extension), "")


def display_name(element: Element) -> str:
    """A CD's display name: ``displayName`` attribute or the ``displayName/@value`` child the samples use."""
    return attr(element, "displayName") or value(child(element, "displayName"))
