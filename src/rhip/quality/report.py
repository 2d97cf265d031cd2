"""The quality report of a month (or any run of days), for one institution or the whole region.

Built from the counts of :mod:`rhip.quality.repository` alone: rates per family and rule, the trend per day,
the fields that fail most, delay buckets, a few failing resource versions per rule (type, id, version and
field: never a value), and the messages the exchange refused from the sender. The JSON of the API and the
sheets of the spreadsheet are both made from :meth:`QualityReport.as_dict`'s figures.
"""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from rhip.core.errors import InvalidRequest
from rhip.quality.repository import Period, QualityRepository
from rhip.quality.ruleset import FAMILIES, Rule

_MONTH = re.compile(r"(\d{4})-(\d{2})")
WORST_FIELDS = 10
EXAMPLES_PER_RULE = 10  # in a report: the first days' examples of each rule
REGION = "region"


def month_period(month: str, institution: str | None) -> Period:
    """The days of ``YYYY-MM``; InvalidRequest (RHIP-QUAL-0001) for anything else."""
    found = _MONTH.fullmatch(month or "")
    if found is None or not 1 <= int(found[2]) <= 12 or int(found[1]) < 1900:
        raise InvalidRequest(
            f"month must be YYYY-MM, e.g. 2026-10 (got {month[:20]!r})", code="RHIP-QUAL-0001"
        )
    year, number = int(found[1]), int(found[2])
    last = calendar.monthrange(year, number)[1]
    if institution is not None and (not institution.strip() or len(institution) > 128):
        raise InvalidRequest("institution must be an institution code", code="RHIP-QUAL-0002")
    return Period(f"{month}-01", f"{month}-{last:02d}", institution)


def rate(passed: int, checked: int) -> float | None:
    """passed / checked, rounded to four places; None when nothing was checked."""
    return round(passed / checked, 4) if checked else None


@dataclass
class Figure:
    """Counts of one family, rule, field or institution."""

    checked: int = 0
    passed: int = 0

    @property
    def failed(self) -> int:
        """How many checks failed."""
        return self.checked - self.passed

    def row(self) -> dict[str, Any]:
        """checked, passed, failed and rate."""
        return {
            "checked": self.checked,
            "passed": self.passed,
            "failed": self.failed,
            "rate": rate(self.passed, self.checked),
        }


@dataclass
class QualityReport:
    """The figures of one period and scope."""

    scope: str  # an institution code, or "region"
    first: str
    last: str
    rule_versions: dict[str, str]
    families: dict[str, Figure] = field(default_factory=dict)
    rules: list[dict[str, Any]] = field(default_factory=list)
    days: list[dict[str, Any]] = field(default_factory=list)
    worst_fields: list[dict[str, Any]] = field(default_factory=list)
    examples: list[dict[str, Any]] = field(default_factory=list)
    delays: dict[str, int] = field(default_factory=dict)
    institutions: list[dict[str, Any]] = field(default_factory=list)
    resources: int = 0
    rejected: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values."""
        return {
            "scope": self.scope,
            "period": {"first": self.first, "last": self.last},
            "rule_versions": self.rule_versions,
            "resources": self.resources,
            "rejected_messages": self.rejected,
            "families": [{"family": f, **self.families[f].row()} for f in FAMILIES if f in self.families],
            "rules": self.rules,
            "days": self.days,
            "worst_fields": self.worst_fields,
            "delays": [{"bucket": b, "resources": n} for b, n in self.delays.items()],
            "institutions": self.institutions,
            "examples": self.examples,
        }


def build_report(
    repository: QualityRepository,
    period: Period,
    rules: Mapping[str, Rule],
    rule_versions: dict[str, str],
    buckets: list[str],
    zone: tzinfo,
) -> QualityReport:
    """The report of ``period`` from the stored counts (``rules`` give the labels of the rules known now)."""
    report = QualityReport(period.institution or REGION, period.first, period.last, rule_versions)
    per_day = _rule_figures(report, repository.rule_counts(period), rules)
    resources_per_day = _arrival_figures(report, repository.arrivals(period), buckets)
    for day in sorted(set(per_day) | set(resources_per_day)):
        families = per_day.get(day, {})
        report.days.append(
            {"day": day, "resources": resources_per_day.get(day, 0)}
            | {f: rate(families[f].passed, families[f].checked) for f in FAMILIES if f in families}
        )
    shown: dict[str, int] = defaultdict(int)
    for d, i, r, t, rid, v, e in repository.examples(period):
        shown[r] += 1
        if shown[r] <= EXAMPLES_PER_RULE:
            report.examples.append(
                {
                    "day": d,
                    "institution": i,
                    "rule": r,
                    "resource_type": t,
                    "id": rid,
                    "version": v,
                    "element": e,
                }
            )
    if period.institution is None:
        report.institutions = _institution_rows(repository.institution_counts(period))
    report.rejected = repository.rejects(
        _start_us(period.first, zone), _start_us(period.last, zone, 1), period.institution
    )
    return report


def _rule_figures(
    report: QualityReport, counts: list[tuple[str, str, str, str, str, int, int]], rules: Mapping[str, Rule]
) -> dict[str, dict[str, Figure]]:
    """Fill the families, rules and worst fields of ``report``; the figures per day and family."""
    per_rule: dict[str, Figure] = defaultdict(Figure)
    rule_info: dict[str, tuple[str, str, str]] = {}
    per_day: dict[str, dict[str, Figure]] = defaultdict(lambda: defaultdict(Figure))
    per_field: dict[tuple[str, str], Figure] = defaultdict(Figure)
    for day, rule_id, family, res_type, element, checked, passed in counts:
        figures = [report.families.setdefault(family, Figure()), per_rule[rule_id], per_day[day][family]]
        if family != "timeliness":  # a late arrival is no fault of the field it is timed by
            figures.append(per_field[(res_type, element)])
        for figure in figures:
            figure.checked += checked
            figure.passed += passed
        rule_info[rule_id] = (family, res_type, element)
    order = {f: i for i, f in enumerate(FAMILIES)}
    for rule_id in sorted(per_rule, key=lambda r: (order.get(rule_info[r][0], 9), r)):
        family, res_type, element = rule_info[rule_id]
        known = rules.get(rule_id)
        report.rules.append(
            {
                "rule": rule_id, "family": family, "resource_type": res_type, "element": element,
                "label_zh": known.label_zh if known else "", "label_en": known.label_en if known else "",
                **per_rule[rule_id].row(),
            }
        )  # fmt: skip
    worst = sorted(per_field.items(), key=lambda kv: (-kv[1].failed, kv[0]))
    report.worst_fields = [
        {"resource_type": t, "element": e, **fig.row()} for (t, e), fig in worst[:WORST_FIELDS] if fig.failed
    ]
    return per_day


def _arrival_figures(
    report: QualityReport, arrivals: list[tuple[str, str, str, int]], buckets: list[str]
) -> dict[str, int]:
    """Fill the resource count and delay buckets of ``report`` (buckets in their order); resources per day."""
    per_day: dict[str, int] = defaultdict(int)
    found: dict[str, int] = defaultdict(int)
    for day, _res_type, bucket, n in arrivals:
        per_day[day] += n
        found[bucket] += n
        report.resources += n
    known = [*buckets, "none"]
    report.delays = {b: found[b] for b in known if b in found} | {
        b: n for b, n in found.items() if b not in known
    }
    return per_day


def _institution_rows(counts: list[tuple[str, str, int, int]]) -> list[dict[str, Any]]:
    """Per institution: the counts over every family and each family's rate."""
    per_institution: dict[str, dict[str, Figure]] = defaultdict(dict)
    for institution, family, checked, passed in counts:
        per_institution[institution][family] = Figure(checked, passed)
    rows = []
    for institution in sorted(per_institution):
        figures = per_institution[institution]
        total = Figure(sum(f.checked for f in figures.values()), sum(f.passed for f in figures.values()))
        rows.append(
            {"institution": institution, **total.row()}
            | {f: rate(figures[f].passed, figures[f].checked) for f in FAMILIES if f in figures}
        )
    return rows


def _start_us(day: str, zone: tzinfo, plus_days: int = 0) -> int:
    moment = datetime.fromisoformat(day).replace(tzinfo=zone)
    return int(moment.astimezone(UTC).timestamp() * 1_000_000) + plus_days * 86_400_000_000
