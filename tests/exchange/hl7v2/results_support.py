"""What the ORU, VXU, order and MDM tests share: their mapping table and the counts of what they store
(golden files and the FHIR service come from ``golden_support``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v2.mapping import Mapped, Mapper, MappingError, map_message, mdm, orders, oru, vxu

from . import golden_support as golden
from .golden_support import (
    CORPUS,
    GOLDEN,
    UPDATE,
    cases,
    context,
    load,
    load_bytes,
    map_file,
    platform,
    post,
    search,
    statuses,
)

__all__ = [
    "GOLDEN",
    "RESULT_MAPPERS",
    "UPDATE",
    "cases",
    "check_golden",
    "context",
    "corpus",
    "counts",
    "load",
    "map_bytes",
    "mapped",
    "platform",
    "post",
    "search",
    "statuses",
    "storable",
    "store_twice",
]

RESULT_MAPPERS: dict[str, Mapper] = {**oru.MAPPERS, **vxu.MAPPERS, **orders.MAPPERS, **mdm.MAPPERS}
STORED_TYPES = (
    "Organization",
    "Patient",
    "Encounter",
    "ServiceRequest",
    "Specimen",
    "Observation",
    "DiagnosticReport",
    "Immunization",
    "DocumentReference",
)


def map_bytes(raw: bytes) -> Mapped:
    """The mapping of message bytes, with this helper's mappers."""
    message = load_bytes(raw)
    return map_message(message, context(message), RESULT_MAPPERS)


def mapped(path: Path) -> Mapped:
    """The mapping of a message file."""
    return map_file(path, RESULT_MAPPERS)


def check_golden(path: Path) -> None:
    """Compare a file's mapping with its expected JSON (rewritten with RHIP_UPDATE_GOLDEN=1)."""
    golden.check_golden(path, RESULT_MAPPERS)


def storable(prefix: str, exclude: frozenset[str] | set[str] = frozenset()) -> list[Path]:
    """The golden inputs of ``prefix`` that map (those refused with a MappingError left out)."""
    found = []
    for path in cases(prefix):
        if path.stem in exclude:
            continue
        try:
            mapped(path)
        except MappingError:
            continue
        found.append(path)
    return found


def corpus(*codes: str) -> list[Path]:
    """The public sample messages whose MSH-9.1 is one of ``codes``."""
    found = []
    for path in sorted(CORPUS.glob("*.hl7")):
        head = path.read_bytes().lstrip(b"\xef\xbb\xbf").split(b"\r", 1)[0].split(b"\n", 1)[0]
        fields = head.split(b"|")
        if len(fields) > 8 and fields[8].split(b"^")[0].decode() in codes:
            found.append(path)
    return found


def counts(platform: Platform) -> dict[str, int]:
    """How many resources of each type the result mappers write are stored."""
    return {t: len(search(platform, t)) for t in STORED_TYPES}


def store_twice(platform: Platform, paths: list[Path]) -> dict[str, int]:
    """Store each message's bundle twice; the second time must create nothing. The counts after."""
    for path in paths:
        bundle = mapped(path).bundle
        post(platform, bundle)
        before = counts(platform)
        again = post(platform, bundle)
        assert "201" not in statuses(again), path.name
        assert counts(platform) == before, path.name
    return counts(platform)


def without(resource: dict[str, Any], *keys: str) -> dict[str, Any]:
    """A resource without the given top-level keys."""
    return {k: v for k, v in resource.items() if k not in keys}
