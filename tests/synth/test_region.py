"""The region: real divisions, the institutions a prefecture-level city has, their identifiers."""

from __future__ import annotations

from collections import Counter
from datetime import date

from rhip.synth import catalog
from rhip.synth.codes import is_valid_uscc
from rhip.synth.region import Region


def test_divisions_are_the_real_mianyang_codes() -> None:
    divisions = catalog.divisions()
    assert divisions.city.code == "510700" and divisions.city.name == "绵阳市"
    counties = {d.code: d.name for d in divisions.current_counties(date(2022, 1, 1))}
    assert counties["510703"] == "涪城区" and counties["510781"] == "江油市"
    assert len(counties) == 9
    # 安县 became 安州区 in 2016: the old code is valid before, the new one after.
    assert "510724" in {d.code for d in divisions.current_counties(date(2015, 6, 1))}
    assert "510724" not in counties and "510705" in counties
    for d in divisions.by_code.values():
        if d.level == "county":
            assert d.code[:4] == d.parent[:4] == "5107"
        elif d.level != "city":
            assert d.code.startswith(d.parent) and d.parent in divisions.by_code


def test_institutions_of_a_city() -> None:
    region = Region(seed=3, start=date(2022, 1, 1))
    kinds = Counter(i.kind for i in region.institutions.values())
    assert kinds["tertiary"] == 3
    assert 9 <= kinds["secondary"] <= 13
    assert kinds["cdc"] == 1 and kinds["mch"] == 1 and kinds["commission"] == 1
    townships = [t for ts in region.townships.values() for t in ts]
    assert kinds["thc"] + kinds["chc"] == len(townships)
    assert kinds["village"] > 1000
    codes = [i.uscc for i in region.institutions.values()]
    assert len(set(codes)) == len(codes) and all(is_valid_uscc(c) for c in codes)
    doors = Counter(i.door for i in region.institutions.values())
    assert doors["hl7v2"] >= 3 and doors["hl7v3"] >= 3


def test_registry_resources_reference_each_other() -> None:
    region = Region(seed=3, start=date(2022, 1, 1))
    resources = region.resources()
    ids = {f"{r['resourceType']}/{r['id']}" for r in resources}
    refs = [
        ref
        for r in resources
        for key in ("partOf", "managingOrganization", "practitioner", "organization")
        if (ref := r.get(key, {}).get("reference"))
    ]
    assert refs and all(ref in ids for ref in refs)
    kinds = Counter(r["resourceType"] for r in resources)
    assert kinds["Practitioner"] == kinds["PractitionerRole"] > 1000


def test_same_seed_same_region() -> None:
    a = Region(seed=5, start=date(2022, 1, 1)).resources()
    b = Region(seed=5, start=date(2022, 1, 1)).resources()
    c = Region(seed=6, start=date(2022, 1, 1)).resources()
    assert a == b and a != c
