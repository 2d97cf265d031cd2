"""The registries' search parameters as the store's indexer extracts them."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from rhip.fhir.search.extract import IndexExtractor
from rhip.fhir.search.params import registry
from rhip.registries.search import registry_params

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def extractor() -> IndexExtractor:
    return IndexExtractor(registry().extended(registry_params()), ZONE)


def strings(extractor: IndexExtractor, resource: dict[str, object], code: str) -> set[str]:
    return {norm for c, norm, _ in extractor.extract(resource).strings if c == code}


def test_an_organization_is_indexed_by_pinyin_and_division(extractor: IndexExtractor) -> None:
    org = {
        "resourceType": "Organization",
        "name": "绵阳市人民医院",
        "alias": ["市一院"],
        "address": [{"extension": [{"url": "urn:rhip:ext:division", "valueCode": "510703001"}]}],
    }
    assert {"renminyiyuan", "rmyy", "shiyiyuan", "syy"} <= strings(extractor, org, "pinyin")
    assert strings(extractor, org, "division") == {"510703001"}
    # The official name parameter still holds the Chinese names, not the readings.
    assert strings(extractor, org, "name") == {"绵阳市人民医院", "市一院"}


def test_locations_services_and_practitioners(extractor: IndexExtractor) -> None:
    loc = {"resourceType": "Location", "name": "心血管内科", "address": {"extension": [
        {"url": "urn:rhip:ext:division", "valueCode": "510703"}]}}  # fmt: skip
    assert "xinxueguanneike" in strings(extractor, loc, "pinyin")
    assert strings(extractor, loc, "division") == {"510703"}
    service = {"resourceType": "HealthcareService", "name": "预防接种门诊"}
    assert "yufangjiezhongmenzhen" in strings(extractor, service, "pinyin")
    doctor = {"resourceType": "Practitioner", "name": [{"family": "王", "given": ["秀兰"]}]}
    assert strings(extractor, doctor, "pinyin") == {"wangxiulan", "wxl"}
