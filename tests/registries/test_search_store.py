"""The registries' parameters searched in the store, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from rhip.bootstrap.container import Platform
from rhip.registries.fhir_port import calling, matches

from .region import directory


def test_pinyin_and_division_on_each_database(platform: Platform) -> None:
    fhir = calling(platform.fhir)
    for resource in directory():
        fhir("PUT", f"{resource['resourceType']}/{resource['id']}", body=resource)

    def ids(rtype: str, *params: tuple[str, str]) -> list[str]:
        return sorted(r["id"] for r in matches(fhir("GET", rtype, [*params, ("_count", "100")])))

    assert ids("Organization", ("pinyin", "rmyy")) == ["t-other", "t-rmyy"]
    assert ids("Organization", ("pinyin:exact", "renminyiyuan")) == ["t-other", "t-rmyy"]
    assert ids("Organization", ("pinyin:contains", "tangzhen")) == ["t-wss", "t-wsy"]
    assert ids("Organization", ("division", "510703"), ("pinyin", "wsy")) == ["t-wsy"]
    assert ids("Organization", ("division", "510781,510700")) == ["t-other", "t-wjw"]
    assert ids("Practitioner", ("pinyin", "wangx")) == ["t-p1"]
    counted = fhir("GET", "Organization", [("division", "5107"), ("_summary", "count")]) or {}
    assert counted["total"] == 5
    # The pinyin follows the name: renamed, the old reading no longer finds it.
    org = fhir("GET", "Organization/t-other") or {}
    fhir("PUT", "Organization/t-other", body={**org, "name": "江油市第二医院"})
    assert ids("Organization", ("pinyin", "rmyy")) == ["t-rmyy"]
    assert ids("Organization", ("pinyin", "dieryiyuan")) == ["t-other"]
