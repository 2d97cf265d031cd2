"""Wires the data-quality service (rhip.quality) onto a built platform, and its follower for ``rhip serve``.

The service reads through the unsecured store (``platform.store``): scoring is an internal process of the
platform that keeps counts and resource keys only (see rhip.quality.service); the API and the CLI decide who
may see the figures.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rhip.bootstrap.container import Platform
from rhip.fhir.events import ResourceCreated, ResourceUpdated
from rhip.quality.follower import QualityFollower
from rhip.quality.repository import QualityRepository
from rhip.quality.ruleset import load_rulesets
from rhip.quality.scorer import Scorer
from rhip.quality.service import QualityService


def build_quality(platform: Platform) -> QualityService:
    """The quality service of ``platform``; RuleFileError when a rule file cannot be used."""
    settings = platform.settings
    if platform.store is None or platform.terminology is None:
        raise RuntimeError("the quality service needs the platform's store and terminology service")
    zone = ZoneInfo(settings.timezone)
    sets = load_rulesets(platform.table, settings.quality.rules_dir)
    scorer = Scorer(sets, platform.terminology, platform.table, zone)
    repository = QualityRepository(platform.db, settings.quality.examples_per_rule)
    return QualityService(platform.store, repository, scorer, zone)


def follow_quality(platform: Platform, service: QualityService) -> QualityFollower | None:
    """Start scoring in the background (woken by this process's writes), unless RHIP_QUALITY__FOLLOW=false."""
    if not platform.settings.quality.follow:
        return None
    follower = QualityFollower(service, platform.settings.quality.interval_s)
    for event_type in (ResourceCreated, ResourceUpdated):
        platform.events.subscribe(event_type, follower.wake)
    follower.start()
    return follower
