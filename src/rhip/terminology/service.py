"""The terminology service: look up, validate, expand and compare codes of the platform's code systems.

It holds the code tables (:mod:`rhip.terminology.codesystems`) and the value sets built from them, and
answers for the value sets of FHIR R4's required bindings too (their codes only, from the official
package: :mod:`rhip.fhir.valuesets`). Everything is in memory and built once, so a code check is a set
membership test: validation on every write can afford it. The store's validator asks it for required
bindings (:meth:`TerminologyService.expansion`) and for every Coding of a held, complete code system
(:meth:`TerminologyService.coding_problem`); the store hands it each incoming resource first
(:meth:`TerminologyService.prepare`) so that mapped local codes get their standard codes
(:mod:`rhip.terminology.mapping`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from rhip.core.errors import InvalidRequest
from rhip.fhir.valuesets import Expansion, RequiredValueSets
from rhip.terminology.codesystems import CodeSystem, Concept
from rhip.terminology.conceptmaps import ConceptMap, ConceptMapError, concept_map_from_fhir
from rhip.terminology.mapping import ConceptMaps, Translation
from rhip.terminology.registered import RegisteredSystems

Subsumption = Literal["equivalent", "subsumes", "subsumed-by", "not-subsumed"]


class UnknownTerminology(LookupError):
    """A code system or value set the service does not hold."""


@dataclass(frozen=True, slots=True)
class Member:
    """One code of a value set's expansion."""

    system: str
    code: str
    display: str = ""
    display_en: str = ""


@dataclass(frozen=True)
class ValueSet:
    """A value set enumerated by its members (in order)."""

    url: str
    name: str
    members: tuple[Member, ...]
    version: str = ""

    def pairs(self) -> frozenset[tuple[str, str]]:
        """Its (system, code) pairs."""
        return frozenset((m.system, m.code) for m in self.members)


@dataclass(frozen=True)
class Lookup:
    """What ``$lookup`` answers of a code."""

    system: CodeSystem
    concept: Concept
    ancestors: tuple[str, ...]
    children: tuple[str, ...]


@dataclass(frozen=True)
class Validation:
    """What ``$validate-code`` answers."""

    result: bool
    message: str = ""
    display: str = ""


@dataclass(frozen=True)
class ExpansionPage:
    """A page of a value set's members that match a filter."""

    valueset: ValueSet
    total: int
    offset: int
    members: tuple[Member, ...]


class TerminologyService:
    """Code systems and value sets by canonical URL (plain dicts, built at start)."""

    def __init__(
        self,
        systems: Iterable[CodeSystem],
        required: RequiredValueSets | None = None,
        maps: ConceptMaps | None = None,
        registered: RegisteredSystems | None = None,
    ) -> None:
        self.systems: dict[str, CodeSystem] = {}
        self.valuesets: dict[str, ValueSet] = {}
        self.required = required
        self.maps = maps if maps is not None else ConceptMaps()
        self.registered = registered if registered is not None else RegisteredSystems()
        self._expansions: dict[str, Expansion] = {}  # held value sets as the validator reads them
        self._pairs: dict[str, frozenset[tuple[str, str]]] = {}
        self._systems_of: dict[str, dict[str, str]] = {}  # held value set -> code -> its system
        self._required_sets: dict[str, ValueSet] = {}  # required-binding value sets, enumerated once
        self._children: dict[str, dict[str, tuple[str, ...]]] = {}
        for system in systems:
            self.add(system)

    def add(self, system: CodeSystem) -> None:
        """Hold ``system`` (and its all-codes value set); a newer table of the same URL replaces the older."""
        self.systems[system.url] = system
        self._children[system.url] = system.children()
        if system.valueset:
            members = tuple(Member(system.url, c.code, c.display, c.display_en) for c in system.concepts)
            vs = ValueSet(system.valueset, system.name, members, system.version)
            self.valuesets[vs.url] = vs
            self._pairs[vs.url] = vs.pairs()
            self._systems_of[vs.url] = {m.code: m.system for m in members}
            self._expansions.pop(vs.url, None)

    def code_system(self, url: str) -> CodeSystem:
        """The code system of ``url`` (a table, else a registered dictionary); UnknownTerminology when neither."""
        found = self.systems.get(url) or self.registered.get(url)
        if found is None:
            raise UnknownTerminology(f"the code system {url!r} is not known here")
        return found

    # -- $lookup -----------------------------------------------------------------------------------
    def lookup(self, system: str, code: str) -> Lookup | None:
        """The concept of ``code`` in ``system`` with its place in the hierarchy (None: no such code)."""
        cs = self.code_system(system)
        concept = cs.by_code.get(code)
        if concept is None:
            return None
        held = self._children.get(cs.url)
        below = held.get(code, ()) if held is not None else self.registered.children(cs.url, code)
        return Lookup(cs, concept, cs.ancestors(code), below)

    # -- $validate-code ----------------------------------------------------------------------------
    def validate_code(
        self,
        code: str,
        *,
        system: str | None = None,
        valueset: str | None = None,
        display: str | None = None,
        on: date | None = None,
    ) -> Validation:
        """Whether ``code`` is in ``valueset`` (or in ``system``), in force ``on`` that day, with that display."""
        if valueset is None and system is None:
            raise ValueError("validate a code against a value set or a code system")
        if valueset is not None:
            if system is not None:
                found = (system, code) in self._value_set_pairs(valueset)
            else:
                held = self._systems_of.get(valueset)
                if held is not None:
                    system = held.get(code)  # the member's own system: its display and dates are checked
                    found = system is not None
                else:
                    expansion = self.required.expansion(valueset) if self.required is not None else None
                    if expansion is None:
                        raise UnknownTerminology(
                            f"the value set {valueset!r} is not known here (or not enumerable)"
                        )
                    found = code in expansion.codes
            if not found:
                return Validation(False, f"code {code!r} is not in the value set {valueset}")
            if system is None or (system not in self.systems and self.registered.get(system) is None):
                return Validation(True)
        assert system is not None
        cs = self.code_system(system)
        concept = cs.by_code.get(code)
        if concept is None:
            return Validation(False, f"code {code!r} is not in the code system {system} ({cs.name})")
        if concept.retired:
            return Validation(False, f"code {code!r} of {cs.name} is retired", concept.display)
        if not concept.valid_on(on):
            return Validation(False, f"code {code!r} of {cs.name} is not in force on {on}", concept.display)
        if display is not None and display not in (concept.display, concept.display_en):
            return Validation(
                False,
                f"the display of {code!r} in {cs.name} is {concept.display!r}, not {display!r}",
                concept.display,
            )
        return Validation(True, "", concept.display)

    def _value_set_pairs(self, url: str) -> frozenset[tuple[str, str]]:
        pairs = self._pairs.get(url)
        if pairs is not None:
            return pairs
        expansion = self.required.expansion(url) if self.required is not None else None
        if expansion is None:
            raise UnknownTerminology(f"the value set {url!r} is not known here (or not enumerable)")
        return expansion.pairs

    # -- $expand -----------------------------------------------------------------------------------
    def value_set(self, url: str) -> ValueSet:
        """The value set of ``url`` (a required-binding one has codes without displays)."""
        held = self.valuesets.get(url) or self._required_sets.get(url)
        if held is not None:
            return held
        pairs = self._value_set_pairs(url)
        members = tuple(Member(s, c) for s, c in sorted(pairs))
        built = self._required_sets[url] = ValueSet(url, url.rsplit("/", 1)[-1], members)
        return built

    def expand(
        self, url: str, *, text: str | None = None, offset: int = 0, count: int | None = None
    ) -> ExpansionPage:
        """The members of ``url`` whose code or display contains ``text`` (case-insensitive), a page of them."""
        vs = self.value_set(url)
        members: Sequence[Member] = vs.members
        if text:
            needle = text.casefold()
            members = [
                m for m in members
                if needle in m.code.casefold() or needle in m.display.casefold() or needle in m.display_en.casefold()
            ]  # fmt: skip
        if offset < 0 or (count is not None and count < 0):
            raise ValueError("offset and count are not negative")
        page = members[offset : None if count is None else offset + count]
        return ExpansionPage(vs, len(members), offset, tuple(page))

    # -- $subsumes ---------------------------------------------------------------------------------
    def subsumes(self, system: str, code_a: str, code_b: str) -> Subsumption:
        """How ``code_a`` relates to ``code_b`` in the hierarchy of ``system``."""
        cs = self.code_system(system)
        for code in (code_a, code_b):
            if code not in cs.by_code:
                raise UnknownTerminology(f"code {code!r} is not in the code system {system} ({cs.name})")
        if code_a == code_b:
            return "equivalent"
        if code_a in cs.ancestors(code_b):
            return "subsumes"
        if code_b in cs.ancestors(code_a):
            return "subsumed-by"
        return "not-subsumed"

    # -- $translate and the way in -----------------------------------------------------------------
    def translate(
        self, system: str, code: str, *, url: str | None = None, target_system: str | None = None
    ) -> list[Translation]:
        """The standard codes a local code maps to (in the map ``url``, to ``target_system``)."""
        return self.maps.translate(system, code, url=url, target_system=target_system)

    def check_map(self, concept_map: ConceptMap) -> None:
        """Refuse (ConceptMapError) a map whose targets are not codes of a complete code system held here."""
        for (_, code), targets in concept_map.elements.items():
            for t in targets:
                problem = self.coding_problem(t.system, t.code)
                if problem is not None:
                    raise ConceptMapError(f"{code!r} → {t.code!r}: the target {problem}")

    def prepare(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource as the store should keep it: checked when a ConceptMap, with standard codes added."""
        if resource.get("resourceType") == "ConceptMap":
            try:
                concept_map = concept_map_from_fhir(resource)
            except ConceptMapError:
                return resource  # valid FHIR that maps nothing the way in can use (no url, no source …): kept
            try:
                self.check_map(concept_map)
            except ConceptMapError as exc:
                raise InvalidRequest(f"ConceptMap: {exc}", expression=["ConceptMap"]) from exc
            return resource
        added = self.maps.add_standard_codes(resource)
        return resource if added is None else added

    # -- for the validator -------------------------------------------------------------------------
    def expansion(self, url: str) -> Expansion | None:
        """A value set's codes as the validator checks a binding (held ones first, then R4's required)."""
        held = self._expansions.get(url)
        if held is not None:
            return held
        pairs = self._pairs.get(url)
        if pairs is None:
            return self.required.expansion(url) if self.required is not None else None
        built = self._expansions[url] = Expansion(
            pairs, frozenset(c for _, c in pairs), frozenset(s for s, _ in pairs)
        )
        return built

    def coding_problem(self, system: str, code: str) -> str | None:
        """Why ``code`` cannot be a code of ``system`` (None: it is, or the system is not a complete one held)."""
        cs = self.systems.get(system)
        if cs is None or cs.content != "complete" or code in cs.by_code:
            return None
        return f"is not a code of {cs.name} ({system}), which lists every code of its standard"
