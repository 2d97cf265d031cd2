"""Search parameters a capability adds to the registry (CustomParam): FHIRPath ones and index hooks."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rhip.fhir.search.extract import IndexExtractor
from rhip.fhir.search.params import CustomParam, registry


def shout(value: Any, typ: str) -> list[str]:
    return [value.upper(), value[::-1]] if isinstance(value, str) else []


def test_a_hook_derives_values_and_never_shares_the_plain_expressions_nodes() -> None:
    extended = registry().extended(
        [
            CustomParam("Organization", "loud", "string", "Organization.name", "urn:x:loud", derive=shout,
                        derive_name="shout"),
            CustomParam("Organization", "city", "string", "Organization.address.city", "urn:x:city"),
        ]
    )  # fmt: skip
    loud = extended.get("Organization", "loud")
    assert loud is not None and loud.expression == "(Organization.name).shout()"
    assert loud.first_keys == frozenset({"name"})
    entries = IndexExtractor(extended, ZoneInfo("UTC")).extract(
        {"resourceType": "Organization", "name": "abc", "address": [{"city": "Mianyang"}]}
    )
    by_code = {(code, exact) for code, _norm, exact in entries.strings}
    assert {("loud", "ABC"), ("loud", "cba"), ("city", "Mianyang"), ("name", "abc")} <= by_code
    assert ("loud", "abc") not in by_code and ("name", "ABC") not in by_code


def test_taken_codes_and_unknown_types_are_refused_and_the_official_registry_is_left_alone() -> None:
    base = registry()
    with pytest.raises(ValueError, match="taken"):
        base.extended([CustomParam("Organization", "name", "string", "Organization.name", "urn:x")])
    with pytest.raises(ValueError, match="unknown type"):
        base.extended([CustomParam("Nothing", "x", "string", "Nothing.name", "urn:x")])
    with pytest.raises(ValueError):
        base.extended([CustomParam("Organization", "_x", "string", "Organization.name", "urn:x")])
    base.extended([CustomParam("Organization", "loud", "string", "Organization.name", "urn:x", derive=shout)])
    assert base.get("Organization", "loud") is None
