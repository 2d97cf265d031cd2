"""Bulk import: a batch that fails when it commits is rejected resource by resource, and the import goes on."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, cast

import orjson
from sqlalchemy.exc import InternalError

from rhip.bootstrap.container import Platform
from rhip.core.errors import ResourceNotFound, StorageUnavailable
from rhip.fhir.bulk import BulkImporter, ImportSummary
from rhip.fhir.repository import FhirRepository, HistoryRequest


class _Recording:
    """A transaction's repository that remembers the ids written through it."""

    def __init__(self, inner: FhirRepository) -> None:
        self.inner = inner
        self.ids: set[str] = set()

    def update(self, resource_type: str, id: str, resource: dict[str, Any], **kw: Any) -> Any:
        self.ids.add(id)
        return self.inner.update(resource_type, id, resource, **kw)

    def create(self, resource: dict[str, Any], **kw: Any) -> Any:
        if kw.get("id"):
            self.ids.add(kw["id"])  # the importer creates resources it does not hold yet with their own id
        return self.inner.create(resource, **kw)


class FailingCommit:
    """The platform's repository, except that a transaction holding a ``bad`` id fails as it ends.

    The error is raised inside the real transaction's block, so the real transaction rolls back: what a
    failing COMMIT does.
    """

    def __init__(self, inner: FhirRepository, bad: set[str], error: Callable[[], Exception]) -> None:
        self.inner = inner
        self.bad = bad
        self.error = error
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def transaction(self) -> Iterator[_Recording]:
        with self.inner.transaction() as tx:
            recording = _Recording(tx)
            yield recording
            if recording.ids & self.bad:
                self.failed += 1
                raise self.error()


def ndjson(*resources: dict[str, Any]) -> io.BytesIO:
    return io.BytesIO(b"\n".join(orjson.dumps(r) for r in resources) + b"\n")


def patients(*ids: str) -> list[dict[str, Any]]:
    return [{"resourceType": "Patient", "id": i, "gender": "male"} for i in ids]


def run(platform: Platform, repo: Any, data: io.BytesIO, batch_size: int = 3) -> ImportSummary:
    summary = ImportSummary()
    BulkImporter(platform.fhir, cast(FhirRepository, repo), batch_size).import_stream(
        data, "data.ndjson", summary
    )
    return summary


def stored_ids(platform: Platform, ids: list[str]) -> set[str]:
    found = set()
    for i in ids:
        try:
            platform.repository.read("Patient", i)
        except ResourceNotFound:
            continue
        found.add(i)
    return found


def test_a_batch_failing_at_commit_rejects_only_the_resource_at_fault(platform: Platform) -> None:
    failing = FailingCommit(
        platform.repository, {"bad"}, lambda: InternalError("COMMIT", None, Exception("deferred check"))
    )
    ids = ["a1", "a2", "bad", "b1", "b2", "b3", "c1"]
    invalid = {"resourceType": "Patient", "id": "v1", "gender": "robot"}  # rejected on validation
    data = ndjson(*patients(*ids[:2]), invalid, *patients(*ids[2:]))
    summary = run(platform, failing, data)

    # Batches: [a1, a2, v1] [bad, b1, b2] [b3, c1]; the second fails at commit and is written again
    # one resource per transaction, so only "bad" (line 4) is rejected and the next batch still runs.
    assert summary.total_imported == 6
    assert summary.imported["Patient"] == 6
    assert [(r.line, r.resource_type, r.code) for r in summary.rejected] == [
        (3, "Patient", "RHIP-FHIR-0004"),
        (4, "Patient", "RHIP-CORE-0000"),
    ]
    reason = summary.rejected[1].reason
    assert "InternalError" in reason
    assert "deferred check" not in reason  # the database's message may quote values: not reported
    assert stored_ids(platform, [*ids, "v1"]) == {"a1", "a2", "b1", "b2", "b3", "c1"}
    assert failing.failed == 2  # the batch, then "bad" alone


def test_an_unavailable_database_rejects_the_batch_without_retrying(platform: Platform) -> None:
    failing = FailingCommit(platform.repository, {"bad"}, lambda: StorageUnavailable("database unavailable"))
    summary = run(platform, failing, ndjson(*patients("a1", "bad", "a2", "b1")))
    assert [(r.line, r.code) for r in summary.rejected] == [
        (1, "RHIP-DB-0001"),
        (2, "RHIP-DB-0001"),
        (3, "RHIP-DB-0001"),
    ]
    assert summary.imported["Patient"] == 1
    assert stored_ids(platform, ["a1", "bad", "a2", "b1"]) == {"b1"}
    assert failing.failed == 1


def test_a_reference_longer_than_any_id_is_imported(platform: Platform) -> None:
    """Once refused by PostgreSQL at commit (its index columns hold 64 characters); the store now keeps such a
    reference by its text. Faults at commit are covered with FailingCommit above."""
    long_subject = {
        "resourceType": "Observation",
        "id": "o-long",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "Patient/" + "x" * 70},
    }
    ids = ["p1", "p2", "p3", "p4"]
    pats = patients(*ids)
    summary = run(platform, platform.repository, ndjson(pats[0], long_subject, pats[1], pats[2], pats[3]))
    assert summary.rejected == []
    assert summary.imported["Patient"] == 4
    assert summary.imported["Observation"] == 1
    assert stored_ids(platform, ids) == set(ids)


def test_imported_resources_are_recorded_as_puts_of_their_ids(platform: Platform) -> None:
    # New ids are written as creates (so the batch takes the write lock only to flush), yet their
    # history says what the import did: a PUT of that id; a resource held already gets a new version.
    first = run(platform, platform.repository, ndjson(*patients("p1", "p2")))
    assert first.rejected == [] and first.imported["Patient"] == 2
    again = run(platform, platform.repository, ndjson(*patients("p2", "p3")))
    assert again.rejected == [] and again.imported["Patient"] == 2
    for rid, methods in (("p1", ["PUT"]), ("p2", ["PUT", "PUT"]), ("p3", ["PUT"])):
        history = platform.repository.history(HistoryRequest("Patient", rid))
        assert [e.method for e in history.entries] == methods, rid
