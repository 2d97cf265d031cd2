"""The mCSD searches of the care-services directory, asked of the running server by fhirpy (a real client).

Every query a mCSD Care Services Selective Consumer sends (ITI-90) is here, and the registries' own
parameters (pinyin, division); _history and _lastUpdated ("updates since") too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fhirpy import SyncFHIRClient

from rhip.registries.identifiers import INSTITUTION_CODE, KIND_SYSTEM, PRACTITIONER_LICENCE, USCC

from .region import SERVICE_CATEGORY, directory, organizations

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fhir(served: tuple[str, dict[str, str]]) -> Iterator[SyncFHIRClient]:
    """fhirpy on the server, the small directory loaded."""
    client = SyncFHIRClient(served[0], requests_config={"timeout": 30})
    for resource in directory():
        client.resource(resource["resourceType"], **resource).save()
    yield client


def ids(client: SyncFHIRClient, rtype: str, **params: str) -> list[str]:
    """The ids a search finds (every page)."""
    return sorted(r.id for r in client.resources(rtype).search(**params).fetch_all())


def test_organizations_by_parent_type_identifier_and_name(fhir: SyncFHIRClient) -> None:
    assert ids(fhir, "Organization", partof="Organization/t-wjw") == ["t-other", "t-rmyy"]
    assert ids(fhir, "Organization", type=f"{KIND_SYSTEM}|thc") == ["t-wsy"]
    assert ids(fhir, "Organization", type="http://terminology.hl7.org/CodeSystem/organization-type|govt") == [
        "t-wjw"
    ]
    assert ids(fhir, "Organization", identifier=f"{INSTITUTION_CODE}|T0003") == ["t-wsy"]
    uscc = organizations()[3]["identifier"][1]["value"]
    assert ids(fhir, "Organization", identifier=f"{USCC}|{uscc}") == ["t-wss"]
    assert ids(fhir, "Organization", name__contains="人民医院") == ["t-other", "t-rmyy"]


def test_the_parent_chain_is_included(fhir: SyncFHIRClient) -> None:
    bundle = fhir.resources("Organization").search(_id="t-wss").include("Organization", "partof").fetch_raw()
    found = {(e["resource"]["id"], e["search"]["mode"]) for e in bundle.entry}
    assert found == {("t-wss", "match"), ("t-wsy", "include")}
    # Up the hierarchy, village to commission, a parent at a time.
    chain, current = [], "t-wss"
    while current:
        org = fhir.reference("Organization", current).to_resource()
        chain.append(org["name"])
        current = (org.get("partOf") or {}).get("reference", "").removeprefix("Organization/")
    assert chain == [
        "石塘镇金峰村卫生室",
        "涪城区石塘镇卫生院",
        "绵阳市涪城区人民医院",
        "绵阳市卫生健康委员会",
    ]
    # Or in one search: _include:iterate follows partOf to the top.
    whole = fhir.execute(
        "Organization", method="get", params={"_id": "t-wss", "_include:iterate": "Organization:partof"}
    )
    assert sorted(e["resource"]["id"] for e in whole["entry"]) == ["t-rmyy", "t-wjw", "t-wss", "t-wsy"]


def test_pinyin_full_initials_and_from_a_later_syllable(fhir: SyncFHIRClient) -> None:
    assert ids(fhir, "Organization", pinyin="renminyiyuan") == ["t-other", "t-rmyy"]
    assert ids(fhir, "Organization", pinyin="rmyy") == ["t-other", "t-rmyy"]
    assert ids(fhir, "Organization", pinyin="jiangyou") == ["t-other"]
    assert ids(fhir, "Organization", pinyin="mysfcq") == ["t-rmyy"]  # 绵阳市涪城区, initials, prefix
    assert ids(fhir, "Organization", pinyin__exact="wsy") == ["t-wsy"]
    assert ids(fhir, "Organization", pinyin="zzz") == []
    assert ids(fhir, "Location", pinyin="xxgnk") == ["t-loc-card"]
    assert ids(fhir, "HealthcareService", pinyin="yufangjiezhong") == ["t-hs-imm"]
    assert ids(fhir, "Practitioner", pinyin="wangxiulan") == ["t-p1"]
    assert ids(fhir, "Practitioner", pinyin="ljg") == ["t-p2"]


def test_division_is_a_prefix_of_the_address_code(fhir: SyncFHIRClient) -> None:
    assert ids(fhir, "Organization", division="5107") == ["t-other", "t-rmyy", "t-wjw", "t-wss", "t-wsy"]
    assert ids(fhir, "Organization", division="510703") == ["t-rmyy", "t-wss", "t-wsy"]
    assert ids(fhir, "Organization", division="510703104") == ["t-wss", "t-wsy"]
    assert ids(fhir, "Organization", division="510703", pinyin="rmyy") == ["t-rmyy"]
    assert ids(fhir, "Location", division="510703") == ["t-loc-thc"]


def test_locations_roles_and_services(fhir: SyncFHIRClient) -> None:
    assert ids(fhir, "Location", partof="Location/t-loc-main") == ["t-loc-card"]
    assert ids(fhir, "Location", organization="Organization/t-rmyy") == ["t-loc-card", "t-loc-main"]
    both = ids(fhir, "PractitionerRole", practitioner="Practitioner/t-p1", organization="Organization/t-wsy")
    assert both == ["t-r2"]
    bundle = (
        fhir.resources("PractitionerRole")
        .search(organization="Organization/t-rmyy")
        .include("PractitionerRole", "practitioner")
        .fetch_raw()
    )
    included = sorted(e["resource"]["id"] for e in bundle.entry if e["search"]["mode"] == "include")
    assert included == ["t-p1", "t-p2"]
    assert ids(fhir, "HealthcareService", organization="Organization/t-wsy") == ["t-hs-imm"]
    assert ids(fhir, "HealthcareService", service_category=f"{SERVICE_CATEGORY}|18") == ["t-hs-imm"]
    assert ids(fhir, "Practitioner", identifier=f"{PRACTITIONER_LICENCE}|110510703000002") == ["t-p2"]
    # Validity: a role's period (PractitionerRole.date), an institution's active flag.
    assert ids(fhir, "PractitionerRole", date="le2021-03-01", practitioner="Practitioner/t-p2") == ["t-r3"]
    assert ids(fhir, "PractitionerRole", date="lt2019-01-01") == []
    assert "t-wjw" in ids(fhir, "Organization", active="true")


def test_updates_since_and_history(fhir: SyncFHIRClient, served: tuple[str, dict[str, str]]) -> None:
    time.sleep(0.01)  # the instant below must follow the directory's load (not a timing assertion)
    since = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    time.sleep(0.01)
    org = fhir.reference("Organization", "t-wss").to_resource()
    org["name"] = "石塘镇金峰村卫生室（新址）"
    org["active"] = False
    org.save()
    assert ids(fhir, "Organization", _lastUpdated=f"gt{since}") == ["t-wss"]
    assert "t-wss" not in ids(fhir, "Organization", active="true")
    history = httpx.get(f"{served[0]}/Organization/t-wss/_history", timeout=30).json()
    versions = [e["resource"] for e in history["entry"]]
    assert [v["meta"]["versionId"] for v in versions] == ["2", "1"]
    assert versions[1]["name"] == "石塘镇金峰村卫生室" and versions[1]["active"] is True
    old = httpx.get(f"{served[0]}/Organization/t-wss/_history/1", timeout=30).json()
    assert old["name"] == "石塘镇金峰村卫生室"
    # The pinyin follows the current version only.
    assert ids(fhir, "Organization", pinyin="xinzhi") == ["t-wss"]
    changed = httpx.get(f"{served[0]}/Organization/_history", params={"_since": since}, timeout=30).json()
    assert [e["resource"]["id"] for e in changed["entry"]] == ["t-wss"]


def test_the_capability_statement_names_the_registries_parameters(served: tuple[str, dict[str, str]]) -> None:
    statement = httpx.get(f"{served[0]}/metadata", timeout=30).json()
    params = {
        r["type"]: {p["name"]: p for p in r.get("searchParam", [])} for r in statement["rest"][0]["resource"]
    }
    for rtype in ("Organization", "Location", "HealthcareService", "Practitioner"):
        assert params[rtype]["pinyin"]["type"] == "string"
        assert (
            params[rtype]["pinyin"]["definition"] == f"https://rhip.dev/fhir/SearchParameter/{rtype}-pinyin"
        )
    assert "division" in params["Organization"] and "division" in params["Location"]
    assert "pinyin" not in params["Patient"] or params["Patient"]["pinyin"]["definition"].endswith(
        "Patient-pinyin"
    )
