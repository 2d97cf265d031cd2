"""Server-assigned ids: UUID version 7 in the canonical text form, time-ordered, unique, valid FHIR ids."""

from __future__ import annotations

import time
import uuid

from rhip.core.ids import is_valid_fhir_id, new_resource_id, new_token


def test_an_id_is_a_canonical_version_7_uuid() -> None:
    for _ in range(1000):
        rid = new_resource_id()
        parsed = uuid.UUID(rid)
        assert str(parsed) == rid  # lower-case hex, dashes where the canonical form has them
        assert parsed.version == 7
        assert parsed.variant == uuid.RFC_4122
        assert is_valid_fhir_id(rid)


def test_ids_carry_their_creation_time_and_sort_by_it() -> None:
    before = time.time_ns() // 1_000_000
    first = new_resource_id()
    time.sleep(0.003)
    second = new_resource_id()
    after = time.time_ns() // 1_000_000
    assert before <= uuid.UUID(first).int >> 80 <= uuid.UUID(second).int >> 80 <= after
    assert first < second  # text order is time order (the storage relies on it)


def test_ids_are_unique() -> None:
    ids = {new_resource_id() for _ in range(20_000)}
    assert len(ids) == 20_000


def test_fhir_id_rules() -> None:
    assert is_valid_fhir_id("a" * 64)
    assert not is_valid_fhir_id("a" * 65)
    assert not is_valid_fhir_id("")
    assert not is_valid_fhir_id("has space")
    assert not is_valid_fhir_id("under_score")
    assert is_valid_fhir_id("Abc-1.2")
    assert new_token() != new_token()
