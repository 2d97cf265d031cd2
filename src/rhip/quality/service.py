"""The data-quality service: follows the outbox, scores each new resource version, serves the report.

It reads resources through the unsecured store (``FhirRepository`` handed in by bootstrap): it is an internal
process of the platform, like the resident index's consumer, that reads every version the store announces
and keeps only counts, rule ids and resource keys — no value of any resource. People reach the figures
through the API and the CLI, which check who asks (rhip.web.quality, rhip.cli.quality).

Scoring never changes clinical data. Idempotent: a version already counted is not counted again, and two
processes following at once count each version once (:meth:`QualityRepository.record`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from rhip.core.errors import ResourceGone, ResourceNotFound
from rhip.db.outbox import OutboxRecord
from rhip.fhir.repository import FhirRepository
from rhip.fhir.search.values import date_range
from rhip.quality.attribution import Attributor
from rhip.quality.report import QualityReport, build_report
from rhip.quality.repository import Period, QualityRepository
from rhip.quality.scorer import Scored, Scorer

CONSUMER = "quality"
_SCORED_EVENTS = frozenset({"ResourceCreated", "ResourceUpdated"})
# The patient a resource belongs to, for the rules that consult it.
_PATIENT_ELEMENTS = ("subject", "patient")


@dataclass
class CatchUp:
    """What one catch-up did."""

    events: int = 0
    scored: int = 0  # versions counted now (not counted before)


class QualityService:
    """Scoring and reporting over one platform's store and database."""

    def __init__(
        self,
        store: FhirRepository,
        repository: QualityRepository,
        scorer: Scorer,
        zone: tzinfo,
        *,
        batch: int = 500,
        clock_us: Callable[[], int] = lambda: time.time_ns() // 1000,
    ) -> None:
        self.store = store
        self.repository = repository
        self.scorer = scorer
        self.zone = zone
        self.batch = batch
        self.clock_us = clock_us
        self.attributor = Attributor(self._current)

    # -- scoring ----------------------------------------------------------------------------------
    def catch_up(
        self, progress: Callable[[int], None] | None = None, stop: Callable[[], bool] = lambda: False
    ) -> CatchUp:
        """Score the events after the outbox position, batch by batch, until none is left or ``stop()``."""
        done = CatchUp()
        while not stop():
            after = self.repository.position(CONSUMER)
            events = self.repository.events(after, self.batch)
            if not events:
                return done
            batch = self.score_events(events)
            counted = self.repository.record(CONSUMER, after, events[-1].position, batch, self.clock_us())
            if counted < 0:
                continue  # another process recorded this batch meanwhile: read on from where it got to
            done.events += len(events)
            done.scored += counted
            if progress is not None:
                progress(len(events))
        return done

    def score_events(self, events: list[OutboxRecord]) -> list[Scored]:
        """Score the versions a batch of events announces (deletions and unruled types are skipped)."""
        patients: dict[str, Mapping[str, Any] | None] = {}
        scored: list[Scored] = []
        seen: set[tuple[str, str, int]] = set()
        for event in events:
            key = (event.res_type, event.res_id, event.version)
            if event.event not in _SCORED_EVENTS or event.res_type not in self.scorer.by_type or key in seen:
                continue
            seen.add(key)
            try:
                stored = self.store.vread(event.res_type, event.res_id, event.version)
            except (ResourceNotFound, ResourceGone):
                continue  # deleted or purged since: nothing left to score
            scored.append(
                self.score_resource(stored.resource(), stored.last_updated, stored.version, patients)
            )
        return scored

    def score_resource(
        self,
        resource: dict[str, Any],
        last_updated: str,
        version: int,
        patients: dict[str, Mapping[str, Any] | None] | None = None,
    ) -> Scored:
        """Score one stored version (``last_updated``: its meta.lastUpdated, the arrival)."""
        arrival_us = date_range(last_updated, UTC)[0]
        patient = None
        if self.scorer.needs_patient(str(resource.get("resourceType"))):
            patient = self._patient_of(resource, patients if patients is not None else {})
        institution = self.attributor.institution(resource)
        return self.scorer.score(
            resource, arrival_us, version=version, institution=institution, patient=patient
        )

    def _patient_of(
        self, resource: Mapping[str, Any], cache: dict[str, Mapping[str, Any] | None]
    ) -> Mapping[str, Any] | None:
        for name in _PATIENT_ELEMENTS:
            ref = resource.get(name)
            target = ref.get("reference") if isinstance(ref, dict) else None
            if isinstance(target, str) and target.startswith("Patient/"):
                pid = target.removeprefix("Patient/")
                if pid not in cache:
                    cache[pid] = self._current("Patient", pid)
                return cache[pid]
        return None

    def _current(self, resource_type: str, id: str) -> Mapping[str, Any] | None:
        try:
            return self.store.read(resource_type, id).resource()
        except (ResourceNotFound, ResourceGone):
            return None

    # -- reporting --------------------------------------------------------------------------------
    def report(self, period: Period) -> QualityReport:
        """The figures of ``period`` (see rhip.quality.report)."""
        versions = {s.family: s.version for s in self.scorer.sets}
        return build_report(
            self.repository, period, self.scorer.rules, versions, self.scorer.labels, self.zone
        )
