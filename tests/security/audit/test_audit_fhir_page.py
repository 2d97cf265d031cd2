"""AuditEvent searches answered from the audit log: parameters, paging by seq, totals, restrictions, and
refusal of what is not supported."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from rhip.core.errors import InvalidRequest, RhipError
from rhip.db.engine import Database
from rhip.fhir.repository import SearchPage
from rhip.fhir.search.parse import SearchParser
from rhip.security.audit.fhir_page import AuditRestriction, search_page
from rhip.security.audit.trail import AuditConfig, AuditTrail

from .support import add, clinician, resident, system

T0 = 1_760_000_000_000_000  # 2025-10-09T08:53:20Z
HOUR_US = 3_600_000_000


@pytest.fixture
def seeded(db: Database) -> Database:
    add(db, clinician("doc1", "4501"), T0, patients=["p1"], resources=[("Observation", "o1", 1)])
    add(db, clinician("doc2", "4502"), T0 + HOUR_US, subtype="search-type", patients=["p1", "p2"])
    add(db, system("lis-4502", "4502"), T0 + 2 * HOUR_US, action="C", subtype="create", patients=["p2"])
    add(
        db,
        clinician("doc3", "4503"),
        T0 + 3 * HOUR_US,
        patients=["p1"],
        outcome="4",
        detail={"reason": "care"},
    )
    add(db, resident("res1"), T0 + 4 * HOUR_US, patients=["p1"], resources=[("Observation", "o2", 3)])
    add(
        db, system("lis-4502", "4502"), T0 + 5 * HOUR_US, action="C", subtype="hl7v2:ORU^R01", patients=["p3"]
    )
    return db


def page(db: Database, parser: SearchParser, *pairs: tuple[str, str], **restrict: Any) -> SearchPage:
    query = parser.parse("AuditEvent", list(pairs))
    return search_page(db, query, AuditRestriction(**restrict))


def whos(result: SearchPage) -> list[str]:
    return [orjson.loads(m.content or b"")["agent"][0]["who"]["identifier"]["value"] for m in result.matches]


def test_everything_newest_first_as_auditevents(seeded: Database, parser: SearchParser) -> None:
    result = page(seeded, parser)
    assert len(result.matches) == 6
    first = result.matches[0]
    assert first.resource_type == "AuditEvent" and first.version == 1 and not first.deleted
    assert first.last_updated == "2025-10-09T13:53:20.000Z"
    assert first.resource()["id"] == first.id
    assert result.next_page is None


def test_patient_agent_entity_and_tokens(seeded: Database, parser: SearchParser) -> None:
    assert whos(page(seeded, parser, ("patient", "p2"))) == ["client:lis-4502", "user:doc2"]
    assert whos(page(seeded, parser, ("patient", "Patient/p3"))) == ["client:lis-4502"]
    assert whos(page(seeded, parser, ("agent", "user:doc1"))) == ["user:doc1"]
    assert whos(page(seeded, parser, ("agent:identifier", "urn:rhip:subject|user:doc2"))) == ["user:doc2"]
    assert len(page(seeded, parser, ("agent:identifier", "urn:rhip:client|lis-4502")).matches) == 2
    assert whos(page(seeded, parser, ("altid", "user:doc3"))) == ["user:doc3"]
    assert whos(page(seeded, parser, ("entity", "Observation/o2"))) == ["user:res1"]
    assert whos(page(seeded, parser, ("entity", "Observation/o1/_history/1"))) == ["user:doc1"]
    assert page(seeded, parser, ("entity", "Observation/o")).matches == []
    assert len(page(seeded, parser, ("action", "C")).matches) == 2
    assert whos(page(seeded, parser, ("outcome", "4"))) == ["user:doc3"]
    assert whos(page(seeded, parser, ("subtype", "search-type"))) == ["user:doc2"]
    assert len(page(seeded, parser, ("type", "rest")).matches) == 5
    assert len(page(seeded, parser, ("type", "110107")).matches) == 1
    assert whos(page(seeded, parser, ("agent-role", "resident"))) == ["user:res1"]
    assert len(page(seeded, parser, ("patient", "p1"), ("action", "R"), ("outcome", "0")).matches) == 3
    assert len(page(seeded, parser, ("patient", "p2,p3")).matches) == 3


def test_dates(seeded: Database, parser: SearchParser) -> None:
    # Recorded times are 08:53:20Z + n hours; the parser reads dates without an offset in Asia/Shanghai.
    assert len(page(seeded, parser, ("date", "ge2025-10-09T18:53:20+08:00")).matches) == 4
    assert len(page(seeded, parser, ("date", "gt2025-10-09T10:53:20Z")).matches) == 3
    assert len(page(seeded, parser, ("date", "lt2025-10-09T10:53:20Z")).matches) == 2
    assert len(page(seeded, parser, ("date", "le2025-10-09T10:53:20Z")).matches) == 3
    assert len(page(seeded, parser, ("date", "2025-10-09")).matches) == 6
    assert page(seeded, parser, ("date", "2025-10-10")).matches == []
    both = page(seeded, parser, ("date", "ge2025-10-09T09:00:00Z"), ("date", "lt2025-10-09T11:00:00Z"))
    assert whos(both) == ["client:lis-4502", "user:doc2"]
    assert len(page(seeded, parser, ("_lastUpdated", "gt2025-10-09T12:00:00Z")).matches) == 2


def test_pages_follow_seq_and_totals(seeded: Database, parser: SearchParser) -> None:
    first = page(seeded, parser, ("_count", "4"), ("_total", "accurate"))
    assert first.total == 6 and len(first.matches) == 4 and first.next_page
    second = page(seeded, parser, ("_count", "4"), ("_page", first.next_page))
    assert len(second.matches) == 2 and second.next_page is None
    ids = [m.id for m in first.matches + second.matches]
    assert ids == [m.id for m in page(seeded, parser).matches]
    oldest = page(seeded, parser, ("_sort", "date"), ("_count", "5"))
    assert [m.id for m in oldest.matches] == list(reversed(ids))[:5]
    rest = page(seeded, parser, ("_sort", "date"), ("_count", "5"), ("_page", oldest.next_page or ""))
    assert [m.id for m in rest.matches] == [ids[0]]
    counted = page(seeded, parser, ("patient", "p1"), ("_summary", "count"))
    assert counted.total == 4 and counted.matches == []
    assert page(seeded, parser, ("_count", "0")).total == 6


@pytest.mark.parametrize(
    "pairs",
    [
        [("address", "10.1.2.3")],
        [("site", "x")],
        [("entity", "o1")],
        [("agent", "Practitioner/1")],
        [("agent:identifier", "urn:other|x")],
        [("patient:missing", "true")],
        [("outcome:not", "0")],
        [("_sort", "action")],
        [("_include", "AuditEvent:agent")],
        [("_has:Provenance:target:agent", "x")],
        [("_page", "x12")],
        [("_page", "a3")],
    ],
)
def test_unsupported_searches_are_refused(seeded: Database, parser: SearchParser, pairs: list) -> None:  # type: ignore[type-arg]
    with pytest.raises(InvalidRequest):
        page(seeded, parser, *pairs)


def test_other_types_are_refused(seeded: Database, parser: SearchParser) -> None:
    with pytest.raises(RhipError):
        search_page(seeded, parser.parse("Patient", []), AuditRestriction())


def test_restrictions(seeded: Database, parser: SearchParser) -> None:
    assert len(page(seeded, parser, patients=("p2",)).matches) == 2
    assert page(seeded, parser, ("patient", "p3"), patients=("p2",)).matches == []
    assert page(seeded, parser, patients=()).matches == []
    assert page(seeded, parser, ("_total", "accurate"), patients=()).total == 0
    assert whos(page(seeded, parser, subject="user:doc1")) == ["user:doc1"]
    assert len(page(seeded, parser, institution="4502").matches) == 3
    assert page(seeded, parser, ("agent", "user:doc1"), institution="4502").matches == []


def test_a_resident_sees_who_and_why_but_not_addresses_queries_or_others(
    seeded: Database, parser: SearchParser
) -> None:
    result = page(seeded, parser, ("subtype", "search-type"), patients=("p1",), public=True)
    (event,) = [m.resource() for m in result.matches]
    assert [e["what"]["reference"] for e in event["entity"]] == ["Patient/p1"]
    assert all("network" not in a and "policy" not in a for a in event["agent"])
    assert event["agent"][0]["who"]["identifier"]["value"] == "user:doc2"


def test_the_trail_answers_with_patients_or_a_restriction(db: Database, parser: SearchParser) -> None:
    trail = AuditTrail(db, AuditConfig(flush_ms=60_000))
    try:
        trail.accessed(clinician(), action="R", subtype="read", resources=[], patients=["p1"])
        trail.accessed(clinician(), action="R", subtype="read", resources=[], patients=["p2"])
        trail.flush()
        query = parser.parse("AuditEvent", [])
        assert len(trail.search_page(query).matches) == 2
        assert len(trail.search_page(query, ("p1",)).matches) == 1
        assert len(trail.search_page(query, AuditRestriction(patients=("p2",))).matches) == 1
    finally:
        trail.close()
