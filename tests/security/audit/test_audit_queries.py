"""Audit queries: entries by patient, user, institution, time, action and outcome; who viewed a record."""

from __future__ import annotations

import pytest

from rhip.db.engine import Database
from rhip.security.audit.queries import search, who_viewed
from rhip.security.principal import platform_principal

from .support import add, clinician, resident, system

DAY_US = 86_400_000_000
T0 = 1_760_000_000_000_000


@pytest.fixture
def seeded(db: Database) -> Database:
    add(db, clinician("doc1", "4501"), T0, patients=["p1"], resources=[("Patient", "p1", 1)])
    add(
        db,
        clinician("doc2", "4502"),
        T0 + DAY_US,
        subtype="search-type",
        patients=["p1", "p2"],
        query="code=x",
    )
    add(db, resident("res1", ("p1",)), T0 + 2 * DAY_US, patients=["p1"])
    add(db, system("lis-4502", "4502"), T0 + 3 * DAY_US, action="C", subtype="create", patients=["p1"])
    add(
        db,
        clinician("doc3", "4503"),
        T0 + 4 * DAY_US,
        patients=["p1"],
        outcome="4",
        detail={"reason": "care"},
    )
    add(db, platform_principal("empi"), T0 + 5 * DAY_US, patients=["p1"])
    add(db, clinician("doc1", "4501"), T0 + 6 * DAY_US, subtype="$everything", action="E", patients=["p2"])
    return db


def subjects(records: list) -> list[str]:  # type: ignore[type-arg]
    return [r.subject for r in records]


def test_by_patient_newest_first(seeded: Database) -> None:
    found = search(seeded, patient="p2")
    assert subjects(found) == ["user:doc1", "user:doc2"]
    assert found[0].seq > found[1].seq
    assert found[1].patients == ("p1", "p2")


def test_by_user_institution_action_and_outcome(seeded: Database) -> None:
    assert [r.seq for r in search(seeded, user="user:doc1")] == [7, 1]
    assert subjects(search(seeded, institution="4502")) == ["client:lis-4502", "user:doc2"]
    assert subjects(search(seeded, action="C")) == ["client:lis-4502"]
    assert subjects(search(seeded, outcome="4")) == ["user:doc3"]
    assert subjects(search(seeded, patient="p1", institution="4501")) == ["user:doc1"]


def test_by_time_range_and_limit(seeded: Database) -> None:
    window = search(seeded, since_us=T0 + DAY_US, until_us=T0 + 3 * DAY_US)
    assert subjects(window) == ["user:res1", "user:doc2"]
    assert len(search(seeded, limit=2)) == 2
    older = search(seeded, before=3)
    assert [r.seq for r in older] == [2, 1]


def test_who_viewed_a_record(seeded: Database) -> None:
    viewers = who_viewed(seeded, ["p1"], exclude_subjects=["user:res1"])
    # Successful reads by others: not the resident's own, not the write, not the refusal, not the platform.
    assert [v["who"] for v in viewers] == ["user:doc2", "user:doc1"]
    first = viewers[-1]
    assert first["institution"] == "4501" and first["purpose"] == "TREAT" and first["role"] == "clinician"
    assert first["recorded"] == "2025-10-09T08:53:20.000Z"
    assert first["resources"] == ["Patient/p1/_history/1"]
    with_children = who_viewed(seeded, ["p1", "p2"], exclude_subjects=["user:res1"])
    assert [v["who"] for v in with_children] == ["user:doc1", "user:doc2", "user:doc1"]
    assert with_children[0]["interaction"] == "operation"
    assert who_viewed(seeded, []) == []
    assert [v["who"] for v in who_viewed(seeded, ["p1"], since_us=T0 + DAY_US // 2)] == [
        "user:res1",
        "user:doc2",
    ]
