"""What the policy needs to know about a resource: its Patient, its security labels, its source."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from rhip.fhir.search.params import SearchParamRegistry, patient_compartment

# Resource types outside the Patient compartment that still carry resident data: only administrators and
# the platform search them; a Binary is read through the resource its securityContext names.
RESIDENT_DATA_OUTSIDE = frozenset({"Binary", "Bundle", "MessageHeader", "Linkage", "Task", "Communication"})
# Labels a source sets to keep a resource to itself (v3 Confidentiality: restricted, very restricted).
CONFIDENTIAL_CODES = ("R", "V")
SOURCE_PREFIX = "urn:rhip:source:"
# Channels an institution's data arrives through (meta.source urn:rhip:source:<channel>:<institution>).
SOURCE_CHANNELS = ("fhir", "v2", "v3", "cda", "mhd", "import")


@dataclass(frozen=True, slots=True)
class ResourceFacts:
    """The security-relevant facts of one resource."""

    resource_type: str
    id: str
    patient: str | None
    labels: frozenset[str]  # meta.security codes
    source: str | None  # meta.source


def uri_name(code: str) -> str:
    """An institution code as the doors write it into a ``urn:rhip:…`` URI (percent-encoded where a URI
    may not hold it; plain codes such as 510725H01 unchanged) — the same rule as the HL7 v2 mapping's."""
    return quote(code, safe=":.-_~@!$'()*+,;=")


def own_sources(institution: str | None) -> tuple[str, ...]:
    """The ``meta.source`` values of what an institution sends through any door (as written, and
    percent-encoded as the HL7 v2 door writes codes that need it)."""
    if not institution:
        return ()
    names = dict.fromkeys((institution, uri_name(institution)))
    return tuple(f"{SOURCE_PREFIX}{channel}:{name}" for name in names for channel in SOURCE_CHANNELS)


def source_institution(source: str | None) -> str | None:
    """The institution code of a ``urn:rhip:source:<channel>:<code>`` source, else None."""
    if not source or not source.startswith(SOURCE_PREFIX):
        return None
    parts = source[len(SOURCE_PREFIX) :].split(":", 1)
    return unquote(parts[1]) if len(parts) == 2 and parts[1] else None


class FactFinder:
    """Reads the Patient of a resource from its compartment parameters (as the store indexes it)."""

    def __init__(self, registry: SearchParamRegistry) -> None:
        self.registry = registry
        self.compartment = patient_compartment()

    def in_compartment(self, resource_type: str) -> bool:
        """Whether resources of this type can belong to a Patient's compartment."""
        return resource_type in self.compartment

    def facts(self, resource_type: str, resource: Mapping[str, Any]) -> ResourceFacts:
        """The facts of one resource (its JSON as a dict)."""
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        assert isinstance(meta, dict)
        labels = frozenset(
            str(c.get("code"))
            for c in meta.get("security") or ()
            if isinstance(c, dict) and c.get("code") is not None
        )
        source = meta.get("source") if isinstance(meta.get("source"), str) else None
        rid = str(resource.get("id") or "")
        return ResourceFacts(resource_type, rid, self.patient_of(resource_type, resource), labels, source)

    def patient_of(self, resource_type: str, resource: Mapping[str, Any]) -> str | None:
        """The Patient whose compartment holds the resource (the smallest id of the first parameter naming one)."""
        if resource_type == "Patient":
            rid = resource.get("id")
            return rid if isinstance(rid, str) else None
        for code in self.compartment.get(resource_type) or ():
            param = self.registry.get(resource_type, code)
            if param is None or param.extract is None:
                continue
            found = sorted(patient_ids(param.extract(dict(resource))))
            if found:
                return found[0]
        return None


def patient_ids(nodes: list[tuple[Any, str]]) -> set[str]:
    """Patient ids of reference nodes (``Patient/x``, with or without a base URL)."""
    out = set()
    for value, _type in nodes:
        ref = value.get("reference") if isinstance(value, dict) else None
        if isinstance(ref, str) and "Patient/" in ref:
            tail = ref.split("Patient/", 1)[1].split("/", 1)[0]
            if tail and len(tail) <= 64:
                out.add(tail)
    return out
