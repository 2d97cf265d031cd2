"""Locations and HealthcareServices as CSV rows: checked, applied, read back; other fields kept."""

from __future__ import annotations

import pytest

from rhip.registries.places import (
    apply_location,
    apply_service,
    check_location,
    check_service,
    location_fields,
    service_fields,
)
from rhip.registries.records import RowError

ROW = {"institution_code": "H1", "code": "K01", "name": "心内科", "type": "50", "partof": "B1",
       "division": "510703", "address": "门诊楼三楼", "status": ""}  # fmt: skip


def test_a_location_row_round_trips_and_keeps_what_it_does_not_hold() -> None:
    fields = check_location(ROW)
    assert fields["status"] == "active"
    stored = {"resourceType": "Location", "id": "loc-H1-K01", "telecom": [{"system": "phone", "value": "1"}],
              "identifier": [{"system": "urn:other", "value": "x"}]}  # fmt: skip
    loc = apply_location(stored, fields, "org-H1", "loc-H1-B1")
    assert loc["telecom"] == stored["telecom"] and loc["id"] == "loc-H1-K01"
    assert {"system": "urn:other", "value": "x"} in loc["identifier"]
    assert {"system": "urn:rhip:sid:location:H1", "value": "K01"} in loc["identifier"]
    back = location_fields(loc)
    assert back == {
        **{k: v for k, v in ROW.items() if k != "partof"},
        "status": "active",
        "partof_id": "loc-H1-B1",
    }
    again = apply_location(loc, {**fields, "division": "", "address": ""}, "org-H1", None)
    assert "address" not in again and again["partOf"] == {"reference": "Location/loc-H1-B1"}


@pytest.mark.parametrize(
    ("change", "key"),
    [({"code": "科01"}, "dir.err.code"), ({"name": ""}, "dir.err.name"), ({"partof": "K01"}, "dir.err.parent"),
     ({"division": "51a"}, "dir.err.division"), ({"status": "closed"}, "dir.err.status")],
)  # fmt: skip
def test_a_bad_location_field_is_named(change: dict[str, str], key: str) -> None:
    with pytest.raises(RowError) as refused:
        check_location({**ROW, **change})
    assert refused.value.key == key


def test_a_service_row_round_trips() -> None:
    fields = check_service({"institution_code": "H1", "code": "S1", "name": "预防接种", "category": "18",
                            "location": "K01", "active": "否"})  # fmt: skip
    service = apply_service(None, fields, "org-H1", "loc-H1-K01")
    assert service["active"] is False and service["providedBy"] == {"reference": "Organization/org-H1"}
    assert service_fields(service) == {"institution_code": "H1", "code": "S1", "name": "预防接种",
                                       "category": "18", "location_id": "loc-H1-K01", "active": "false"}  # fmt: skip
    with pytest.raises(RowError):
        check_service({"institution_code": "H1", "code": "S1", "name": "x", "active": "maybe"})
