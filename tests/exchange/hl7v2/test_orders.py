"""ORM^O01 and OML^O21 mapping: golden files, the FHIR service, the public samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v2.mapping import MappingError, map_message
from rhip.exchange.hl7v2.mapping.orders import order_status
from rhip.exchange.hl7v2.message import parse

from .results_support import (
    GOLDEN,
    RESULT_MAPPERS,
    cases,
    check_golden,
    context,
    corpus,
    counts,
    load,
    mapped,
    platform,
    post,
    search,
    storable,
    store_twice,
)

__all__ = ["platform"]  # the fixture, imported for the tests below


@pytest.mark.parametrize("path", [*cases("orm-"), *cases("oml-")], ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    check_golden(path)


def test_every_golden_bundle_is_stored_twice_without_duplicates(platform: Platform) -> None:
    stored = store_twice(platform, [*storable("orm-"), *storable("oml-")])
    assert stored["ServiceRequest"] == 7  # the public samples share placer numbers
    assert stored["Specimen"] == 4
    assert stored["Observation"] == 8


def test_a_cancellation_revokes_the_same_order(platform: Platform) -> None:
    post(platform, mapped(GOLDEN / "orm-o01-lab-order.hl7").bundle)
    [order] = search(platform, "ServiceRequest")
    assert order["status"] == "active"
    assert order["priority"] == "stat"
    assert order["note"] == [{"text": "请加急"}]
    assert order["reasonCode"][0]["coding"][0]["code"] == "D64.9"
    before = counts(platform)
    post(platform, mapped(GOLDEN / "orm-o01-cancel.hl7").bundle)
    [cancelled] = search(
        platform, "ServiceRequest", ("identifier", "urn:rhip:placer-order:510725H01|SQ2025031000002")
    )
    assert cancelled["id"] == order["id"]
    assert cancelled["status"] == "revoked"
    assert counts(platform) == before
    again = post(platform, mapped(GOLDEN / "orm-o01-lab-order.hl7").bundle)  # the new order, sent once more
    assert [e["response"]["status"] for e in again["entry"]][-1].startswith("200")
    [still] = search(platform, "ServiceRequest")
    assert still["status"] == "revoked"


def test_a_lab_order_with_its_specimen_and_question(platform: Platform) -> None:
    post(platform, mapped(GOLDEN / "oml-o21-specimen-gbk.hl7").bundle)
    [order] = search(platform, "ServiceRequest")
    [specimen] = search(platform, "Specimen")
    [answer] = search(platform, "Observation")
    assert order["specimen"] == [{"reference": f"Specimen/{specimen['id']}"}]
    assert order["supportingInfo"] == [{"reference": f"Observation/{answer['id']}"}]
    assert order["occurrencePeriod"] == {"start": "2025-03-13T07:00:00+08:00"}
    assert order["priority"] == "routine"
    assert order["requester"]["display"] == "潘建军"
    assert specimen["type"]["coding"][0]["code"] == "BLDV"
    [encounter] = search(platform, "Encounter")
    assert order["encounter"] == {"reference": f"Encounter/{encounter['id']}"}


@pytest.mark.parametrize(
    ("orc", "status"),
    [
        ("ORC|NW|1", "active"),
        ("ORC|NW|1|||CA", "revoked"),
        ("ORC|SC|1|||CM", "completed"),
        ("ORC|OC|1", "revoked"),
        ("ORC|HD|1", "on-hold"),
        ("ORC|RE|1", "unknown"),
    ],
)
def test_order_status_from_order_status_else_order_control(orc: str, status: str) -> None:
    message = parse(f"MSH|^~\\&|HIS|X|RHIP|RHIP|20250101||ORM^O01|1|P|2.5.1\r{orc}")
    assert order_status(message.first("ORC"), "unknown") == status


@pytest.mark.parametrize("path", corpus("ORM", "OML"), ids=lambda p: p.stem)
def test_every_public_sample_maps_or_is_refused(path: Path) -> None:
    message = load(path)
    try:
        result = map_message(message, context(message), RESULT_MAPPERS)
    except MappingError as error:
        assert error.hl7_code in ("100", "101", "102", "103", "200", "201", "207")
        return
    assert result.bundle["entry"]
