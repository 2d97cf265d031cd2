"""Hardened XML parsing for every XML door (HL7 v3, CDA, SOAP): no DTD, no entities, no network, size limits.

lxml resolves entities and may load external DTDs unless told otherwise; a document type declaration is
refused outright, so neither XXE nor "billion laughs" expansion can reach the parser. Depth and size limits
stop documents built to exhaust memory or the stack.
"""

from __future__ import annotations

import re

from lxml import etree

from rhip.core.errors import InvalidRequest, PayloadTooLarge

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_DEPTH = 256
# libxml2 itself refuses deeper nesting unless huge_tree is on (it is off here): no walk needed up to this.
_LIBXML_MAX_DEPTH = 256
_DOCTYPE = re.compile(rb"<!\s*doctype", re.IGNORECASE)


class XmlRejected(InvalidRequest):
    """The XML is malformed, declares a DTD or entities, or exceeds the depth limit."""

    code = "RHIP-XML-0001"


class XmlTooLarge(PayloadTooLarge):
    """The XML document is larger than the configured limit."""

    code = "RHIP-XML-0002"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


def parse_xml(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, max_depth: int = DEFAULT_MAX_DEPTH
) -> etree._Element:
    """The root element of ``data``; raises XmlRejected or XmlTooLarge for anything unsafe or malformed."""
    if len(data) > max_bytes:
        raise XmlTooLarge(f"XML document of {len(data):,} bytes exceeds the limit of {max_bytes:,} bytes")
    if not data.strip():
        raise XmlRejected("empty XML document")
    # Entities can only be declared in a DOCTYPE, which only the prolog may hold: refused before parsing.
    # One further down (after a long comment) is caught below; entities are never expanded either way.
    if _DOCTYPE.search(data, 0, 4096):
        raise XmlRejected("XML with a document type declaration or entities is not accepted")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (0, 0)
        raise XmlRejected(f"malformed XML at line {line}, column {column}: {exc.msg}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRejected("XML with a document type declaration or entities is not accepted")
    if max_depth < _LIBXML_MAX_DEPTH:
        _check_depth(root, max_depth)
    return root


def _check_depth(root: etree._Element, max_depth: int) -> None:
    """Refuse nesting deeper than ``max_depth`` (iterative: a deep document must not blow the stack)."""
    stack: list[tuple[etree._Element, int]] = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        if depth > max_depth:
            raise XmlRejected(f"XML nested deeper than {max_depth} elements")
        stack.extend((child, depth + 1) for child in element)


def local_name(element: etree._Element) -> str:
    """The element's name without its namespace."""
    return str(etree.QName(element).localname)
