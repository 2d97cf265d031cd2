"""Code systems as versioned data files: what a code means, what it belongs under, since and until when.

A code table is a CSV file in ``data/`` (or anywhere an operator keeps one): ``#`` lines first, each
``key: value`` (``name``, ``title``, ``url``, ``valueset``, ``version``, ``source``, ``verified``, ``content``;
a line starting with ``#`` and spaces continues the previous value), then the columns ``code, display,
display_en, parent, verified, valid_from, valid_to``. ``parent`` makes the hierarchy ``$subsumes`` answers
from; ``verified`` says whether the row was checked against the standard's text (``no``: keyed in from
secondary sources, see the file's ``verified`` line); ``valid_from``/``valid_to`` (ISO dates, inclusive) date
codes that come and go, such as divisions merged or renamed (GB/T 2260). ``content`` is ``complete`` (the
default: every code of the standard is listed, so a code not listed is wrong and validation on write refuses
it) or ``fragment`` (a subset, such as the ICD-10 codes the platform's rules use: a code not listed is only
a warning).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

COLUMNS = ("code", "display", "display_en", "parent", "verified", "valid_from", "valid_to")
REQUIRED_META = ("name", "url", "version", "source")
CONTENTS = ("complete", "fragment")


class CodeTableError(ValueError):
    """A code table file that cannot be read as one."""


@dataclass(frozen=True, slots=True)
class Concept:
    """One code of a code system."""

    code: str
    display: str
    display_en: str = ""
    parent: str | None = None
    verified: bool = True
    valid_from: date | None = None
    valid_to: date | None = None
    retired: bool = (
        False  # kept so old records still read, but no longer to be used (a registered dictionary's)
    )

    def valid_on(self, day: date | None) -> bool:
        """Whether the code is in force on ``day`` (any day when None)."""
        if day is None:
            return True
        return (self.valid_from is None or self.valid_from <= day) and (
            self.valid_to is None or day <= self.valid_to
        )


@dataclass(frozen=True)
class CodeSystem:
    """A code system with its concepts (in file order) and where its content comes from."""

    url: str
    name: str
    version: str
    source: str
    title: str = ""
    valueset: str | None = None  # the value set of all its codes
    verified_note: str = ""
    content: str = "complete"  # or "fragment": not every code of the standard is listed
    concepts: tuple[Concept, ...] = ()
    by_code: Mapping[str, Concept] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, meta: Mapping[str, str], concepts: Iterable[Concept]) -> CodeSystem:
        """A code system from its metadata and concepts; CodeTableError when they do not fit together."""
        missing = [k for k in REQUIRED_META if not meta.get(k)]
        if missing:
            raise CodeTableError(f"code table without {', '.join(missing)}")
        content = meta.get("content") or "complete"
        if content not in CONTENTS:
            raise CodeTableError(f"{meta['url']}: content is complete or fragment, not {content!r}")
        listed = tuple(concepts)
        by_code: dict[str, Concept] = {}
        for concept in listed:
            if concept.code in by_code:
                raise CodeTableError(f"{meta['url']}: code {concept.code!r} is listed twice")
            by_code[concept.code] = concept
        for concept in listed:
            if concept.parent is not None and concept.parent not in by_code:
                raise CodeTableError(
                    f"{meta['url']}: {concept.code!r} names an unknown parent {concept.parent!r}"
                )
        system = cls(
            url=meta["url"],
            name=meta["name"],
            version=meta["version"],
            source=meta["source"],
            title=meta.get("title", ""),
            valueset=meta.get("valueset") or None,
            verified_note=meta.get("verified", ""),
            content=content,
            concepts=listed,
            by_code=by_code,
        )
        for concept in listed:
            system.ancestors(concept.code)  # a cycle of parents is an error of the file, found now
        return system

    def ancestors(self, code: str) -> tuple[str, ...]:
        """The codes above ``code``, nearest first."""
        out: list[str] = []
        current = self.by_code[code].parent
        while current is not None:
            if current in out or current == code:
                raise CodeTableError(f"{self.url}: the parents of {code!r} go round in a circle")
            out.append(current)
            current = self.by_code[current].parent
        return tuple(out)

    def children(self) -> dict[str, tuple[str, ...]]:
        """The codes directly under each code that has some (in file order)."""
        below: dict[str, list[str]] = {}
        for c in self.concepts:
            if c.parent is not None:
                below.setdefault(c.parent, []).append(c.code)
        return {k: tuple(v) for k, v in below.items()}

    def to_fhir(self) -> dict[str, Any]:
        """The FHIR R4 CodeSystem resource (its content, hierarchy by ``parent`` property)."""
        concepts = []
        for c in self.concepts:
            concept: dict[str, Any] = {"code": c.code, "display": c.display}
            if c.display_en:
                concept["designation"] = [{"language": "en", "value": c.display_en}]
            props: list[dict[str, Any]] = []
            if c.parent is not None:
                props.append({"code": "parent", "valueCode": c.parent})
            if c.valid_from is not None:
                props.append({"code": "valid-from", "valueDateTime": c.valid_from.isoformat()})
            if c.valid_to is not None:
                props.append({"code": "valid-to", "valueDateTime": c.valid_to.isoformat()})
            if not c.verified:
                props.append({"code": "verified", "valueBoolean": False})
            if props:
                concept["property"] = props
            concepts.append(concept)
        resource: dict[str, Any] = {
            "resourceType": "CodeSystem",
            "url": self.url,
            "version": self.version,
            "name": _fhir_name(self.name),
            "title": self.title or self.name,
            "status": "active",
            "description": f"Source: {self.source}"
            + (f". Verified: {self.verified_note}" if self.verified_note else ""),
            "caseSensitive": True,
            "hierarchyMeaning": "is-a",
            "content": self.content,
            "count": len(self.concepts),
            "property": [
                {"code": "parent", "type": "code", "description": "the code this one is a kind of"},
                {"code": "valid-from", "type": "dateTime", "description": "in force from this day"},
                {"code": "valid-to", "type": "dateTime", "description": "in force until this day"},
                {
                    "code": "verified",
                    "type": "boolean",
                    "description": "false: not checked against the standard",
                },
            ],
            "concept": concepts,
        }
        if self.valueset:
            resource["valueSet"] = self.valueset
        return resource


def _fhir_name(name: str) -> str:
    # CodeSystem.name is machine-friendly: letters and digits of the standard's number.
    head = name.split(" ")
    kept = "".join(ch for ch in " ".join(head[:2]) if ch.isascii() and ch.isalnum())
    return kept or "CodeSystem"


def _day(text: str, where: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise CodeTableError(f"{where}: {text!r} is not a date (YYYY-MM-DD)") from exc


def parse_code_table(text: str, where: str = "code table") -> CodeSystem:
    """A code system from the text of a code table file."""
    meta: dict[str, str] = {}
    body: list[str] = []
    last: str | None = None
    for line in text.splitlines():
        if line.startswith("#") and not body:
            content = line[1:]
            if content.startswith("  ") and last is not None:
                meta[last] += " " + content.strip()
                continue
            key, sep, value = content.strip().partition(":")
            if sep:
                last = key.strip().lower()
                meta[last] = value.strip()
            continue
        body.append(line)
    body = [line for line in body if line.strip()]
    if not body or tuple(h.strip() for h in next(csv.reader([body[0]]))) != COLUMNS:
        raise CodeTableError(f"{where}: the first line after the # lines must be {','.join(COLUMNS)}")
    rows = list(csv.DictReader(io.StringIO("\n".join(body))))
    concepts = []
    for n, row in enumerate(rows, start=2):
        at = f"{where} row {n}"
        code = (row["code"] or "").strip()
        if not code or not (row["display"] or "").strip():
            raise CodeTableError(f"{at}: a code and its display are required")
        verified = (row["verified"] or "yes").strip().lower()
        if verified not in ("yes", "no"):
            raise CodeTableError(f"{at}: verified is yes or no, not {verified!r}")
        concepts.append(
            Concept(
                code=code,
                display=row["display"].strip(),
                display_en=(row["display_en"] or "").strip(),
                parent=(row["parent"] or "").strip() or None,
                verified=verified == "yes",
                valid_from=_day((row["valid_from"] or "").strip(), at),
                valid_to=_day((row["valid_to"] or "").strip(), at),
            )
        )
    try:
        return CodeSystem.of(meta, concepts)
    except CodeTableError as exc:
        raise CodeTableError(f"{where}: {exc}") from exc


def code_system_from_fhir(resource: Mapping[str, Any]) -> CodeSystem:
    """A code system from a FHIR R4 CodeSystem resource (nested concepts or ``parent`` properties, ``status``).

    Used for the dictionaries institutions register through the HL7 v3 terminology service, which the store
    keeps as CodeSystem resources; CodeTableError when the resource cannot be read as one.
    """
    url = resource.get("url")
    if not isinstance(url, str) or not url:
        raise CodeTableError("a CodeSystem without url")
    concepts: list[Concept] = []

    def walk(items: Any, parent: str | None) -> None:
        if not isinstance(items, list):
            raise CodeTableError(f"{url}: CodeSystem.concept is a list")
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("code"), str):
                raise CodeTableError(f"{url}: a concept without a code")
            props = {
                p.get("code"): next((v for k, v in p.items() if k.startswith("value")), None)
                for p in item.get("property") or ()
                if isinstance(p, dict)
            }
            english = [
                d.get("value")
                for d in item.get("designation") or ()
                if isinstance(d, dict) and d.get("language") == "en"
            ]
            where = f"{url} {item['code']!r}"
            concepts.append(
                Concept(
                    code=item["code"],
                    display=str(item.get("display") or ""),
                    display_en=str(english[0]) if english else "",
                    parent=str(props["parent"]) if props.get("parent") else parent,
                    verified=props.get("verified") is not False,
                    valid_from=_day(str(props.get("valid-from") or "")[:10], where),
                    valid_to=_day(str(props.get("valid-to") or "")[:10], where),
                    retired=props.get("status") in ("retired", "inactive", "deprecated"),
                )
            )
            walk(item.get("concept") or [], item["code"])

    walk(resource.get("concept") or [], None)
    content = str(resource.get("content") or "complete")
    meta = {
        "url": url,
        "name": str(resource.get("title") or resource.get("name") or url),
        "title": str(resource.get("title") or ""),
        "version": str(resource.get("version") or "unversioned"),
        "source": str(resource.get("publisher") or resource.get("description") or "registered in the store"),
        "valueset": str(resource.get("valueSet") or ""),
        "content": content if content in CONTENTS else "fragment",
    }
    return CodeSystem.of(meta, concepts)


def read_code_table(path: Path) -> CodeSystem:
    """A code system from a code table file."""
    return parse_code_table(path.read_text(encoding="utf-8"), str(path))


@cache
def builtin_code_systems() -> tuple[CodeSystem, ...]:
    """The code tables shipped with the platform (``rhip/terminology/data/*.csv``), read once."""
    folder = resources.files("rhip.terminology") / "data"
    return tuple(
        parse_code_table(entry.read_text(encoding="utf-8"), f"data/{entry.name}")
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".csv")
    )
