"""The synthetic region's ground truth for CDA extraction: the FHIR resources each document was rendered from.

Every CDA document of ``var/ex-small/cda/<institution>.zip`` is named ``<code>-<encounter id>.xml``;
its data are the FHIR resources of that encounter in ``var/ex-small/fhir/<institution>.ndjson``. Both
sides are reduced to comparable facts per resource type (values as numbers, codes as strings).
"""

from __future__ import annotations

import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

EX_SMALL = Path(__file__).resolve().parents[3] / "var" / "ex-small"
Resource = dict[str, Any]


def documents() -> Iterator[tuple[str, str, bytes]]:
    """(institution, entry name, bytes) of every synthetic CDA document."""
    for archive in sorted((EX_SMALL / "cda").glob("*.zip")):
        with zipfile.ZipFile(archive) as zf:
            for name in sorted(zf.namelist()):
                yield archive.stem, name, zf.read(name)


class Truth:
    """The FHIR resources of one institution, by the encounter they belong to."""

    def __init__(self, institution: str) -> None:
        self.by_encounter: dict[str, list[Resource]] = defaultdict(list)
        self.immunizations: list[Resource] = []
        self.encounters: dict[str, Resource] = {}
        for line in (EX_SMALL / "fhir" / f"{institution}.ndjson").read_bytes().splitlines():
            resource = orjson.loads(line)
            kind = resource["resourceType"]
            if kind == "Encounter":
                self.encounters[resource["id"]] = resource
            elif kind == "Immunization":
                self.immunizations.append(resource)
            ref = (resource.get("encounter") or resource.get("context") or {}).get("reference", "")
            if ref.startswith("Encounter/"):
                self.by_encounter[ref.removeprefix("Encounter/")].append(resource)

    def of(self, encounter_id: str, kind: str) -> list[Resource]:
        """The encounter's resources of one type."""
        return [r for r in self.by_encounter.get(encounter_id, []) if r["resourceType"] == kind]


def _codes(concept: dict[str, Any] | None, system: str | None = None) -> tuple[str, ...]:
    return tuple(
        c["code"] for c in (concept or {}).get("coding", ()) if system is None or c.get("system") == system
    )


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _quantity(q: dict[str, Any] | None) -> tuple[Any, ...]:
    q = q or {}
    return (_num(q.get("value")), q.get("code"), q.get("unit"))


def observation_facts(o: Resource) -> tuple[Any, ...]:
    """What a CDA carries of an Observation (the lab's local code excepted)."""
    ranges = tuple(
        (
            _num(r.get("low", {}).get("value")),
            _num(r.get("high", {}).get("value")),
            r.get("low", {}).get("unit"),
        )
        for r in o.get("referenceRange", ())
    )
    return (
        _codes(o.get("category", [{}])[0]),
        _codes(o["code"], "http://loinc.org"),
        o.get("effectiveDateTime"),
        _quantity(o.get("valueQuantity")),
        tuple(sorted((_codes(c["code"]), _quantity(c.get("valueQuantity"))) for c in o.get("component", ()))),
        tuple(_codes(i) for i in o.get("interpretation", ())),
        ranges,
    )


def condition_facts(c: Resource) -> tuple[Any, ...]:
    """Codes, name, dates, categories and case class of a Condition."""
    case = next((e["valueCoding"]["code"] for e in c.get("extension", ()) if "case-class" in e["url"]), None)
    return (
        tuple(sorted(_codes(c["code"]))),
        c["code"].get("text"),
        c.get("onsetDateTime"),
        c.get("recordedDate"),
        tuple(sorted(code for cat in c.get("category", ()) for code in _codes(cat))),
        case,
    )


def medication_facts(m: Resource) -> tuple[Any, ...]:
    """Prescription number, drug, dosage text, time, quantity and status of a MedicationRequest."""
    number = next((i["value"] for i in m.get("identifier", ()) if i["system"].endswith(".1.20")), None)
    dosage = (m.get("dosageInstruction") or [{}])[0]
    return (
        number,
        _codes(m["medicationCodeableConcept"], "http://www.whocc.no/atc"),
        m["medicationCodeableConcept"].get("text"),
        dosage.get("text"),
        m.get("authoredOn"),
        _quantity((m.get("dispenseRequest") or {}).get("quantity")),
        m.get("status"),
    )


def immunization_facts(i: Resource) -> tuple[Any, ...]:
    """Vaccine, time, lot, dose number and recorded time of an Immunization."""
    return (
        tuple(c.get("system") for c in i["vaccineCode"]["coding"]),
        _codes(i["vaccineCode"]),
        i["vaccineCode"].get("text"),
        i.get("occurrenceDateTime"),
        i.get("lotNumber"),
        tuple(p.get("doseNumberPositiveInt") for p in i.get("protocolApplied", ())),
        i.get("status"),
    )


def multiset(items: list[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
    """A comparable multiset of facts."""
    return Counter(items)
