"""The identifier rules over whole resources, and the institution-code resolver over the FHIR service."""

from __future__ import annotations

from typing import Any

import pytest

from rhip.bootstrap.container import Platform
from rhip.fhir.events import ResourceCreated, ResourceDeleted, ResourceUpdated
from rhip.registries.fhir_port import FhirRefused, calling
from rhip.registries.identifiers import INSTITUTION_CODE, INSTITUTION_LICENCE, PRACTITIONER_LICENCE, USCC
from rhip.registries.resolver import RegisteredInstitutions
from rhip.registries.rules import organization_problems, practitioner_problems

from .region import organizations


def test_the_regions_organizations_keep_the_rules() -> None:
    assert [organization_problems(o) for o in organizations()] == [[]] * len(organizations())


def test_each_broken_rule_is_told() -> None:
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "identifier": [
            {"system": USCC, "value": "91350100M000100Y44"},
            {"system": INSTITUTION_CODE, "value": "A1"},
            {"system": INSTITUTION_CODE, "value": "A2"},
            {"system": INSTITUTION_LICENCE, "value": "许可证"},
        ],
        "address": [{"extension": [{"url": "urn:rhip:ext:division", "valueCode": "5107x"}]}],
    }
    problems = organization_problems(org)
    assert len(problems) == 3  # a licence's characters are the forms' and the CSV's to check, not a door's
    assert any("check character" in p for p in problems)
    assert any("one institution code" in p for p in problems)
    assert any("division '5107x'" in p for p in problems)
    sender = {"identifier": [{"system": INSTITUTION_CODE, "value": "Ntierprise Clinic"}]}  # an HL7 v2 MSH-4
    assert organization_problems(sender) == []
    doctor = {
        "identifier": [
            {"system": PRACTITIONER_LICENCE, "value": "1"},
            {"system": PRACTITIONER_LICENCE, "value": "2"},
        ]
    }
    assert practitioner_problems(doctor) == ["one practitioner licence (执业证书编码) at most, not 2"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_code_resolves_to_its_registered_organization(platform: Platform) -> None:
    fhir = calling(platform.fhir)
    clock = Clock()
    resolver = RegisteredInstitutions(fhir, ttl_s=60, clock=clock)
    assert resolver.organization_id("R001") is None
    assert resolver.organization_id("not a code") is None

    def org(rid: str, code: str, active: bool) -> None:
        body = {"resourceType": "Organization", "id": rid, "active": active, "name": rid,
                "identifier": [{"system": INSTITUTION_CODE, "value": code}]}  # fmt: skip
        fhir("PUT", f"Organization/{rid}", body=body)

    org("b-closed", "R001", False)
    clock.now = 10  # the "not registered" answer is still cached
    assert resolver.organization_id("R001") is None
    clock.now = 61
    assert resolver.organization_id("R001") == "b-closed"  # inactive, but the only one
    org("c-open", "R001", True)
    org("a-closed", "R001", False)
    resolver.forget()
    assert resolver.organization_id("R001") == "c-open"  # an active one before the lower ids
    org("a-open", "R001", True)
    assert resolver.organization_id("R001") == "c-open"  # cached
    for kind in (ResourceCreated, ResourceUpdated, ResourceDeleted):
        platform.events.subscribe(kind, resolver.on_event)
    org("z-other", "R002", True)  # any Organization written: the cache is dropped
    assert resolver.organization_id("R001") == "a-open"
    fhir("DELETE", "Organization/a-open")
    assert resolver.organization_id("R001") == "c-open"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_refusal_of_the_fhir_service_is_raised_with_its_outcome(platform: Platform) -> None:
    with pytest.raises(FhirRefused) as refused:
        body = {"resourceType": "Organization", "id": "x", "active": "yes"}
        calling(platform.fhir)("PUT", "Organization/x", body=body)
    assert refused.value.status in (400, 422) and "active" in refused.value.detail


def test_every_write_of_an_organization_or_practitioner_keeps_the_rules(platform: Platform) -> None:
    fhir = calling(platform.fhir)
    good = organizations()[1]
    fhir("PUT", f"Organization/{good['id']}", body=good)
    bad = {**good, "identifier": [{"system": USCC, "value": "91350100M000100Y44"}, *good["identifier"][:1]]}
    with pytest.raises(FhirRefused) as refused:
        fhir("PUT", f"Organization/{good['id']}", body=bad)
    assert refused.value.status == 422 and "check character" in refused.value.detail
    assert (fhir("GET", f"Organization/{good['id']}") or {})["identifier"] == good["identifier"]  # unchanged
    doctor = {"resourceType": "Practitioner", "identifier": [
        {"system": PRACTITIONER_LICENCE, "value": "1"}, {"system": PRACTITIONER_LICENCE, "value": "2"}]}  # fmt: skip
    with pytest.raises(FhirRefused, match="one practitioner licence"):
        fhir("POST", "Practitioner", body=doctor)
    # In a transaction too (a door's Bundle): the whole transaction is refused.
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": bad, "request": {"method": "PUT", "url": f"Organization/{good['id']}"}}]}  # fmt: skip
    with pytest.raises(FhirRefused):
        fhir("POST", "", body=bundle)
    # Other resources are not the registries' business.
    patient = {"resourceType": "Patient", "identifier": [{"system": USCC, "value": "x"}]}
    assert (fhir("POST", "Patient", body=patient) or {})["resourceType"] == "Patient"
