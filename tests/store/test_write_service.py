"""The writer-process protocol, in-process: a WriteServer thread on a Unix socket and a platform whose
store sends its prepared writes there through a RemoteWriter (as ``rhip serve`` wires its workers)."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import ServerSettings, Settings
from rhip.core.errors import Conflict, Issue, ResourceNotFound, StorageUnavailable, ValidationFailed
from rhip.core.frames import PlainUnpickler
from rhip.db.engine import Database
from rhip.db.migrate import upgrade
from rhip.fhir.repository import HistoryRequest
from rhip.fhir.rest.messages import FhirRequest
from rhip.store.apply import PreparedWrite, RowWrite, VersionWrite
from rhip.store.repository import SqlFhirRepository
from rhip.store.write_service import RemoteWriter, WriteServer

T = TypeVar("T")
FHIR_JSON = {"content-type": "application/fhir+json"}


def observation(subject: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": subject},
    }


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


class Worker:
    """One request thread of an HTTP worker (RemoteWriter keeps one connection per thread)."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-worker")

    def __call__(self, call: Callable[[], T], seconds: float = 20.0) -> T:
        """Run ``call`` on the worker thread; fail instead of hanging the suite when it does not return."""
        try:
            return self.pool.submit(call).result(timeout=seconds)
        except FutureTimeout:
            pytest.fail(f"the call hangs (no answer in {seconds} s)")


@pytest.fixture
def worker() -> Iterator[Worker]:
    w = Worker()
    try:
        yield w
    finally:
        w.pool.shutdown(wait=False, cancel_futures=True)


class RunningWriter:
    """A WriteServer serving in a thread, with a count of the write requests it ran."""

    def __init__(self, db: Database, path: str) -> None:
        self.db = db
        self.path = path
        self.server = WriteServer(db, path)
        self.jobs = 0
        run_grouped = db.run_grouped

        def counting(job: Callable[[Any], Any]) -> Any:
            self.jobs += 1
            return run_grouped(job)

        db.run_grouped = counting  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.server.serve_forever, name="test-writer", daemon=True)

    def start(self) -> RunningWriter:
        self.thread.start()
        wait_for(lambda: os.path.exists(self.path), "the writer socket")
        return self

    def stop(self) -> None:
        self.server.stop()
        # Wake the accept loop (it polls every 0.5 s) with a connection that closes at once.
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
            wake.connect(self.path)
        self.thread.join(10)
        assert not self.thread.is_alive()


def with_writer(settings: Settings, path: str) -> Settings:
    return settings.model_copy(update={"server": ServerSettings(writer_socket=path)})


@pytest.fixture
def migrated(database_url: str) -> Settings:
    settings = Settings(database_url=database_url, log_format="text")
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    return settings


@pytest.fixture
def socket_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    # Unix socket paths are limited to ~100 bytes: keep it short.
    return str(tmp_path_factory.mktemp("w") / "writer.sock")


@pytest.fixture
def writer(migrated: Settings, socket_path: str) -> Iterator[RunningWriter]:
    db = database(migrated)
    running = RunningWriter(db, socket_path).start()
    try:
        yield running
    finally:
        running.stop()
        db.dispose()


@pytest.fixture
def remote(migrated: Settings, socket_path: str) -> Iterator[Platform]:
    """A platform whose store writes through the writer at ``socket_path`` (which may not be running)."""
    plat = build_platform(with_writer(migrated, socket_path), empi=False)
    try:
        yield plat
    finally:
        plat.close()


@pytest.fixture
def local(migrated: Settings) -> Iterator[Platform]:
    """A platform writing the same database itself."""
    plat = build_platform(migrated, empi=False)
    try:
        yield plat
    finally:
        plat.close()


def test_platform_is_wired_with_the_remote_writer(remote: Platform, socket_path: str) -> None:
    store = remote.repository
    assert isinstance(store, SqlFhirRepository)
    assert isinstance(store.ctx.writer, RemoteWriter)
    assert store.ctx.writer.path == socket_path


def test_creates_through_the_writer_are_stored(
    writer: RunningWriter, remote: Platform, local: Platform
) -> None:
    repo = remote.repository
    pat = repo.create({"resourceType": "Patient", "name": [{"family": "Wang"}]})
    obs = repo.create(observation(f"Patient/{pat.id}"))
    assert writer.jobs == 2
    for plat in (remote, local):
        assert plat.repository.read("Patient", pat.id).content == pat.content
        assert plat.repository.read("Observation", obs.id).content == obs.content
    query = local.fhir.interactions.parser.parse("Observation", [("patient", pat.id)])
    assert [s.id for s in local.repository.search(query).matches] == [obs.id]
    with local.db.read() as conn:
        events = conn.exec_driver_sql("SELECT event, res_id, compartment FROM outbox ORDER BY id").all()
    assert [tuple(e) for e in events] == [
        ("ResourceCreated", pat.id, pat.id),
        ("ResourceCreated", obs.id, pat.id),
    ]


def test_a_transaction_of_creates_is_one_write(writer: RunningWriter, remote: Platform) -> None:
    repo = remote.repository
    with repo.transaction() as tx:
        pid = tx.new_id()
        tx.create({"resourceType": "Patient"}, id=pid)
        created = [tx.create(observation(f"Patient/{pid}")).id for _ in range(5)]
    assert writer.jobs == 1
    assert repo.read("Patient", pid).version == 1
    assert all(repo.read("Observation", i).version == 1 for i in created)


def test_a_rolled_back_transaction_sends_nothing(writer: RunningWriter, remote: Platform) -> None:
    repo = remote.repository
    with pytest.raises(RuntimeError), repo.transaction() as tx:
        tx.create({"resourceType": "Patient"}, id="never")
        raise RuntimeError("client went away")
    assert writer.jobs == 0
    assert remote.repository.count(remote.fhir.interactions.parser.parse("Patient", [])) == 0


def test_transaction_bundle_through_the_writer(writer: RunningWriter, remote: Platform) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:8c9f4e4c-1111-4d6b-9a32-3d3c0f2c0a01",
                "resource": {"resourceType": "Patient", "name": [{"family": "Li"}]},
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": observation("urn:uuid:8c9f4e4c-1111-4d6b-9a32-3d3c0f2c0a01"),
                "request": {"method": "POST", "url": "Observation"},
            },
        ],
    }
    response = remote.fhir.handle(FhirRequest("POST", "", headers=FHIR_JSON, body=orjson.dumps(bundle)))
    assert response.status == 200, response.body
    assert writer.jobs == 1
    assert response.body is not None
    locations = [e["response"]["location"] for e in orjson.loads(response.body)["entry"]]
    pid = locations[0].split("/")[1]
    oid = locations[1].split("/")[1]
    obs = remote.repository.read("Observation", oid).resource()
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    query = remote.fhir.interactions.parser.parse("Observation", [("patient", pid)])
    assert [s.id for s in remote.repository.search(query).matches] == [oid]


def test_updates_and_deletes_beside_the_writer(writer: RunningWriter, remote: Platform) -> None:
    repo = remote.repository
    created = repo.create({"resourceType": "Patient"})
    stored, was_created = repo.update("Patient", created.id, {"resourceType": "Patient", "gender": "male"})
    assert (stored.version, was_created) == (2, False)
    assert repo.delete("Patient", created.id) is not None
    history = repo.history(HistoryRequest("Patient", created.id))
    assert [e.version for e in history.entries] == [3, 2, 1]
    assert writer.jobs == 1  # only the create: updates and deletes read first, so the worker writes them


def test_a_taken_id_comes_back_as_conflict(writer: RunningWriter, remote: Platform) -> None:
    repo = remote.repository
    repo.create({"resourceType": "Patient"}, id="taken")
    with pytest.raises(Conflict) as err:
        repo.create({"resourceType": "Patient", "gender": "male"}, id="taken")
    assert err.value.http_status == 409
    assert "Patient/taken" in err.value.message
    assert "gender" not in repo.read("Patient", "taken").resource()
    # The connection stays usable after an error answer.
    assert repo.create({"resourceType": "Patient"}).version == 1


def test_errors_raised_in_the_writer_keep_their_class_and_issues(
    writer: RunningWriter, remote: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue = Issue("error", "invariant", "checked in the writer", ("Patient.name[0]",), "RHIP-FHIR-0004")

    def invalid(job: Any) -> Any:
        raise ValidationFailed("", issues=[issue])

    monkeypatch.setattr(writer.db, "run_grouped", invalid)
    with pytest.raises(ValidationFailed) as err:
        remote.repository.create({"resourceType": "Patient"})
    assert err.value.issues() == [issue]

    def broken(job: Any) -> Any:
        raise RuntimeError("disk I/O error")

    monkeypatch.setattr(writer.db, "run_grouped", broken)
    with pytest.raises(StorageUnavailable) as unavailable:
        remote.repository.create({"resourceType": "Patient"})
    assert unavailable.value.http_status == 503


def test_a_unique_violation_in_the_writer_is_a_conflict(writer: RunningWriter, local: Platform) -> None:
    """The writer maps database constraint violations to Conflict (409), not to an unavailable database.

    Here a prepared create of an existing id arrives without its id in ``claimed`` (as creates with ids
    from ``new_id()`` do), so only the database's unique constraint catches it.
    """
    client = RemoteWriter(writer.path, timeout_s=20)
    client.write(_prepared())
    unchecked = _prepared()
    unchecked.claimed = {}
    with pytest.raises(Conflict):
        client.write(unchecked)
    assert local.repository.read("Patient", "x").version == 1


class _OpensAFile:
    """Unpickling this (unrestricted) would create a file: the side effect a refused class must not have."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def _prepared() -> PreparedWrite:
    return PreparedWrite(
        rows=[RowWrite("Patient", "x", None, False, 1, False, "x", 0, 0, {})],
        versions=[
            VersionWrite(0, 1, 1_700_000_000_000_000, "PUT", False, "x", b'{"resourceType":"Patient"}', True)
        ],
        claimed={"Patient": ["x"]},
    )


def test_restricted_unpickler_allows_only_plain_data(tmp_path: Path) -> None:
    prepared = _prepared()
    wire = PlainUnpickler(
        io.BytesIO(pickle.dumps(prepared.to_wire(), protocol=pickle.HIGHEST_PROTOCOL))
    ).load()
    assert PreparedWrite.from_wire(wire) == prepared
    marker = tmp_path / "pwned"
    for evil in (
        _OpensAFile(str(marker)),
        ([], [], {"Patient": [_OpensAFile(str(marker))]}),
        prepared,  # objects of any class are refused, the prepared-write classes too
    ):
        with pytest.raises(pickle.UnpicklingError):
            PlainUnpickler(io.BytesIO(pickle.dumps(evil))).load()
    assert not marker.exists()


def test_a_frame_of_another_shape_is_refused() -> None:
    for shape in ((), ([("Patient",)], [], {}), ([], [(0, 1)], {}), "text"):
        with pytest.raises((TypeError, ValueError)):
            PreparedWrite.from_wire(shape)  # type: ignore[arg-type]


def test_the_writer_refuses_a_non_whitelisted_class(
    writer: RunningWriter, remote: Platform, local: Platform, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(writer.path)
        client.sendall(_frame(pickle.dumps(_OpensAFile(str(marker)))))
        assert client.recv(16) == b""  # the writer hangs up without an answer
    assert not marker.exists()
    assert writer.jobs == 0
    # A whitelisted frame on a fresh connection is still served.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(writer.path)
        client.sendall(_frame(pickle.dumps(_prepared().to_wire())))
        (size,) = struct.unpack(">I", client.recv(4))
        reply = pickle.loads(client.recv(size))
    assert reply == ("ok", None)
    assert local.repository.read("Patient", "x").version == 1
    assert remote.repository.create({"resourceType": "Patient"}).version == 1


def test_no_writer_listening_is_storage_unavailable(
    remote: Platform, socket_path: str, worker: Worker
) -> None:
    assert not os.path.exists(socket_path)
    with pytest.raises(StorageUnavailable) as err:
        worker(lambda: remote.repository.create({"resourceType": "Patient"}))
    assert err.value.http_status == 503
    # A stale socket file left by a writer that died.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(socket_path)
    stale.close()
    with pytest.raises(StorageUnavailable):
        worker(lambda: remote.repository.create({"resourceType": "Patient"}))
    response = worker(
        lambda: remote.fhir.handle(
            FhirRequest("POST", "Patient", headers=FHIR_JSON, body=b'{"resourceType":"Patient"}')
        )
    )
    assert response.status == 503
    assert response.body is not None
    assert b"RHIP-DB-0001" in response.body
    assert remote.repository.count(remote.fhir.interactions.parser.parse("Patient", [])) == 0


def fake_writer(path: str, answer: bool) -> threading.Thread:
    """A writer that reads one request, answers it ``ok`` (without storing) or not, and dies."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)

    def serve_one_and_die() -> None:
        conn, _ = listener.accept()
        with conn:
            (size,) = struct.unpack(">I", conn.recv(4, socket.MSG_WAITALL))
            conn.recv(size, socket.MSG_WAITALL)
            if answer:
                conn.sendall(_frame(pickle.dumps(("ok", None))))
        listener.close()
        os.unlink(path)

    thread = threading.Thread(target=serve_one_and_die, daemon=True)
    thread.start()
    return thread


def test_a_writer_dying_mid_request_is_storage_unavailable(
    migrated: Settings, remote: Platform, socket_path: str, worker: Worker
) -> None:
    dying = fake_writer(socket_path, answer=False)
    with pytest.raises(StorageUnavailable):
        worker(lambda: remote.repository.create({"resourceType": "Patient"}, id="lost"))
    dying.join(10)
    with pytest.raises(StorageUnavailable):
        worker(lambda: remote.repository.create({"resourceType": "Patient"}, id="lost"))
    with pytest.raises(ResourceNotFound):
        remote.repository.read("Patient", "lost")

    # The supervisor restarts the writer: the same worker thread writes again.
    db = database(migrated)
    restarted = RunningWriter(db, socket_path).start()
    try:
        assert worker(lambda: remote.repository.create({"resourceType": "Patient"}, id="lost")).version == 1
        assert restarted.jobs == 1
    finally:
        restarted.stop()
        db.dispose()
    assert remote.repository.read("Patient", "lost").version == 1


def test_writes_resume_after_the_writer_restarts(
    migrated: Settings, remote: Platform, socket_path: str, worker: Worker
) -> None:
    """A worker thread still holds its connection to the writer that died; the restarted one must serve it.

    Nothing of the request reaches a dead writer, so sending it again on a new connection is safe.
    """
    first = fake_writer(socket_path, answer=True)
    worker(lambda: remote.repository.create({"resourceType": "Patient"}))
    first.join(10)
    assert not first.is_alive()
    db = database(migrated)
    restarted = RunningWriter(db, socket_path).start()
    try:
        stored = worker(lambda: remote.repository.create({"resourceType": "Patient"}, id="after-restart"))
        assert stored.version == 1
    finally:
        restarted.stop()
        db.dispose()
