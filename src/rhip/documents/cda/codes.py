"""Code tables kept as data files in ``data/``: code systems (OID → FHIR system) and vital-sign elements."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

# WS 363 卫生信息数据元目录 and the identifier / code-system OIDs of cn-standards.md §3.3.
DATA_ELEMENTS = "2.16.156.10011.2.2.1"
DOCUMENT_CODES = "2.16.156.10011.2.4"
ICD10_OID = "2.16.156.10011.2.3.3.11"
ICD10 = f"urn:oid:{ICD10_OID}"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def read_table(name: str) -> list[dict[str, str]]:
    """The rows of a package data file (CSV with ``#`` comment lines before the header)."""
    raw = resources.files("rhip.documents.cda").joinpath("data").joinpath(name).read_text(encoding="utf-8")
    lines = [line for line in raw.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(lines))


@cache
def _systems() -> tuple[dict[str, str], dict[str, str]]:
    by_oid: dict[str, str] = {}
    by_name: dict[str, str] = {}
    for row in read_table("code-systems.csv"):
        if row["oid"]:
            by_oid[row["oid"]] = row["system"]
        if row["name"]:
            by_name[row["name"]] = row["system"]
    return by_oid, by_name


def fhir_system(oid: str, name: str = "") -> str | None:
    """The FHIR system of a CDA codeSystem (``urn:oid:`` for unlisted OIDs); by name when no OID is given."""
    by_oid, by_name = _systems()
    if oid:
        return by_oid.get(oid) or f"urn:oid:{oid}"
    return by_name.get(name)


@dataclass(frozen=True, slots=True)
class VitalSign:
    """One vital sign: its WS 363 element, the LOINC code and the units."""

    element: str
    name: str
    loinc: str
    ucum: str
    printed: str


@cache
def vital_signs() -> dict[str, VitalSign]:
    """Vital signs by WS 363 data element id."""
    return {
        row["element"]: VitalSign(row["element"], row["name"], row["loinc"], row["ucum"], row["printed"])
        for row in read_table("vital-signs.csv")
    }


@cache
def vital_loincs() -> frozenset[str]:
    """The LOINC codes of vital signs (entries coded in LOINC instead of a data element)."""
    return frozenset(v.loinc for v in vital_signs().values()) | {"85354-9", "8302-2", "8306-3", "9843-4"}


@cache
def printed_units() -> dict[str, str]:
    """UCUM unit → the unit as printed on Chinese forms (mm[Hg] → mmHg)."""
    return {v.ucum: v.printed for v in vital_signs().values()}
