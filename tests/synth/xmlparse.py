"""Reading XML in the synth tests as a receiver should: no entities, no network, no DTD."""

from __future__ import annotations

from lxml import etree

HARDENED = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def parse(document: bytes) -> etree._Element:
    """Parse a message or document with the hardened parser."""
    return etree.fromstring(document, HARDENED)
