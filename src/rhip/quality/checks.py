"""The check kinds a rule file may name, and the interpreter that runs a rule on a resource.

A check answers True (passed), False (failed) or None (does not apply: the element is absent, the code is
outside the rule's range, the Patient is unknown); only applicable checks are counted. Every kind reads its
parameters from the rule, so rules differ by data only. ``CHECKS`` is the whole vocabulary; a rule naming
another kind is refused when the rules are read (:func:`verify_rules`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, tzinfo
from functools import cache
from typing import Any, Protocol

from rhip.empi.normalize.idnumber import check_character
from rhip.fhir.fhirpath import Nodes
from rhip.fhir.search.values import DateFormatError, date_range
from rhip.quality.ruleset import Rule, RuleFileError, RuleSet

UCUM = "http://unitsofmeasure.org"
_ID_SHAPE = re.compile(r"\d{17}[\dX]")
HOUR_US = 3_600_000_000


class CodeValidator(Protocol):
    """What the checks need of the terminology service (rhip.terminology.service.TerminologyService)."""

    def validate_code(
        self,
        code: str,
        *,
        system: str | None = None,
        valueset: str | None = None,
        display: str | None = None,
        on: date | None = None,
    ) -> Any:
        """An object whose ``result`` says whether the code is in the value set or code system."""


@dataclass(frozen=True)
class CheckContext:
    """What a check may consult besides the resource: its Patient, arrival, the zone and the code tables."""

    arrival_us: int  # meta.lastUpdated of the scored version, UTC epoch microseconds
    zone: tzinfo
    codes: CodeValidator
    patient: Mapping[str, Any] | None = None  # the current version of the resource's Patient, if any


Outcome = bool | None
Check = Callable[[Rule, Nodes, dict[str, Any], CheckContext], Outcome]


def _values(nodes: Nodes) -> list[Any]:
    return [v for v, _ in nodes if v not in (None, "", [], {})]


def _range(text: Any, zone: tzinfo) -> tuple[int, int] | None:
    if not isinstance(text, str):
        return None
    try:
        return date_range(text, zone)
    except DateFormatError:
        return None


def present(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """The element exists and is not empty."""
    return bool(_values(nodes))


def in_valueset(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """Every code (code, Coding, or CodeableConcept with a coding of ``system``) is in ``valueset``."""
    valueset, system = rule.params["valueset"], rule.params.get("system")
    values = _values(nodes)
    if not values:
        return None
    for value in values:
        if isinstance(value, str):
            if not ctx.codes.validate_code(value, valueset=valueset).result:
                return False
            continue
        codings = value.get("coding", [value]) if isinstance(value, dict) else []
        chosen = [c for c in codings if isinstance(c, dict) and (system is None or c.get("system") == system)]
        if not chosen or not any(
            isinstance(c.get("code"), str)
            and ctx.codes.validate_code(c["code"], system=c.get("system") or system, valueset=valueset).result
            for c in chosen
        ):
            return False
    return True


def pattern(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """Every value matches the regular expression ``regex`` in full."""
    values = _values(nodes)
    if not values:
        return None
    compiled = _regex(rule.params["regex"])
    return all(isinstance(v, str) and compiled.fullmatch(v) is not None for v in values)


@cache
def _regex(text: str) -> re.Pattern[str]:
    return re.compile(text)


def id_number(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """Every value is an 18-character GB 11643 number: right check character, a real birth date from 1900."""
    values = _values(nodes)
    if not values:
        return None
    return all(isinstance(v, str) and _valid_id(v) for v in values)


def _valid_id(value: str) -> bool:
    if _ID_SHAPE.fullmatch(value) is None or check_character(value[:17]) != value[17]:
        return False
    try:
        born = date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return False
    return born.year >= 1900


def date_plausible(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """Every date is readable, not before ``min`` and not after the resource's arrival."""
    values = _values(nodes)
    if not values:
        return None
    earliest = date_range(rule.params.get("min", "1900-01-01"), ctx.zone)[0]
    for value in values:
        span = _range(value, ctx.zone)
        if span is None or span[0] < earliest or span[0] > ctx.arrival_us:
            return False
    return True


def after_birth(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """The event is not before the Patient's birth date (partial dates compared generously)."""
    born = _range(ctx.patient.get("birthDate"), ctx.zone) if ctx.patient is not None else None
    values = _values(nodes)
    if born is None or not values:
        return None
    spans = [_range(v, ctx.zone) for v in values]
    return all(s is not None and s[1] >= born[0] for s in spans)


def not_before(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """The element's time is not before that of ``other`` (both present; partial dates generously)."""
    other = _values(rule.params["_other"](resource))
    values = _values(nodes)
    if not values or not other:
        return None
    late = [_range(v, ctx.zone) for v in values]
    early = [_range(v, ctx.zone) for v in other]
    if any(s is None for s in late + early):
        return False
    return max(s[1] for s in late if s) >= min(s[0] for s in early if s)


def sex_specific(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """A code whose category lies in ``from``..``to`` belongs to a Patient of ``gender`` (male/female known)."""
    gender = ctx.patient.get("gender") if ctx.patient is not None else None
    if gender not in ("male", "female"):
        return None
    low, high = rule.params["from"], rule.params["to"]
    if not any(isinstance(v, str) and low <= v[:3] <= high for v in _values(nodes)):
        return None
    return bool(gender == rule.params["gender"])


def age_at_event(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """For a code in ``codes``: the age in whole months at ``at`` lies within ``min_months``..``max_months``."""
    if not any(v in rule.params["codes"] for v in _values(nodes)):
        return None
    birth = _day(ctx.patient.get("birthDate")) if ctx.patient is not None else None
    when = _values(rule.params["_at"](resource))
    event = _day(when[0]) if when else None
    if birth is None or event is None:
        return None
    months = (event.year - birth.year) * 12 + event.month - birth.month - (event.day < birth.day)
    low, high = rule.params.get("min_months", 0), rule.params.get("max_months")
    return months >= low and (high is None or months <= high)


def _day(value: Any) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def ucum_unit(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """Every Quantity is in UCUM with one of ``units`` as its code."""
    values = _values(nodes)
    if not values:
        return None
    units = rule.params["units"]
    return all(isinstance(q, dict) and q.get("system") == UCUM and q.get("code") in units for q in values)


def event_us(nodes: Nodes, zone: tzinfo) -> int | None:
    """The latest instant the nodes name (the end of a date), or None when none is readable."""
    spans = [s for s in (_range(v, zone) for v in _values(nodes)) if s is not None]
    return max(s[1] for s in spans) if spans else None


def delay(rule: Rule, nodes: Nodes, resource: dict[str, Any], ctx: CheckContext) -> Outcome:
    """The arrival is at most ``max_hours`` after the event."""
    event = event_us(nodes, ctx.zone)
    if event is None:
        return None
    return ctx.arrival_us - event <= float(rule.params["max_hours"]) * HOUR_US


CHECKS: dict[str, Check] = {
    "present": present,
    "in-valueset": in_valueset,
    "pattern": pattern,
    "id-number": id_number,
    "date-plausible": date_plausible,
    "after-birth": after_birth,
    "not-before": not_before,
    "sex-specific": sex_specific,
    "age-at-event": age_at_event,
    "ucum-unit": ucum_unit,
    "delay": delay,
}
# Parameters each kind needs; values are checked for type when the rules are read.
REQUIRED_PARAMS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "in-valueset": {"valueset": str},
    "pattern": {"regex": str},
    "not-before": {"other": str},
    "sex-specific": {"from": str, "to": str, "gender": str},
    "age-at-event": {"codes": list, "at": str},
    "ucum-unit": {"units": list},
    "delay": {"max_hours": (int, float)},
}
# Kinds whose rules are about the Patient the resource belongs to.
NEEDS_PATIENT = frozenset({"after-birth", "sex-specific", "age-at-event"})


def verify_rules(
    sets: Iterable[RuleSet], codes: CodeValidator, compile_path: Callable[[str], Any]
) -> list[RuleSet]:
    """The rule sets with every check kind known, its parameters present and its value sets held.

    ``compile_path`` compiles the FHIRPath parameters (``other``, ``at``) into the hidden ``_other``/``_at``.
    """
    verified: list[RuleSet] = []
    for ruleset in sets:
        rules: list[Rule] = []
        for rule in ruleset.rules:
            where = f"{ruleset.file}: rule {rule.id}"
            if rule.check not in CHECKS:
                raise RuleFileError(f"{where}: unknown check {rule.check!r} (known: {', '.join(CHECKS)})")
            for key, kind in REQUIRED_PARAMS.get(rule.check, {}).items():
                if not isinstance(rule.params.get(key), kind):
                    raise RuleFileError(f"{where}: check {rule.check} needs params.{key}")
            params = dict(rule.params)
            if rule.check == "pattern":
                try:
                    _regex(params["regex"])
                except re.error as exc:
                    raise RuleFileError(
                        f"{where}: params.regex is not a regular expression ({exc})"
                    ) from None
            if rule.check == "in-valueset":
                _known_valueset(where, codes, params["valueset"])
            for key in ("other", "at"):
                if key in params:
                    params[f"_{key}"] = _compile_param(where, compile_path, params[key], rule.resource)
            rules.append(replace(rule, params=params))
        verified.append(replace(ruleset, rules=tuple(rules)))
    return verified


def _known_valueset(where: str, codes: CodeValidator, url: str) -> None:
    # Asking for a code no value set holds answers False for a known set and raises for an unknown one: the
    # port the checks use (validate_code) is enough to refuse a rule file naming a set nobody can answer for.
    try:
        codes.validate_code("\x00", valueset=url)
    except LookupError as exc:  # the terminology service's UnknownTerminology
        raise RuleFileError(f"{where}: the value set {url} is not held by the terminology service") from exc


def _compile_param(where: str, compile_path: Callable[[str], Any], expression: str, resource: str) -> Any:
    if not expression.startswith(f"{resource}."):
        raise RuleFileError(f"{where}: the path {expression!r} must start with {resource}.")
    try:
        return compile_path(expression)
    except ValueError as exc:
        raise RuleFileError(f"{where}: the path {expression!r} is not supported FHIRPath ({exc})") from None
