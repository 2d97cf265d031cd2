"""The FhirRepository contract of the SQL store, on SQLite always and on PostgreSQL when configured.

The tests go through the ``FhirRepository`` protocol (``platform.repository``); the SQL peeks only check
what the store promises about storage: outbox rows, the compartment column and the index rows. A few reach
into ``SqlFhirRepository`` itself: a fake clock for ``_since``, a transaction's connection for a race.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import text

from rhip.bootstrap.container import Platform
from rhip.core.errors import (
    Conflict,
    InvalidRequest,
    ResourceGone,
    ResourceNotFound,
    ValidationFailed,
    VersionConflict,
)
from rhip.core.events import Event
from rhip.fhir.events import ResourceChanged, ResourceCreated, ResourceDeleted, ResourceUpdated
from rhip.fhir.repository import EverythingRequest, FhirRepository, HistoryRequest, StoredResource
from rhip.fhir.search.parse import SearchParser
from rhip.store import reader
from rhip.store.repository import SqlFhirRepository

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
Sql = Callable[..., list[Any]]
INDEX_TABLES = (
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
)


class FakeClock:
    """A clock the test moves by hand (the store's timestamps have millisecond precision)."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> datetime:
        self.moment += timedelta(seconds=seconds)
        return self.moment


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2024, 3, 1, 8, 0, 0, tzinfo=UTC))


@pytest.fixture
def clocked(platform: Platform, clock: FakeClock) -> FhirRepository:
    """A repository on the platform's database whose clock is ``clock``."""
    store = platform.repository
    assert isinstance(store, SqlFhirRepository)
    return SqlFhirRepository(dataclasses.replace(store.ctx, clock=clock))


def patient(id: str | None = None, **elements: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"resourceType": "Patient", **elements}
    if id is not None:
        res["id"] = id
    return res


def observation(subject: str = "p1", code: str = "8480-6", **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{subject}"},
        "effectiveDateTime": "2024-01-15T08:30:00+08:00",
        "valueQuantity": {"value": 120, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        **elements,
    }


def ids(stored: list[StoredResource]) -> list[str]:
    return [s.id for s in stored]


def found(parser: SearchParser, repo: FhirRepository, rtype: str, *params: tuple[str, str]) -> set[str]:
    """The ids a search finds (one big page)."""
    page = repo.search(parser.parse(rtype, [*params, ("_count", "1000")]))
    assert page.next_page is None
    return {s.id for s in page.matches}


def us(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def outbox(sql: Sql) -> list[tuple[Any, ...]]:
    rows = sql("SELECT event, res_type, res_id, version, compartment, created_us FROM outbox ORDER BY id")
    return [tuple(r) for r in rows]


def pid_of(sql: Sql, rtype: str, rid: str) -> int:
    rows = sql("SELECT pid FROM resource WHERE res_type = :t AND res_id = :i", t=rtype, i=rid)
    assert len(rows) == 1
    return int(rows[0][0])


def index_rows(sql: Sql, pid: int) -> dict[str, list[tuple[Any, ...]]]:
    return {t: [tuple(r) for r in sql(f"SELECT * FROM {t} WHERE pid = :p", p=pid)] for t in INDEX_TABLES}


def run_threads(n: int, target: Callable[[int], None]) -> None:
    """Run ``target(i)`` in ``n`` threads started together; re-raise the first unexpected error."""
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait(30)
            target(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a writer thread hangs"
    if errors:
        raise errors[0]


# -- create -----------------------------------------------------------------------------------------


def test_create_assigns_uuid7_id_version_1_and_last_updated(repo: FhirRepository) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    stored = repo.create(patient(id="client-chosen", name=[{"family": "Wang"}]))
    after = datetime.now(UTC)

    assert stored.id != "client-chosen"  # an id in the body is ignored
    parsed = uuid.UUID(stored.id)
    assert parsed.version == 7
    assert str(parsed) == stored.id
    assert (stored.resource_type, stored.version, stored.deleted, stored.method) == (
        "Patient",
        1,
        False,
        "POST",
    )
    body = stored.resource()
    assert body["id"] == stored.id
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["lastUpdated"] == stored.last_updated
    assert INSTANT.fullmatch(stored.last_updated)
    moment = datetime.fromisoformat(stored.last_updated.replace("Z", "+00:00"))
    assert before <= moment <= after
    assert body["name"] == [{"family": "Wang"}]


def test_create_keeps_meta_but_sets_version_and_last_updated(repo: FhirRepository) -> None:
    tag = {"system": "http://example.org/tags", "code": "vip"}
    stored = repo.create(
        patient(meta={"versionId": "7", "lastUpdated": "2000-01-01T00:00:00Z", "tag": [tag]})
    )
    meta = stored.resource()["meta"]
    assert meta["tag"] == [tag]
    assert meta["versionId"] == "1"
    assert meta["lastUpdated"] == stored.last_updated


def test_server_ids_are_unique(repo: FhirRepository) -> None:
    created = [repo.create(patient()).id for _ in range(20)]
    assert len(set(created)) == 20
    assert all(uuid.UUID(i).version == 7 for i in created)


def test_create_with_id_uses_it_and_refuses_a_taken_one(repo: FhirRepository) -> None:
    stored = repo.create(patient(), id="fixed-1")
    assert stored.id == "fixed-1"
    assert repo.read("Patient", "fixed-1").version == 1
    with pytest.raises(Conflict) as err:
        repo.create(patient(name=[{"family": "Other"}]), id="fixed-1")
    assert err.value.http_status == 409
    assert "name" not in repo.read("Patient", "fixed-1").resource()
    # The same id is free for another type.
    assert repo.create({"resourceType": "Organization", "name": "x"}, id="fixed-1").id == "fixed-1"


def test_create_with_an_id_taken_in_the_same_transaction_conflicts(repo: FhirRepository) -> None:
    with pytest.raises(Conflict), repo.transaction() as tx:
        tx.create(patient(), id="twice")
        tx.create(patient(), id="twice")
    with pytest.raises(ResourceNotFound):
        repo.read("Patient", "twice")


def test_invalid_ids_are_refused(repo: FhirRepository, parser: SearchParser) -> None:
    for bad_id in ("has space", "a" * 65, "", "ünïcode", "a/b", "a_b"):
        with pytest.raises(InvalidRequest) as err:
            repo.create(patient(), id=bad_id)
        assert err.value.http_status == 400
        with pytest.raises(InvalidRequest):
            repo.update("Patient", bad_id, patient())
    assert repo.count(parser.parse("Patient", [])) == 0


def test_longest_valid_id_is_accepted(repo: FhirRepository) -> None:
    rid = "A-z.0" + "9" * 59
    assert len(rid) == 64
    stored, created = repo.update("Patient", rid, patient())
    assert created and stored.id == rid
    assert repo.read("Patient", rid).id == rid


def test_references_longer_than_any_id_are_stored_and_name_nothing(
    repo: FhirRepository, parser: SearchParser, sql: Sql
) -> None:
    long_id = "x" * 80
    stored = repo.create(
        observation(
            long_id,
            encounter={"reference": f"Encounter/{long_id}"},
            performer=[{"reference": "P" * 70 + "/1"}],
        )
    )
    assert repo.read("Observation", stored.id).id == stored.id
    assert found(parser, repo, "Observation", ("subject", f"Patient/{long_id}")) == set()
    assert found(parser, repo, "Observation", ("subject:missing", "false")) == {stored.id}
    assert sql("SELECT compartment FROM resource WHERE res_id = :i", i=stored.id)[0][0] is None


def test_validation_errors_are_422_with_element_paths(repo: FhirRepository, sql: Sql) -> None:
    with pytest.raises(ValidationFailed) as err:
        repo.create(patient(gender="x", foo=1, name=[{"given": ["a", 5]}]))
    error = err.value
    assert error.http_status == 422
    assert error.code == "RHIP-FHIR-0004"
    paths = {p for issue in error.issues() for p in issue.expression}
    assert {"Patient.gender", "Patient.foo", "Patient.name[0].given[1]"} <= paths
    assert all(i.severity in ("error", "fatal") for i in error.issues())
    assert sql("SELECT count(*) FROM resource")[0][0] == 0
    assert outbox(sql) == []


def test_update_is_validated_too(repo: FhirRepository) -> None:
    repo.update("Patient", "p1", patient(gender="female"))
    with pytest.raises(ValidationFailed) as err:
        repo.update("Patient", "p1", patient(gender="girl"))
    assert any("Patient.gender" in i.expression for i in err.value.issues())
    assert repo.read("Patient", "p1").resource()["gender"] == "female"


def test_unknown_or_mismatched_resource_type_is_invalid(repo: FhirRepository) -> None:
    with pytest.raises(InvalidRequest):
        repo.create({"resourceType": "NoSuchType"})
    with pytest.raises(InvalidRequest):
        repo.update("Patient", "p1", observation())


def test_update_with_a_different_id_in_the_body_is_invalid(repo: FhirRepository) -> None:
    with pytest.raises(InvalidRequest):
        repo.update("Patient", "p1", patient(id="p2"))
    with pytest.raises(ResourceNotFound):
        repo.read("Patient", "p1")


# -- read and vread ---------------------------------------------------------------------------------


def test_read_unknown_is_not_found(repo: FhirRepository) -> None:
    with pytest.raises(ResourceNotFound) as err:
        repo.read("Patient", "nobody")
    assert err.value.http_status == 404
    with pytest.raises(ResourceNotFound):
        repo.vread("Patient", "nobody", 1)


def test_read_returns_the_current_version(repo: FhirRepository) -> None:
    first = repo.create(patient(gender="male"))
    second, created = repo.update("Patient", first.id, patient(gender="female"))
    current = repo.read("Patient", first.id)
    assert not created
    assert current.version == 2
    assert current.content == second.content
    assert current.last_updated == second.last_updated
    assert current.etag == 'W/"2"'


def test_read_deleted_is_gone(repo: FhirRepository) -> None:
    stored = repo.create(patient())
    repo.delete("Patient", stored.id)
    with pytest.raises(ResourceGone) as err:
        repo.read("Patient", stored.id)
    assert err.value.http_status == 410


def test_vread_every_version(repo: FhirRepository) -> None:
    v1 = repo.create(patient(gender="male"))
    v2, _ = repo.update("Patient", v1.id, patient(gender="female"))
    deletion = repo.delete("Patient", v1.id)
    assert deletion is not None

    assert repo.vread("Patient", v1.id, 1).resource()["gender"] == "male"
    assert repo.vread("Patient", v1.id, 1).content == v1.content
    read2 = repo.vread("Patient", v1.id, 2)
    assert (read2.version, read2.method, read2.resource()["gender"]) == (2, "PUT", "female")
    assert read2.content == v2.content
    with pytest.raises(ResourceGone):
        repo.vread("Patient", v1.id, 3)
    with pytest.raises(ResourceNotFound):
        repo.vread("Patient", v1.id, 4)
    with pytest.raises(ResourceNotFound):
        repo.vread("Observation", v1.id, 1)


# -- update -----------------------------------------------------------------------------------------


def test_update_stores_a_new_version(repo: FhirRepository) -> None:
    v1 = repo.create(patient(gender="male"))
    v2, created = repo.update("Patient", v1.id, patient(id=v1.id, gender="female"))
    assert not created
    assert (v2.id, v2.version, v2.method) == (v1.id, 2, "PUT")
    body = v2.resource()
    assert body["meta"]["versionId"] == "2"
    assert body["gender"] == "female"
    assert INSTANT.fullmatch(body["meta"]["lastUpdated"])
    assert body["meta"]["lastUpdated"] >= v1.last_updated


def test_update_as_create(repo: FhirRepository, sql: Sql) -> None:
    stored, created = repo.update("Patient", "new-one", patient())
    assert created
    assert (stored.id, stored.version) == ("new-one", 1)
    assert stored.resource()["meta"]["versionId"] == "1"
    assert repo.read("Patient", "new-one").version == 1
    assert outbox(sql)[-1][:4] == ("ResourceCreated", "Patient", "new-one", 1)


def test_updating_a_deleted_resource_recreates_it(repo: FhirRepository, sql: Sql) -> None:
    repo.update("Patient", "p1", patient(gender="male"))
    repo.delete("Patient", "p1")
    stored, created = repo.update("Patient", "p1", patient(gender="female"))
    assert created
    assert stored.version == 3
    current = repo.read("Patient", "p1")
    assert (current.version, current.resource()["gender"]) == (3, "female")
    assert [e[0] for e in outbox(sql)] == ["ResourceCreated", "ResourceDeleted", "ResourceCreated"]


def test_if_match_current_version_succeeds(repo: FhirRepository) -> None:
    repo.update("Patient", "p1", patient())
    stored, created = repo.update("Patient", "p1", patient(gender="male"), if_match=1)
    assert (stored.version, created) == (2, False)
    stored, _ = repo.update("Patient", "p1", patient(gender="female"), if_match=2)
    assert stored.version == 3


def test_if_match_mismatch_is_a_version_conflict(repo: FhirRepository, sql: Sql) -> None:
    repo.update("Patient", "p1", patient())
    repo.update("Patient", "p1", patient(gender="male"))
    events = len(outbox(sql))
    for stale in (1, 3, 0):
        with pytest.raises(VersionConflict) as err:
            repo.update("Patient", "p1", patient(gender="female"), if_match=stale)
        assert err.value.http_status == 412
    current = repo.read("Patient", "p1")
    assert (current.version, current.resource()["gender"]) == (2, "male")
    assert len(outbox(sql)) == events


def test_if_match_on_a_missing_resource_is_a_version_conflict(repo: FhirRepository) -> None:
    with pytest.raises(VersionConflict):
        repo.update("Patient", "ghost", patient(), if_match=1)
    with pytest.raises(ResourceNotFound):
        repo.read("Patient", "ghost")


# -- delete -----------------------------------------------------------------------------------------


def test_delete_returns_the_deletion_version_and_keeps_history(repo: FhirRepository) -> None:
    stored = repo.create(patient())
    repo.update("Patient", stored.id, patient(gender="male"))
    deletion = repo.delete("Patient", stored.id)
    assert deletion is not None
    assert (deletion.id, deletion.version, deletion.deleted, deletion.content) == (stored.id, 3, True, None)
    assert deletion.method == "DELETE"
    assert INSTANT.fullmatch(deletion.last_updated)

    assert repo.delete("Patient", stored.id) is None  # deleting twice
    assert repo.delete("Patient", "never-was") is None

    history = repo.history(HistoryRequest("Patient", stored.id))
    assert [(e.version, e.deleted, e.method) for e in history.entries] == [
        (3, True, "DELETE"),
        (2, False, "PUT"),
        (1, False, "POST"),
    ]
    assert history.entries[0].content is None


# -- transactions -----------------------------------------------------------------------------------


class Boom(Exception):
    pass


def test_transaction_commits_everything_together(repo: FhirRepository, sql: Sql) -> None:
    repo.update("Patient", "keep", patient(gender="male"))
    repo.update("Patient", "drop", patient())
    with repo.transaction() as tx:
        created = tx.create(patient())
        tx.update("Patient", "keep", patient(gender="female"))
        tx.delete("Patient", "drop")
    assert repo.read("Patient", created.id).version == 1
    assert repo.read("Patient", "keep").version == 2
    with pytest.raises(ResourceGone):
        repo.read("Patient", "drop")
    assert [e[:4] for e in outbox(sql)[2:]] == [
        ("ResourceCreated", "Patient", created.id, 1),
        ("ResourceUpdated", "Patient", "keep", 2),
        ("ResourceDeleted", "Patient", "drop", 2),
    ]


@pytest.mark.parametrize("read_inside", [False, True], ids=["buffered", "flushed"])
def test_an_exception_in_a_transaction_rolls_back_every_write(
    repo: FhirRepository, sql: Sql, read_inside: bool
) -> None:
    repo.update("Patient", "keep", patient(gender="male"))
    repo.update("Patient", "drop", patient())
    before = outbox(sql)
    created: list[str] = []
    with pytest.raises(Boom), repo.transaction() as tx:
        created.append(tx.create(patient()).id)
        created.append(tx.create(observation(subject="keep")).id)
        tx.update("Patient", "keep", patient(gender="female"))
        tx.delete("Patient", "drop")
        if read_inside:
            assert tx.read("Patient", "keep").version == 2  # flushes the unit of work
        raise Boom
    for rid, rtype in zip(created, ("Patient", "Observation"), strict=True):
        with pytest.raises(ResourceNotFound):
            repo.read(rtype, rid)
    keep = repo.read("Patient", "keep")
    assert (keep.version, keep.resource()["gender"]) == (1, "male")
    assert repo.read("Patient", "drop").version == 1
    assert outbox(sql) == before
    assert sql("SELECT count(*) FROM resource_version")[0][0] == 2


def test_creates_only_transaction_rolls_back_on_exception(repo: FhirRepository, sql: Sql) -> None:
    with pytest.raises(Boom), repo.transaction() as tx:
        for _ in range(5):
            tx.create(patient())
        raise Boom
    assert sql("SELECT count(*) FROM resource")[0][0] == 0
    assert outbox(sql) == []


def test_a_failing_write_rolls_back_the_earlier_ones(repo: FhirRepository) -> None:
    repo.update("Patient", "p1", patient())
    with pytest.raises(VersionConflict), repo.transaction() as tx:
        first = tx.create(patient())
        tx.update("Patient", "p1", patient(gender="male"), if_match=7)
    with pytest.raises(ResourceNotFound):
        repo.read("Patient", first.id)
    assert repo.read("Patient", "p1").version == 1


def test_reads_inside_a_transaction_see_its_own_writes(
    repo: FhirRepository, parser: SearchParser, sql: Sql
) -> None:
    with repo.transaction() as tx:
        pat = tx.create(patient(name=[{"family": "Zhang"}]))
        obs = tx.create(observation(subject=pat.id))
        assert tx.read("Patient", pat.id).version == 1
        assert tx.vread("Observation", obs.id, 1).content == obs.content
        updated, created = tx.update("Patient", pat.id, patient(name=[{"family": "Li"}]))
        assert (updated.version, created) == (2, False)
        assert tx.read("Patient", pat.id).resource()["name"] == [{"family": "Li"}]
        page = tx.search(parser.parse("Observation", [("patient", pat.id)]))
        assert ids(page.matches) == [obs.id]
        assert tx.count(parser.parse("Patient", [("family", "Li")])) == 1
        assert tx.count(parser.parse("Patient", [("family", "Zhang")])) == 0
        assert [e.version for e in tx.history(HistoryRequest("Patient", pat.id)).entries] == [2, 1]
        assert ids(tx.everything(EverythingRequest(pat.id)).matches) == [pat.id, obs.id]
        # Not visible to others before the commit.
        with pytest.raises(ResourceNotFound):
            repo.read("Patient", pat.id)
    assert repo.read("Patient", pat.id).version == 2
    assert [e[:4] for e in outbox(sql)] == [
        ("ResourceCreated", "Patient", pat.id, 1),
        ("ResourceCreated", "Observation", obs.id, 1),
        ("ResourceUpdated", "Patient", pat.id, 2),
    ]


def test_transaction_new_id(repo: FhirRepository, parser: SearchParser) -> None:
    with repo.transaction() as tx:
        pid = tx.new_id()
        other = tx.new_id()
        assert pid != other
        assert uuid.UUID(pid).version == 7
        obs = tx.create(observation(subject=pid))
        pat = tx.create(patient(), id=pid)
        assert pat.id == pid
    assert repo.read("Patient", pid).version == 1
    assert found(parser, repo, "Observation", ("patient", pid)) == {obs.id}
    with pytest.raises(ResourceNotFound):
        repo.read("Patient", other)


def test_nested_transaction_is_the_same_unit(repo: FhirRepository) -> None:
    with pytest.raises(Boom), repo.transaction() as tx:
        with tx.transaction() as inner:
            inner.create(patient(), id="inner")
        raise Boom
    with pytest.raises(ResourceNotFound):
        repo.read("Patient", "inner")


def test_lock_inside_a_transaction(repo: FhirRepository) -> None:
    with repo.transaction() as tx:
        tx.lock("Patient?identifier=x|1")
        tx.create(patient(), id="locked")
    assert repo.read("Patient", "locked").version == 1


# -- history ----------------------------------------------------------------------------------------


def test_history_at_instance_and_type_level(repo: FhirRepository) -> None:
    pat = repo.create(patient())
    obs = repo.create(observation(subject=pat.id))
    repo.update("Patient", pat.id, patient(gender="male"))
    repo.delete("Observation", obs.id)

    instance = repo.history(HistoryRequest("Patient", pat.id))
    assert [(e.id, e.version) for e in instance.entries] == [(pat.id, 2), (pat.id, 1)]
    assert instance.total == 2 and instance.next_page is None

    by_type = repo.history(HistoryRequest("Observation"))
    assert [(e.id, e.version, e.deleted) for e in by_type.entries] == [(obs.id, 2, True), (obs.id, 1, False)]


def test_system_history_without_filters(repo: FhirRepository) -> None:
    """``GET /_history``: no type, id, ``_since``, ``_at`` or page (the reader builds an empty ``and_()``)."""
    pat = repo.create(patient())
    obs = repo.create(observation(subject=pat.id))
    repo.update("Patient", pat.id, patient(gender="male"))
    repo.delete("Observation", obs.id)
    system = repo.history(HistoryRequest())
    assert [(e.resource_type, e.version) for e in system.entries] == [
        ("Observation", 2),
        ("Patient", 2),
        ("Observation", 1),
        ("Patient", 1),
    ]
    assert system.total == 4


def test_instance_history_of_an_unknown_resource_is_not_found(repo: FhirRepository) -> None:
    with pytest.raises(ResourceNotFound):
        repo.history(HistoryRequest("Patient", "nobody"))


def test_history_since(clocked: FhirRepository, clock: FakeClock) -> None:
    clocked.update("Patient", "p1", patient())
    clocked.create(patient())
    t1 = clock.advance(60)
    clocked.update("Patient", "p1", patient(gender="male"))
    other = clocked.create({"resourceType": "Organization", "name": "x"})
    clock.advance(60)
    clocked.update("Patient", "p1", patient(gender="female"))

    instance = clocked.history(HistoryRequest("Patient", "p1", since_us=us(t1)))
    assert [e.version for e in instance.entries] == [3, 2]
    assert instance.entries[-1].last_updated == "2024-03-01T08:01:00.000Z"
    system = clocked.history(HistoryRequest(since_us=us(t1)))
    assert [(e.resource_type, e.version) for e in system.entries] == [
        ("Patient", 3),
        ("Organization", 1),
        ("Patient", 2),
    ]
    assert system.entries[1].id == other.id
    at = clocked.history(HistoryRequest("Patient", "p1", at_start_us=us(t1)))
    assert [e.version for e in at.entries] == [2]  # the version current at t1, not every one before it
    future = clocked.history(HistoryRequest(since_us=us(clock.advance(1))))
    assert (future.entries, future.total) == ([], 0)


def test_history_at_returns_the_versions_current_then(
    platform: Platform, clocked: FhirRepository, clock: FakeClock
) -> None:
    """R4 ``_at``: only the versions that were current at some point during the given time."""
    start = clock.moment
    clocked.update("Patient", "p1", patient())  # v1 at +0 s
    clock.advance(30)
    org = clocked.create({"resourceType": "Organization", "name": "x"})  # at +30 s
    clock.advance(30)
    clocked.update("Patient", "p1", patient(gender="male"))  # v2 at +60 s
    clock.advance(60)
    clocked.update("Patient", "p1", patient(gender="female"))  # v3 at +120 s
    clock.advance(60)
    later = clocked.create({"resourceType": "Organization", "name": "y"})  # at +180 s

    def at(
        seconds: float, until: float | None = None, rtype: str | None = "Patient", rid: str | None = "p1"
    ) -> list[tuple[str, int]]:
        end = None if until is None else us(start + timedelta(seconds=until))
        request = HistoryRequest(
            rtype, rid, at_start_us=us(start + timedelta(seconds=seconds)), at_end_us=end, count=100
        )
        with platform.db.read() as conn:
            page = reader.history(conn, request, 1000)
        return [(e.resource_type, e.version) for e in page.entries]

    assert at(45) == [("Patient", 1)]  # between v1 and v2: only v1
    assert at(60) == [("Patient", 2)]  # v2 stored at that very instant
    assert at(119.999) == [("Patient", 2)]
    assert at(500) == [("Patient", 3)]
    assert at(-1) == []  # before the Patient existed
    # A period: what was current at its start, and what was stored during it.
    assert at(90, 150) == [("Patient", 3), ("Patient", 2)]
    assert at(30, 150) == [("Patient", 3), ("Patient", 2), ("Patient", 1)]
    assert at(60, 120) == [("Patient", 3), ("Patient", 2)]
    # System level: one version per resource at an instant; the Organization made later is not there.
    assert at(45, rtype=None, rid=None) == [("Organization", 1), ("Patient", 1)]
    assert at(200, rtype=None, rid=None) == [("Organization", 1), ("Patient", 3), ("Organization", 1)]
    assert later.id != org.id
    # Through the repository (an instant).
    page = clocked.history(HistoryRequest("Patient", "p1", at_start_us=us(start + timedelta(seconds=45))))
    assert [e.version for e in page.entries] == [1]
    assert page.total == 1


def test_history_count_and_paging(repo: FhirRepository) -> None:
    repo.update("Patient", "p1", patient())
    for gender in ("male", "female", "other", "unknown"):
        repo.update("Patient", "p1", patient(gender=gender))

    first = repo.history(HistoryRequest("Patient", "p1", count=2))
    assert [e.version for e in first.entries] == [5, 4]
    assert first.total is None and first.next_page is not None
    # A new version arriving while paging does not shift the later pages.
    repo.update("Patient", "p1", patient(gender="male"))
    second = repo.history(HistoryRequest("Patient", "p1", count=2, page=first.next_page))
    assert [e.version for e in second.entries] == [3, 2]
    third = repo.history(HistoryRequest("Patient", "p1", count=2, page=second.next_page))
    assert [e.version for e in third.entries] == [1]
    assert third.next_page is None

    everything = repo.history(HistoryRequest("Patient", "p1", count=100))
    assert [e.version for e in everything.entries] == [6, 5, 4, 3, 2, 1]
    assert everything.total == 6


def test_history_count_zero_does_not_report_zero_versions(repo: FhirRepository) -> None:
    """``_count=0`` asks only for the total: a resource with three versions must not report ``total: 0``."""
    repo.update("Patient", "p1", patient())
    repo.update("Patient", "p1", patient(gender="male"))
    repo.update("Patient", "p1", patient(gender="female"))
    page = repo.history(HistoryRequest("Patient", "p1", count=0))
    assert page.entries == []
    assert page.total in (None, 3)


def test_history_invalid_page_token(repo: FhirRepository) -> None:
    repo.update("Patient", "p1", patient())
    refused = []
    for token in ("abc", "1.5", " ", "99999999999999999999"):
        try:
            repo.history(HistoryRequest(page=token))
        except InvalidRequest:
            refused.append(token)
        except Exception as exc:  # escapes the FHIR layer as a 500
            refused.append(f"{token}: {type(exc).__name__}")
    assert refused == ["abc", "1.5", " ", "99999999999999999999"]


# -- $everything ------------------------------------------------------------------------------------


def test_everything_returns_compartment_and_referenced_resources(repo: FhirRepository) -> None:
    practitioner = repo.create({"resourceType": "Practitioner", "name": [{"family": "Doc"}]})
    repo.create({"resourceType": "Organization", "name": "unrelated"})
    pat, _ = repo.update("Patient", "p1", patient())
    repo.update("Patient", "p2", patient())
    obs = repo.create(observation(performer=[{"reference": f"Practitioner/{practitioner.id}"}]))
    obs2 = repo.create(observation(code="8462-4"))
    repo.create(observation(subject="p2"))

    page = repo.everything(EverythingRequest("p1"))
    assert ids(page.matches) == ["p1", obs.id, obs2.id]
    assert page.matches[0].content == pat.content
    assert ids(page.included) == [practitioner.id]
    assert page.total == 3
    assert page.next_page is None


def test_everything_includes_every_compartment_resource_type(repo: FhirRepository) -> None:
    """Encounter, Condition and Procedure are in the Patient compartment through their ``patient`` parameter."""
    repo.update("Patient", "p1", patient())
    encounter = repo.create(
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/p1"},
        }
    )
    condition = repo.create(
        {
            "resourceType": "Condition",
            "code": {"text": "hypertension"},
            "subject": {"reference": "Patient/p1"},
        }
    )
    procedure = repo.create(
        {"resourceType": "Procedure", "status": "completed", "subject": {"reference": "Patient/p1"}}
    )
    obs = repo.create(observation())
    page = repo.everything(EverythingRequest("p1"))
    assert set(ids(page.matches)) == {"p1", encounter.id, condition.id, procedure.id, obs.id}


def _patient_with_references(repo: FhirRepository) -> tuple[StoredResource, StoredResource]:
    """p1, whose managing Organization and GP are created first; returns those two."""
    org = repo.create({"resourceType": "Organization", "name": "County hospital"})
    gp = repo.create({"resourceType": "Practitioner", "name": [{"family": "Gp"}]})
    repo.update(
        "Patient",
        "p1",
        patient(
            managingOrganization={"reference": f"Organization/{org.id}"},
            generalPractitioner=[{"reference": f"Practitioner/{gp.id}"}],
        ),
    )
    return org, gp


def test_everything_includes_what_the_patient_references(repo: FhirRepository) -> None:
    org, gp = _patient_with_references(repo)
    page = repo.everything(EverythingRequest("p1"))
    assert ids(page.matches) == ["p1"]
    assert set(ids(page.included)) == {org.id, gp.id}


def test_everything_type_filter(repo: FhirRepository) -> None:
    repo.update("Patient", "p1", patient())
    obs = repo.create(observation())
    repo.create(
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
            "patient": {"reference": "Patient/p1"},
            "code": {"text": "peanut"},
        }
    )
    only_allergies = repo.everything(EverythingRequest("p1", types=("AllergyIntolerance",)))
    assert [s.resource_type for s in only_allergies.matches] == ["AllergyIntolerance"]
    only_obs = repo.everything(EverythingRequest("p1", types=("Observation",)))
    assert ids(only_obs.matches) == [obs.id]
    with_patient = repo.everything(EverythingRequest("p1", types=("Patient", "Observation")))
    assert ids(with_patient.matches) == ["p1", obs.id]
    with pytest.raises(InvalidRequest):
        repo.everything(EverythingRequest("p1", types=("NoSuchType",)))


def test_everything_since(clocked: FhirRepository, clock: FakeClock) -> None:
    clocked.update("Patient", "p1", patient())
    old = clocked.create(observation())
    t1 = clock.advance(3600)
    new = clocked.create(observation(code="8462-4"))
    clock.advance(60)
    clocked.update("Observation", old.id, observation(id=old.id, status="amended"))

    page = clocked.everything(EverythingRequest("p1", since_us=us(t1)))
    assert ids(page.matches) == [old.id, new.id]  # the Patient itself was not changed since
    later = clocked.everything(EverythingRequest("p1", since_us=us(clock.advance(1))))
    assert later.matches == []


def _referenced_world(repo: FhirRepository) -> dict[str, str]:
    """p1 references an Organization and a GP; its Observation references a performer."""
    org, gp = _patient_with_references(repo)
    performer = repo.create({"resourceType": "Practitioner", "name": [{"family": "Performer"}]})
    obs = repo.create(observation(performer=[{"reference": f"Practitioner/{performer.id}"}]))
    allergy = repo.create(
        {
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]},
            "patient": {"reference": "Patient/p1"},
            "code": {"text": "peanut"},
            "recorder": {"reference": f"Practitioner/{gp.id}"},
        }
    )
    return {"org": org.id, "gp": gp.id, "performer": performer.id, "obs": obs.id, "allergy": allergy.id}


def every_entry(page: Any) -> list[tuple[str, str]]:
    return [(s.resource_type, s.id) for s in [*page.matches, *page.included]]


def test_everything_type_filter_applies_to_referenced_resources(repo: FhirRepository) -> None:
    """_type limits every entry, not only the compartment's: no Organization for _type=Observation."""
    w = _referenced_world(repo)
    only_obs = repo.everything(EverythingRequest("p1", types=("Observation",)))
    assert every_entry(only_obs) == [("Observation", w["obs"])]

    with_practitioners = repo.everything(EverythingRequest("p1", types=("Observation", "Practitioner")))
    assert [(s.resource_type, s.id) for s in with_practitioners.matches] == [("Observation", w["obs"])]
    assert sorted(every_entry(with_practitioners)[1:]) == sorted(
        [("Practitioner", w["gp"]), ("Practitioner", w["performer"])]
    )

    patient_and_org = repo.everything(EverythingRequest("p1", types=("Patient", "Organization")))
    assert every_entry(patient_and_org) == [("Patient", "p1"), ("Organization", w["org"])]

    unfiltered = repo.everything(EverythingRequest("p1"))
    assert {t for t, _ in every_entry(unfiltered)} == {
        "Patient",
        "Observation",
        "AllergyIntolerance",
        "Organization",
        "Practitioner",
    }


def test_everything_since_applies_to_referenced_resources(clocked: FhirRepository, clock: FakeClock) -> None:
    """_since limits every entry: what the Patient and the page reference too."""
    w = _referenced_world(clocked)
    t1 = clock.advance(3600)
    clocked.update(
        "Practitioner", w["performer"], {"resourceType": "Practitioner", "name": [{"family": "Renamed"}]}
    )
    clocked.update(
        "Observation",
        w["obs"],
        observation(
            id=w["obs"],
            status="amended",
            performer=[
                {"reference": f"Practitioner/{w['performer']}"},
                {"reference": f"Practitioner/{w['gp']}"},
            ],
        ),
    )

    page = clocked.everything(EverythingRequest("p1", since_us=us(t1)))
    assert every_entry(page) == [("Observation", w["obs"]), ("Practitioner", w["performer"])]
    for entry in [*page.matches, *page.included]:
        assert entry.last_updated >= "2024-03-01T09:00:00.000Z"
    both = clocked.everything(EverythingRequest("p1", since_us=us(t1), types=("Observation", "Organization")))
    assert every_entry(both) == [("Observation", w["obs"])]


def test_everything_paging(repo: FhirRepository) -> None:
    repo.update("Patient", "p1", patient())
    members = [repo.create(observation()).id for _ in range(5)]
    deleted = repo.create(observation()).id
    repo.delete("Observation", deleted)

    seen: list[str] = []
    page = repo.everything(EverythingRequest("p1", count=2))
    assert page.total is None and page.next_page is not None
    seen += ids(page.matches)
    late = repo.create(observation()).id  # created while paging: beyond the watermark
    pages = 1
    while page.next_page is not None:
        page = repo.everything(EverythingRequest("p1", count=2, page=page.next_page))
        seen += ids(page.matches)
        pages += 1
        assert pages < 10
    assert pages == 3
    assert seen == ["p1", *members]
    assert late not in seen


def test_everything_of_unknown_or_deleted_patient(repo: FhirRepository) -> None:
    with pytest.raises(ResourceNotFound):
        repo.everything(EverythingRequest("nobody"))
    repo.update("Patient", "p1", patient())
    repo.delete("Patient", "p1")
    with pytest.raises(ResourceGone):
        repo.everything(EverythingRequest("p1"))


# -- outbox and events ------------------------------------------------------------------------------


def test_outbox_has_one_event_per_version(repo: FhirRepository, sql: Sql) -> None:
    repo.update("Patient", "p1", patient())
    obs = repo.create(observation())
    repo.update("Observation", obs.id, observation(status="amended"))
    org = repo.create({"resourceType": "Organization", "name": "x"})
    rows = outbox(sql)
    assert [r[:5] for r in rows] == [
        ("ResourceCreated", "Patient", "p1", 1, "p1"),
        ("ResourceCreated", "Observation", obs.id, 1, "p1"),
        ("ResourceUpdated", "Observation", obs.id, 2, "p1"),
        ("ResourceCreated", "Organization", org.id, 1, None),
    ]
    # Each event names a stored version and carries that version's timestamp.
    versions = {tuple(r) for r in sql("SELECT res_type, res_id, version, updated_us FROM resource_version")}
    assert {(r[1], r[2], r[3], r[5]) for r in rows} == versions


def test_outbox_of_a_transaction_is_written_with_it(repo: FhirRepository, sql: Sql) -> None:
    with repo.transaction() as tx:
        a = tx.create(observation())
        tx.update("Observation", a.id, observation(status="amended"))
        tx.delete("Observation", a.id)
        b = tx.create(patient(), id="p9")
    rows = outbox(sql)
    assert [r[:4] for r in rows] == [
        ("ResourceCreated", "Observation", a.id, 1),
        ("ResourceUpdated", "Observation", a.id, 2),
        ("ResourceDeleted", "Observation", a.id, 3),
        ("ResourceCreated", "Patient", b.id, 1),
    ]
    assert len({r[5] for r in rows}) == 1  # one transaction, one timestamp


def test_deletion_event_keeps_the_compartment(platform: Platform, repo: FhirRepository, sql: Sql) -> None:
    """Consumers route and shard by compartment: the ResourceDeleted of an Observation of p1 must carry 'p1'."""
    published: list[Event] = []
    platform.events.subscribe(ResourceDeleted, published.append)
    obs = repo.create(observation(subject="p1"))
    repo.delete("Observation", obs.id)
    assert outbox(sql)[-1][:5] == ("ResourceDeleted", "Observation", obs.id, 2, "p1")
    assert published == [ResourceDeleted("Observation", obs.id, 2, "p1")]
    assert (
        sql("SELECT compartment FROM resource_version WHERE res_id = :i AND version = 2", i=obs.id)[0][0]
        == "p1"
    )


def test_events_are_published_after_commit_only(platform: Platform, repo: FhirRepository, sql: Sql) -> None:
    published: list[ResourceChanged] = []
    for kind in (ResourceCreated, ResourceUpdated, ResourceDeleted):
        platform.events.subscribe(kind, published.append)  # type: ignore[arg-type]
    with pytest.raises(Boom), repo.transaction() as tx:
        tx.create(patient())
        raise Boom
    assert published == []
    repo.update("Patient", "p1", patient())
    repo.update("Patient", "p1", patient(gender="male"))
    assert [(type(e).__name__, e.id, e.version, e.compartment) for e in published] == [
        (r[0], r[2], r[3], r[4]) for r in outbox(sql)
    ]


# -- compartment column and index rows --------------------------------------------------------------


def test_compartment_column_on_resource_versions_and_every_index_row(repo: FhirRepository, sql: Sql) -> None:
    pat, _ = repo.update("Patient", "p1", patient(name=[{"family": "Wang"}], gender="male"))
    obs = repo.create(observation(subject="p1"))
    org = repo.create({"resourceType": "Organization", "name": "x"})

    pid = pid_of(sql, "Observation", obs.id)
    assert sql("SELECT compartment FROM resource WHERE pid = :p", p=pid)[0][0] == "p1"
    assert sql("SELECT compartment FROM resource_version WHERE pid = :p", p=pid)[0][0] == "p1"
    rows = index_rows(sql, pid)
    filled = {t for t, r in rows.items() if r}
    assert {"idx_token", "idx_date", "idx_quantity", "idx_reference"} <= filled
    comps = {r[1] for t in filled for r in rows[t]}
    assert comps == {"p1"}

    ppid = pid_of(sql, "Patient", pat.id)
    patient_rows = index_rows(sql, ppid)
    assert patient_rows["idx_string"]
    assert {r[1] for rs in patient_rows.values() for r in rs} == {"p1"}
    assert sql("SELECT compartment FROM resource WHERE pid = :p", p=ppid)[0][0] == "p1"

    opid = pid_of(sql, "Organization", org.id)
    assert sql("SELECT compartment FROM resource WHERE pid = :p", p=opid)[0][0] is None
    assert {r[1] for rs in index_rows(sql, opid).values() for r in rs} == {None}


def test_compartment_follows_an_update(repo: FhirRepository, sql: Sql) -> None:
    obs = repo.create(observation(subject="p1"))
    repo.update("Observation", obs.id, observation(id=obs.id, subject="p2"))
    pid = pid_of(sql, "Observation", obs.id)
    assert sql("SELECT compartment FROM resource WHERE pid = :p", p=pid)[0][0] == "p2"
    assert {r[1] for rs in index_rows(sql, pid).values() for r in rs} == {"p2"}


def test_index_rows_are_removed_on_delete(repo: FhirRepository, parser: SearchParser, sql: Sql) -> None:
    obs = repo.create(observation())
    keep = repo.create(observation())
    pid = pid_of(sql, "Observation", obs.id)
    assert any(index_rows(sql, pid).values())
    repo.delete("Observation", obs.id)
    assert index_rows(sql, pid) == {t: [] for t in INDEX_TABLES}
    assert found(parser, repo, "Observation", ("patient", "p1")) == {keep.id}
    assert found(parser, repo, "Observation", ("code", f"{LOINC}|8480-6")) == {keep.id}
    assert found(parser, repo, "Observation", ("_id", obs.id)) == set()
    assert repo.count(parser.parse("Observation", [])) == 1


def test_index_rows_are_replaced_on_update(repo: FhirRepository, parser: SearchParser, sql: Sql) -> None:
    obs = repo.create(observation(subject="p1", code="8480-6"))
    pid = pid_of(sql, "Observation", obs.id)
    rows_before = {t: len(r) for t, r in index_rows(sql, pid).items()}

    repo.update(
        "Observation",
        obs.id,
        observation(
            subject="p2",
            code="8462-4",
            effectiveDateTime="2023-06-01",
            valueQuantity={"value": 80, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        ),
    )
    assert found(parser, repo, "Observation", ("code", "8480-6")) == set()
    assert found(parser, repo, "Observation", ("code", "8462-4")) == {obs.id}
    assert found(parser, repo, "Observation", ("patient", "p1")) == set()
    assert found(parser, repo, "Observation", ("patient", "p2")) == {obs.id}
    assert found(parser, repo, "Observation", ("date", "2024-01-15")) == set()
    assert found(parser, repo, "Observation", ("date", "2023-06-01")) == {obs.id}
    assert found(parser, repo, "Observation", ("value-quantity", "120")) == set()
    assert found(parser, repo, "Observation", ("value-quantity", "80")) == {obs.id}
    rows_after = {t: len(r) for t, r in index_rows(sql, pid).items()}
    assert rows_after == rows_before  # replaced, not accumulated

    # An update that drops an element drops its index rows.
    repo.update(
        "Observation", obs.id, {k: v for k, v in observation(subject="p2").items() if k != "valueQuantity"}
    )
    assert index_rows(sql, pid)["idx_quantity"] == []
    assert found(parser, repo, "Observation", ("value-quantity", "120")) == set()


def test_index_rows_after_updates_inside_one_transaction(
    repo: FhirRepository, parser: SearchParser, sql: Sql
) -> None:
    existing = repo.create(observation(code="1111-1"))
    with repo.transaction() as tx:
        obs = tx.create(observation(code="2222-2"))
        tx.update("Observation", obs.id, observation(code="3333-3"))
        tx.update("Observation", existing.id, observation(code="4444-4"))
        assert tx.read("Observation", existing.id).version == 2  # flush
        tx.update("Observation", existing.id, observation(code="5555-5"))
        tx.update("Observation", obs.id, observation(code="6666-6"))
    for code in ("1111-1", "2222-2", "3333-3", "4444-4"):
        assert found(parser, repo, "Observation", ("code", code)) == set(), code
    assert found(parser, repo, "Observation", ("code", "5555-5")) == {existing.id}
    assert found(parser, repo, "Observation", ("code", "6666-6")) == {obs.id}
    tokens = index_rows(sql, pid_of(sql, "Observation", existing.id))["idx_token"]
    assert [r for r in tokens if r[-1] in ("1111-1", "4444-4")] == []


def test_recreated_resource_is_indexed_again(repo: FhirRepository, parser: SearchParser) -> None:
    repo.update("Observation", "o1", observation(id="o1"))
    repo.delete("Observation", "o1")
    assert found(parser, repo, "Observation", ("patient", "p1")) == set()
    repo.update("Observation", "o1", observation(id="o1", subject="p3"))
    assert found(parser, repo, "Observation", ("patient", "p3")) == {"o1"}
    assert found(parser, repo, "Observation", ("patient", "p1")) == set()


def test_uri_below_matches_whole_path_segments(repo: FhirRepository, parser: SearchParser) -> None:
    """``url:below=http://a/b`` is http://a/b itself and what lies under it, not http://a/bc."""
    urls = {
        "same": "http://example.org/fhir/Questionnaire/phq",
        "child": "http://example.org/fhir/Questionnaire/phq/v2",
        "grandchild": "http://example.org/fhir/Questionnaire/phq/v2/draft",
        "sibling": "http://example.org/fhir/Questionnaire/phq-9",
        "longer": "http://example.org/fhir/Questionnaire/phqx/v1",
        "parent": "http://example.org/fhir/Questionnaire",
    }
    for rid, url in urls.items():
        repo.update("Questionnaire", rid, {"resourceType": "Questionnaire", "status": "active", "url": url})
    below = "http://example.org/fhir/Questionnaire/phq"
    assert found(parser, repo, "Questionnaire", ("url:below", below)) == {"same", "child", "grandchild"}
    assert found(parser, repo, "Questionnaire", ("url:below", below + "/")) == {"child", "grandchild"}
    assert found(parser, repo, "Questionnaire", ("url:below", below + "/v2")) == {"child", "grandchild"}
    assert found(parser, repo, "Questionnaire", ("url:below", "http://example.org/fhir/Question")) == set()
    assert found(parser, repo, "Questionnaire", ("url:below", "http://example.org/fhir")) == set(urls)
    # Several values are alternatives, each matched on segment boundaries.
    either = found(parser, repo, "Questionnaire", ("url:below", f"{below}/v2/draft,{below}-9"))
    assert either == {"grandchild", "sibling"}


# -- concurrency ------------------------------------------------------------------------------------


def test_concurrent_if_match_updates_one_winner_per_version(repo: FhirRepository) -> None:
    """Threads increment a counter with read + If-Match update; retries on conflict; nothing is lost."""
    repo.update("Patient", "counter", patient(multipleBirthInteger=0))
    threads, increments = 4, 5
    won: list[list[int]] = [[] for _ in range(threads)]
    conflicts = [0] * threads

    def work(i: int) -> None:
        done = 0
        while done < increments:
            current = repo.read("Patient", "counter")
            value = current.resource()["multipleBirthInteger"]
            try:
                stored, _ = repo.update(
                    "Patient", "counter", patient(multipleBirthInteger=value + 1), if_match=current.version
                )
            except VersionConflict:
                conflicts[i] += 1
                continue
            won[i].append(stored.version)
            done += 1

    run_threads(threads, work)
    versions = sorted(v for w in won for v in w)
    assert versions == list(range(2, 2 + threads * increments))  # every version won exactly once
    final = repo.read("Patient", "counter")
    assert final.version == 1 + threads * increments
    assert final.resource()["multipleBirthInteger"] == threads * increments  # no lost update
    history = repo.history(HistoryRequest("Patient", "counter", count=100))
    assert [e.version for e in history.entries] == list(range(final.version, 0, -1))
    assert [e.resource()["multipleBirthInteger"] for e in history.entries] == list(
        range(threads * increments, -1, -1)
    )


def test_concurrent_if_match_on_the_same_version_exactly_one_wins(repo: FhirRepository) -> None:
    repo.update("Patient", "p1", patient())
    threads = 6
    outcomes: list[str] = []

    def work(i: int) -> None:
        try:
            repo.update("Patient", "p1", patient(gender="male" if i % 2 else "female"), if_match=1)
            outcomes.append("won")
        except VersionConflict:
            outcomes.append("conflict")

    run_threads(threads, work)
    assert sorted(outcomes) == ["conflict"] * (threads - 1) + ["won"]
    assert repo.read("Patient", "p1").version == 2


def test_concurrent_updates_without_if_match_get_consecutive_versions(repo: FhirRepository) -> None:
    repo.update("Patient", "p1", patient())
    threads, each = 4, 4
    versions: list[int] = []

    def work(i: int) -> None:
        for _ in range(each):
            stored, _ = repo.update("Patient", "p1", patient(gender="male"))
            versions.append(stored.version)

    run_threads(threads, work)
    assert sorted(versions) == list(range(2, 2 + threads * each))
    assert repo.read("Patient", "p1").version == 1 + threads * each


@pytest.mark.parametrize("operation", ["update", "create"])
def test_racing_to_create_the_same_id(platform: Platform, repo: FhirRepository, operation: str) -> None:
    """Two writers create Patient/same at once: the second is an update (version 2) or a Conflict (409).

    The first holds its transaction open after inserting; on PostgreSQL the test waits until the second
    writer is blocked on that insert, so the race is the same every run.
    """
    inserted, finish = threading.Event(), threading.Event()
    holder: dict[str, Any] = {}

    def first() -> None:
        with repo.transaction() as tx:
            tx.update("Patient", "same", patient())
            tx.read("Patient", "same")  # flushes: the row is inserted, not committed
            if platform.db.backend == "postgresql":
                holder["backend"] = cast(Any, tx).conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            inserted.set()
            assert finish.wait(30)

    def second() -> None:
        try:
            if operation == "update":
                holder["result"] = repo.update("Patient", "same", patient(gender="male"))[0].version
            else:
                holder["result"] = repo.create(patient(gender="male"), id="same").version
        except Exception as exc:
            holder["result"] = exc

    one = threading.Thread(target=first)
    one.start()
    assert inserted.wait(30)
    two = threading.Thread(target=second)
    two.start()
    if platform.db.backend == "postgresql":
        deadline = time.monotonic() + 20
        while not sql_blocked_by(platform, holder["backend"]):
            assert time.monotonic() < deadline, "the second writer never waited for the first"
            time.sleep(0.01)
    finish.set()
    one.join(30)
    two.join(30)
    outcome = holder["result"]
    if operation == "update":
        assert outcome == 2 or isinstance(outcome, Conflict), repr(outcome)
    else:
        assert isinstance(outcome, Conflict), repr(outcome)
    assert repo.read("Patient", "same").version == (2 if outcome == 2 else 1)


def sql_blocked_by(platform: Platform, backend: int) -> bool:
    with platform.db.read() as conn:
        waiting = conn.execute(
            text("SELECT count(*) FROM pg_stat_activity WHERE :b = ANY(pg_blocking_pids(pid))"),
            {"b": backend},
        ).scalar()
    return bool(waiting)


def test_group_commit_concurrent_creates_are_all_stored(
    repo: FhirRepository, parser: SearchParser, sql: Sql
) -> None:
    """Many threads create at once (group commit on SQLite); failing creates fail alone."""
    repo.create(patient(), id="taken")
    threads, each = 8, 5
    created: list[StoredResource] = []
    failures: list[tuple[int, str]] = []

    def work(i: int) -> None:
        for j in range(each):
            created.append(repo.create(observation(subject=f"p{i}", identifier=[{"value": f"{i}-{j}"}])))
            if j == 2:
                try:
                    repo.create(observation(subject=f"p{i}", status="not-a-status"))
                except ValidationFailed:
                    failures.append((i, "invalid"))
            if j == 3 and i % 4 == 0:
                try:
                    repo.create(patient(), id="taken")
                except Conflict:
                    failures.append((i, "conflict"))

    run_threads(threads, work)
    assert len(created) == threads * each
    assert len({s.id for s in created}) == threads * each
    assert sorted(failures) == sorted(
        [(i, "invalid") for i in range(threads)] + [(0, "conflict"), (4, "conflict")]
    )
    for stored in created:
        assert repo.read("Observation", stored.id).content == stored.content
    assert repo.count(parser.parse("Observation", [])) == threads * each
    for i in range(threads):
        assert repo.count(parser.parse("Observation", [("patient", f"p{i}")])) == each
    events = outbox(sql)
    assert len(events) == 1 + threads * each
    assert {r[2] for r in events if r[1] == "Observation"} == {s.id for s in created}
    assert sql("SELECT count(*) FROM resource WHERE res_type = 'Patient'")[0][0] == 1
