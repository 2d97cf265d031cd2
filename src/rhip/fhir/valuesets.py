"""The value sets named by required bindings of FHIR R4, as far as the official package enumerates them.

Loaded from ``data/r4-valuesets-required.json``. Value sets drawing on external code systems (BCP-47
languages, MIME types, UCUM, ISO 4217 currencies) are listed there as not enumerable: for those every
lookup answers ``None`` ("cannot tell") and the validator does not check the binding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from rhip.fhir.definitions import raw_table


@dataclass(frozen=True, slots=True)
class Expansion:
    """One enumerable value set: its (system, code) pairs, its codes alone and its code systems."""

    pairs: frozenset[tuple[str, str]]
    codes: frozenset[str]
    systems: frozenset[str]


class RequiredValueSets:
    """Membership tests against the enumerable required-binding value sets (expansions built once per url)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._raw: Mapping[str, Any] = data.get("expansions", {})
        self._not_enumerable = frozenset(data.get("notEnumerable", ()))
        self._built: dict[str, Expansion | None] = {}

    def expansion(self, url: str) -> Expansion | None:
        """The expansion of ``url``, or None when the value set is unknown or not enumerable."""
        try:
            return self._built[url]
        except KeyError:
            pass
        raw = None if url in self._not_enumerable else self._raw.get(url)
        found = None
        if raw is not None:
            pairs = frozenset((str(system), str(code)) for system, code in raw)
            found = Expansion(
                pairs, frozenset(code for _, code in pairs), frozenset(system for system, _ in pairs)
            )
        self._built[url] = found
        return found

    def contains(self, url: str, system: str | None, code: str) -> bool | None:
        """Whether the value set has ``code`` (in ``system`` when given); None when it cannot tell."""
        exp = self.expansion(url)
        if exp is None:
            return None
        if system is None:
            return code in exp.codes
        return (system, code) in exp.pairs

    def codes(self, url: str) -> frozenset[str] | None:
        """Every code of the value set regardless of system, or None when it cannot tell."""
        exp = self.expansion(url)
        return None if exp is None else exp.codes

    def systems(self, url: str) -> frozenset[str] | None:
        """The code systems the value set draws on, or None when it cannot tell."""
        exp = self.expansion(url)
        return None if exp is None else exp.systems


@cache
def required_valuesets() -> RequiredValueSets:
    """The process-wide required-binding value sets."""
    return RequiredValueSets(raw_table("r4-valuesets-required.json"))
