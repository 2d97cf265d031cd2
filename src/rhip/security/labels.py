"""Sensitivity labels: which resources a resident's consent can hold back by category (精神卫生, 艾滋病 …).

Sources may label resources themselves (``meta.security``); on every write the platform adds the category
label of any ICD-10 code in a sensitive block (data/sensitivity.json names the source and the blocks), so
a consent "do not share my mental-health records" also covers data whose sender did not label it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

# The elements of clinical resources that carry their diagnosis or finding codes.
CODED_ELEMENTS = ("code", "reasonCode", "valueCodeableConcept", "diagnosis", "reasonReference")


@dataclass(frozen=True)
class Category:
    """A sensitivity category: its v3 ActCode, labels and ICD-10 block ranges (inclusive, 3-character)."""

    code: str
    zh: str
    en: str
    ranges: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SensitivityTable:
    """The categories and the code systems they read."""

    label_system: str
    confidentiality_system: str
    icd10_systems: frozenset[str]
    categories: tuple[Category, ...]

    def categories_of(self, icd10: str) -> set[str]:
        """The categories an ICD-10 code falls in."""
        block = icd10.strip().upper()[:3]
        return {c.code for c in self.categories if any(lo <= block <= hi for lo, hi in c.ranges)}

    def label(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource with the labels its codes call for added (the same object when none are missing).

        A DocumentReference's own ``securityLabel`` (a CDA's confidentialityCode, an MHD submission's
        labels) is copied into ``meta.security`` too, where the policy and the search index read labels.
        """
        found: set[tuple[str, str]] = set()
        for system, code in _codings(resource):
            if system in self.icd10_systems:
                found |= {(self.label_system, c) for c in self.categories_of(code)}
        if resource.get("resourceType") == "DocumentReference":
            for concept in resource.get("securityLabel") or ():
                for coding in (concept or {}).get("coding") or () if isinstance(concept, dict) else ():
                    if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                        found.add((str(coding.get("system") or ""), coding["code"]))
        if not found:
            return resource
        meta = dict(resource.get("meta") or {})
        security = list(meta.get("security") or [])
        have = {(s.get("system"), s.get("code")) for s in security if isinstance(s, dict)}
        added = [
            {"system": system, "code": code} if system else {"code": code}
            for system, code in sorted(found)
            if (system or None, code) not in have and (system, code) not in have
        ]
        if not added:
            return resource
        meta["security"] = security + added
        return {**resource, "meta": meta}


def _codings(resource: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key in CODED_ELEMENTS:
        yield from _walk(resource.get(key))


def _walk(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, list):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, dict):
        coding = value.get("coding")
        if isinstance(coding, list):
            for c in coding:
                if (
                    isinstance(c, dict)
                    and isinstance(c.get("system"), str)
                    and isinstance(c.get("code"), str)
                ):
                    yield c["system"], c["code"]
        # Encounter.diagnosis.condition is a reference; its Condition is labelled on its own write.
        for nested in ("condition", "code"):
            if nested in value and nested != "coding" and isinstance(value[nested], dict | list):
                yield from _walk(value[nested])


@cache
def sensitivity_table() -> SensitivityTable:
    """The packaged sensitivity table."""
    data = json.loads(files("rhip.security").joinpath("data/sensitivity.json").read_text(encoding="utf-8"))
    return SensitivityTable(
        label_system=data["label_system"],
        confidentiality_system=data["confidentiality_system"],
        icd10_systems=frozenset(data["icd10_systems"]),
        categories=tuple(
            Category(code, c["zh"], c["en"], tuple((lo, hi) for lo, hi in c["icd10"]))
            for code, c in data["categories"].items()
        ),
    )
