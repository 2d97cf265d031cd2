"""Readers of FHIR R4 resources as plain dicts (the shapes the platform stores), shared by the CDA writers
and the synthetic generator's HL7 v2 and v3 writers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

Resource = Mapping[str, Any]

CST = timezone(timedelta(hours=8))
_CST_OFFSET = timedelta(hours=8)


def ts(value: str | datetime | None) -> str:
    """An HL7 TS in China Standard Time without offset, as the WS/T 500 samples write it."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        if "T" not in value:  # a FHIR date, year-month or year: already local
            return value.replace("-", "")
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None and value.utcoffset() != _CST_OFFSET:
        value = value.astimezone(CST)
    # Plain formatting: strftime costs several times more and this runs for every timestamp.
    return f"{value.year:04d}{value.month:02d}{value.day:02d}{value.hour:02d}{value.minute:02d}{value.second:02d}"


def day(value: str | datetime | None) -> datetime | None:
    """The moment as an aware datetime in CST (dates at midnight), for arithmetic."""
    if value is None or value == "":
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=CST) if moment.tzinfo is None else moment.astimezone(CST)


def identifier(resource: Resource | None, system: str) -> str | None:
    """The value of the resource's first identifier in ``system``."""
    if resource is None:
        return None
    for ident in resource.get("identifier", ()):
        if ident.get("system") == system and ident.get("value"):
            return str(ident["value"])
    return None


def identifier_with_prefix(resource: Resource, prefix: str) -> str | None:
    """The value of the first identifier whose system starts with ``prefix`` (local namespaces)."""
    for ident in resource.get("identifier", ()):
        if str(ident.get("system", "")).startswith(prefix) and ident.get("value"):
            return str(ident["value"])
    return None


def coding(concept: Resource | None, system: str | None = None) -> Resource | None:
    """The first coding of a CodeableConcept, or its first coding in ``system``."""
    if not concept:
        return None
    for item in concept.get("coding", ()):
        if system is None or item.get("system") == system:
            return item  # type: ignore[no-any-return]
    return None


def text(concept: Resource | None) -> str:
    """What a person reads for a CodeableConcept: its text, else the first display or code."""
    if not concept:
        return ""
    if concept.get("text"):
        return str(concept["text"])
    first = coding(concept)
    return str(first.get("display") or first.get("code") or "") if first else ""


def has_category(resource: Resource, code: str) -> bool:
    """Whether any category coding of the resource has ``code``."""
    return any(c.get("code") == code for cat in resource.get("category", ()) for c in cat.get("coding", ()))


def extension(resource: Resource, url: str) -> Resource | None:
    """The resource's extension with ``url``."""
    return next((e for e in resource.get("extension", ()) if e.get("url") == url), None)


def person_name(resource: Resource | None) -> str:
    """The official (else first) name of a Patient or Practitioner as one string."""
    if not resource:
        return ""
    names = resource.get("name") or ()
    if isinstance(names, str):
        return names
    if not names:
        return ""
    name = next((n for n in names if n.get("use") == "official"), names[0])
    return str(name.get("text") or (name.get("family", "") + "".join(name.get("given", ()))))


def ref_id(reference: Resource | None) -> str:
    """The id part of a reference ``Type/id``."""
    if not reference or not reference.get("reference"):
        return ""
    return str(reference["reference"]).rpartition("/")[2]


def oid(system: str | None) -> str | None:
    """The OID of a ``urn:oid:`` system; None for systems of our own or web URLs."""
    if system and system.startswith("urn:oid:"):
        return system[8:]
    return None
