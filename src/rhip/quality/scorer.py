"""Scores one stored resource version against every rule of its type: the rule-file interpreter.

There is no code per rule: each rule's path is evaluated, its ``when`` condition tested, and its check kind
(:mod:`rhip.quality.checks`) called with the rule's parameters. What comes out holds rule ids, outcomes and
the field each rule looks at, never a value of the resource: no name, ID number or phone leaves here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from rhip.fhir.definitions import StructureTable
from rhip.fhir.fhirpath import FhirPathCompiler
from rhip.quality.checks import CHECKS, NEEDS_PATIENT, CheckContext, CodeValidator, event_us, verify_rules
from rhip.quality.ruleset import Rule, RuleSet, rules_by_type

NO_EVENT = "none"  # the delay bucket of a resource without an event time


@dataclass
class Scored:
    """The outcome of the rules that applied to one resource version."""

    resource_type: str
    id: str
    version: int
    institution: str  # institution code, "" when it cannot be attributed
    day: str  # arrival day (YYYY-MM-DD) in the platform's zone
    outcomes: list[tuple[Rule, bool]] = field(default_factory=list)
    bucket: str = NO_EVENT  # delay bucket (timeliness)

    @property
    def failures(self) -> list[Rule]:
        """The rules that failed."""
        return [rule for rule, passed in self.outcomes if not passed]


def bucket_labels(hours: Iterable[float]) -> list[str]:
    """The delay bucket labels for the thresholds ``hours``: ``<=1h``, ``<=24h`` … and ``>Nh``."""
    limits = list(hours)
    labels = [f"<={_hours(h)}h" for h in limits]
    if limits:
        labels.append(f">{_hours(limits[-1])}h")
    return labels


def _hours(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class Scorer:
    """Applies the rule sets to resources (built once; thread-safe, it keeps no state per call)."""

    def __init__(
        self, sets: list[RuleSet], codes: CodeValidator, table: StructureTable, zone: tzinfo
    ) -> None:
        compiler = FhirPathCompiler(table)
        self.sets = verify_rules(sets, codes, compiler.compile)
        self.codes = codes
        self.zone = zone
        self.by_type = rules_by_type(self.sets)
        timeliness = next((s for s in self.sets if s.family == "timeliness"), None)
        self.buckets = timeliness.buckets_hours if timeliness is not None else ()
        self.labels = bucket_labels(self.buckets)
        self.rules = {rule.id: rule for s in self.sets for rule in s.rules}

    def needs_patient(self, resource_type: str) -> bool:
        """Whether some rule of this type consults the resource's Patient."""
        return any(rule.check in NEEDS_PATIENT for rule in self.by_type.get(resource_type, ()))

    def score(
        self,
        resource: dict[str, Any],
        arrival_us: int,
        *,
        version: int,
        institution: str,
        patient: Mapping[str, Any] | None = None,
    ) -> Scored:
        """The outcome of every applicable rule for ``resource`` stored at ``arrival_us``."""
        resource_type = str(resource.get("resourceType", ""))
        day = datetime.fromtimestamp(arrival_us / 1_000_000, UTC).astimezone(self.zone).date().isoformat()
        scored = Scored(resource_type, str(resource.get("id", "")), version, institution, day)
        ctx = CheckContext(arrival_us, self.zone, self.codes, patient)
        for rule in self.by_type.get(resource_type, ()):
            if not rule.applies(resource):
                continue
            nodes = rule.evaluate(resource)
            outcome = CHECKS[rule.check](rule, nodes, resource, ctx)
            if outcome is None:
                continue
            scored.outcomes.append((rule, outcome))
            if rule.check == "delay" and scored.bucket == NO_EVENT:
                event = event_us(nodes, self.zone)
                if event is not None:
                    scored.bucket = self.bucket(arrival_us - event)
        return scored

    def bucket(self, delay_us: int) -> str:
        """The label of the bucket a delay falls in."""
        hours = max(0, delay_us) / 3_600_000_000
        for limit, label in zip(self.buckets, self.labels, strict=False):
            if hours <= limit:
                return label
        return self.labels[-1] if self.labels else NO_EVENT
