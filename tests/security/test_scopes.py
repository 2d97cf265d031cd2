"""SMART scopes: parsing v2 and v1 forms, refusing what cannot be honoured, intersecting."""

from __future__ import annotations

import pytest

from rhip.core.errors import InvalidRequest
from rhip.security.scopes import Scope, intersect, parse_scope, parse_scopes, scope_string


def test_v2_scope_letters_in_order() -> None:
    scope = parse_scope("system/Patient.rs")
    assert scope == Scope("system", "Patient", frozenset("rs"))
    assert scope.allows("Patient", "r") and scope.allows("Patient", "s")
    assert not scope.allows("Patient", "c") and not scope.allows("Observation", "r")


def test_v1_read_and_write() -> None:
    assert parse_scope("patient/*.read") == Scope("patient", "*", frozenset("rs"))
    assert parse_scope("user/Observation.write") == Scope("user", "Observation", frozenset("cud"))


@pytest.mark.parametrize("text", ["user/*.sr", "user/*.xyz", "user/Patient.rs?category=vital-signs"])
def test_malformed_or_fine_grained_scopes_are_refused(text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_scope(text)


def test_non_resource_scopes_are_ignored() -> None:
    assert parse_scopes("openid fhirUser offline_access launch/patient user/*.rs") == {
        Scope("user", "*", frozenset("rs"))
    }


def test_intersection_never_grants_more_than_allowed() -> None:
    requested = parse_scopes("system/*.cruds system/Patient.rs")
    allowed = parse_scopes("system/Patient.rs system/Observation.r")
    granted = intersect(requested, allowed)
    assert scope_string(granted) == "system/Observation.r system/Patient.rs"
    assert intersect(parse_scopes("user/*.cruds"), allowed) == frozenset()
