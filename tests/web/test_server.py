"""The real server: ``rhip serve`` on a free port, driven by fhirpy (a real FHIR client) and httpx.

One single-worker SQLite server is shared by the module; the multi-worker (writer process) and the
PostgreSQL servers are started once by their test classes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
import sqlalchemy
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

pytestmark = pytest.mark.integration

PG_URL = os.environ.get("RHIP_TEST_DATABASE_URL")
FHIR_JSON = "application/fhir+json"
ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
STARTUP_S = 60.0


@dataclass
class Server:
    """A running ``rhip serve``."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def fhir_url(self) -> str:
        """The FHIR base URL."""
        return f"{self.url}/fhir"

    def client(self) -> SyncFHIRClient:
        """A fhirpy client of this server."""
        return SyncFHIRClient(self.fhir_url, requests_config={"timeout": 30})

    def log_text(self) -> str:
        """What the server printed so far."""
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(database_url: str, **settings: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RHIP_") or k.startswith("RHIP_SECURITY__")
    }  # the suite's security setting (tests/conftest.py) stays
    env["RHIP_DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    env["RHIP_EXCHANGE__MLLP__PORT"] = str(_free_port())  # servers of parallel tests must not share 2575
    env.update(settings)
    return env


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server and everything it started (its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    except ProcessLookupError:
        pass


def _start(workdir: Path, database_url: str, *serve_args: str, **settings: str) -> Iterator[Server]:
    """Migrate the database, start ``rhip serve`` and wait for /readyz; stop it afterwards."""
    env = _env(database_url, **settings)
    migrated = _cli(env, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    port = _free_port()
    log = workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rhip.cli.main", "serve", "--port", str(port), *serve_args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"rhip serve exited with {process.returncode}:\n{server.log_text()}")
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rhip serve was not ready after {STARTUP_S} s:\n{server.log_text()}")
            time.sleep(0.1)
        yield server
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One single-worker server on a fresh SQLite database, bodies limited to 1 MB."""
    workdir = tmp_path_factory.mktemp("server")
    yield from _start(workdir, f"sqlite:///{workdir}/rhip.db", RHIP_SERVER__MAX_BODY_MB="1")


@pytest.fixture
def client(server: Server) -> SyncFHIRClient:
    """fhirpy on the shared server."""
    return server.client()


@pytest.fixture
def http(server: Server) -> Iterator[httpx.Client]:
    """httpx on the shared server's FHIR base."""
    with httpx.Client(base_url=server.fhir_url, timeout=30) as c:
        yield c


def _system() -> str:
    """An identifier system of this test only, so tests sharing the server do not see each other's data."""
    return f"urn:rhip-test:{uuid.uuid4().hex}"


def _patient(system: str, value: str, family: str = "王", given: str = "秀英") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": system, "value": value}],
        "name": [{"family": family, "given": [given], "text": f"{family}{given}"}],
        "gender": "female",
        "birthDate": "1975-03-08",
    }


def _codes(outcome: dict[str, Any]) -> list[str]:
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [i.get("details", {}).get("text", "") for i in outcome["issue"]]


# -- fhirpy ---------------------------------------------------------------------------------------------
class TestWithFhirpy:
    def test_crud(self, client: SyncFHIRClient) -> None:
        system = _system()
        pat = client.resource("Patient", **_patient(system, "1"))
        pat.save()
        assert pat.id
        assert pat["meta"]["versionId"] == "1"
        fetched = client.reference("Patient", pat.id).to_resource()
        assert fetched["name"][0]["family"] == "王"
        assert fetched["name"][0]["given"] == ["秀英"]

        fetched["gender"] = "other"
        fetched.save()
        assert fetched["meta"]["versionId"] == "2"
        assert client.get("Patient", pat.id)["gender"] == "other"

        # fhirpy's patch() sends a JSON merge patch as application/json; the server takes JSON Patch only
        with pytest.raises(OperationOutcome) as refused:
            client.patch("Patient", pat.id, birthDate="1976-01-01")
        assert _codes(refused.value.resource) == ["RHIP-FHIR-0008"]
        assert client.get("Patient", pat.id)["birthDate"] == "1975-03-08"

        fetched.delete()
        with pytest.raises(ResourceNotFound):
            client.get("Patient", pat.id)

    def test_invalid_resource_is_refused_with_an_outcome(self, client: SyncFHIRClient) -> None:
        bad = client.resource("Patient", **_patient(_system(), "1"), nickname="小英")
        with pytest.raises(OperationOutcome) as info:
            bad.save()
        outcome = info.value.resource
        assert "RHIP-FHIR-0004" in _codes(outcome)
        assert "Patient.nickname" in [e for i in outcome["issue"] for e in i.get("expression", [])]

    def test_search(self, client: SyncFHIRClient) -> None:
        system = _system()
        for i, (family, given) in enumerate([("王", "伟"), ("王", "芳"), ("李", "娜"), ("王", "秀英")]):
            client.resource("Patient", **_patient(system, str(i), family, given)).save()
        wang = client.resources("Patient").search(name="王", identifier=f"{system}|").fetch()
        assert sorted(p["name"][0]["text"] for p in wang) == ["王伟", "王秀英", "王芳"]
        exact = client.resources("Patient").search(name="王秀英", identifier=f"{system}|").fetch()
        assert [p["name"][0]["text"] for p in exact] == ["王秀英"]
        assert client.resources("Patient").search(identifier=f"{system}|").count() == 4
        two = client.resources("Patient").search(identifier=f"{system}|").limit(2).fetch()
        assert len(two) == 2

    def test_fetch_all_follows_paging_links(self, client: SyncFHIRClient) -> None:
        system = _system()
        made = set()
        for i in range(7):
            pat = client.resource("Patient", **_patient(system, str(i)))
            pat.save()
            made.add(pat.id)
        search = client.resources("Patient").search(identifier=f"{system}|").limit(3)
        first_page = search.fetch()
        assert len(first_page) == 3
        everyone = search.fetch_all()  # three pages of 3, 3, 1
        assert len(everyone) == 7
        assert {p.id for p in everyone} == made
        by_sort = client.resources("Patient").search(identifier=f"{system}|").sort("-identifier").limit(2)
        assert [p["identifier"][0]["value"] for p in by_sort.fetch_all()] == [
            str(i) for i in range(6, -1, -1)
        ]

    def test_transaction_and_references(self, client: SyncFHIRClient) -> None:
        system = _system()
        p_url = f"urn:uuid:{uuid.uuid4()}"
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": p_url,
                    "resource": _patient(system, "T1", "赵", "敏"),
                    "request": {"method": "POST", "url": "Patient"},
                },
                {
                    "resource": {
                        "resourceType": "Observation",
                        "status": "final",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                        "subject": {"reference": p_url},
                        "valueQuantity": {
                            "value": 142,
                            "unit": "mmHg",
                            "system": "http://unitsofmeasure.org",
                            "code": "mm[Hg]",
                        },
                    },
                    "request": {"method": "POST", "url": "Observation"},
                },
            ],
        }
        answer = client.execute("", method="post", data=bundle)
        assert answer["type"] == "transaction-response"
        assert [e["response"]["status"] for e in answer["entry"]] == ["201 Created", "201 Created"]
        patient_ref = "/".join(answer["entry"][0]["response"]["location"].split("/")[:2])

        found = client.resources("Observation").search(subject=patient_ref).fetch()
        assert len(found) == 1
        subject = found[0]["subject"]
        assert subject.reference == patient_ref
        resolved = subject.to_resource()
        assert resolved["name"][0]["text"] == "赵敏"
        high = (
            client.resources("Observation").search(subject=patient_ref, **{"value-quantity": "gt140"}).fetch()
        )
        assert len(high) == 1
        chained = client.resources("Observation").search(**{"subject:Patient.name": "赵敏"}).fetch()
        assert [o.id for o in chained] == [found[0].id]

    def test_absolute_references_to_this_server_are_local(self, server: Server, http: httpx.Client) -> None:
        # No public base URL is configured: the address the server listens on is its own base.
        system = _system()
        created = http.post(
            "Patient", content=orjson.dumps(_patient(system, "A1")), headers={"Content-Type": FHIR_JSON}
        )
        pid = created.json()["id"]
        observation = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
            "subject": {"reference": f"{server.fhir_url}/Patient/{pid}"},
            "valueQuantity": {
                "value": 170,
                "unit": "cm",
                "system": "http://unitsofmeasure.org",
                "code": "cm",
            },
        }
        local_name = server.fhir_url.replace("127.0.0.1", "localhost")
        other = {**observation, "subject": {"reference": f"{local_name}/Patient/{pid}/_history/1"}}
        foreign = {**observation, "subject": {"reference": f"http://elsewhere.example/fhir/Patient/{pid}"}}
        ids = []
        for body in (observation, other, foreign):
            resp = http.post("Observation", content=orjson.dumps(body), headers={"Content-Type": FHIR_JSON})
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["id"])
        by_subject = http.get("Observation", params={"subject": f"Patient/{pid}"}).json()
        assert {e["resource"]["id"] for e in by_subject["entry"]} == set(ids[:2])
        by_url = http.get("Observation", params={"subject": f"{server.fhir_url}/Patient/{pid}"}).json()
        assert {e["resource"]["id"] for e in by_url["entry"]} == set(ids[:2])
        everything = http.get(f"Patient/{pid}/$everything").json()
        assert {e["resource"]["id"] for e in everything["entry"]} == {pid, *ids[:2]}
        foreign_found = http.get("Observation", params={"subject": foreign["subject"]["reference"]}).json()
        assert [e["resource"]["id"] for e in foreign_found["entry"]] == [ids[2]]

    def test_conditional_create_over_http(self, client: SyncFHIRClient, http: httpx.Client) -> None:
        # fhirpy's get_or_create() puts the criteria in the query string; FHIR uses If-None-Exist.
        system = _system()
        headers = {"Content-Type": FHIR_JSON, "If-None-Exist": f"identifier={system}|C1"}
        first = http.post("Patient", content=orjson.dumps(_patient(system, "C1")), headers=headers)
        assert first.status_code == 201
        again = http.post("Patient", content=orjson.dumps(_patient(system, "C1", "李")), headers=headers)
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        assert [p.id for p in client.resources("Patient").search(identifier=f"{system}|").fetch()] == [
            first.json()["id"]
        ]


# -- raw HTTP -------------------------------------------------------------------------------------------
class TestHttp:
    def test_healthz_and_readyz(self, server: Server) -> None:
        health = httpx.get(f"{server.url}/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        ready = httpx.get(f"{server.url}/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"

    def test_metrics(self, server: Server, http: httpx.Client) -> None:
        created = http.post(
            "Patient", content=orjson.dumps(_patient(_system(), "M1")), headers={"Content-Type": FHIR_JSON}
        )
        assert created.status_code == 201
        rid = created.json()["id"]
        assert http.get(f"Patient/{rid}").status_code == 200
        metrics = httpx.get(f"{server.url}/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        text = metrics.text
        assert "# TYPE rhip_http_requests_total counter" in text
        assert 'rhip_http_requests_total{method="GET",route="fhir:Patient:instance",status="200"}' in text
        assert 'rhip_http_requests_total{method="POST",route="fhir:Patient:type",status="201"}' in text
        assert "rhip_http_request_seconds_bucket" in text
        assert 'rhip_fhir_writes_total{event="ResourceCreated",resource_type="Patient"}' in text
        assert rid not in text  # labels never carry ids

    def test_fhir_content_type_and_utf8(self, http: httpx.Client) -> None:
        body = orjson.dumps(_patient(_system(), "U1", "欧阳", "娜娜"))
        created = http.post("Patient", content=body, headers={"Content-Type": f"{FHIR_JSON}; charset=utf-8"})
        assert created.status_code == 201
        assert created.headers["content-type"].startswith(FHIR_JSON)
        location = created.headers["location"]
        assert location.startswith(f"{http.base_url}".rstrip("/") + "/Patient/")
        read = httpx.get(location)
        assert read.status_code == 200
        assert read.headers["content-type"] == "application/fhir+json; charset=utf-8"
        assert "欧阳娜娜".encode() in read.content  # UTF-8, not \\u escapes
        assert read.json()["name"][0]["family"] == "欧阳"
        assert read.headers["etag"] == 'W/"1"'
        assert read.headers["last-modified"]
        not_found = http.get("Patient/does-not-exist")
        assert not_found.status_code == 404
        assert not_found.headers["content-type"].startswith(FHIR_JSON)
        assert _codes(not_found.json()) == ["RHIP-FHIR-0002"]

    def test_search_with_chinese_and_fullwidth_text(self, http: httpx.Client) -> None:
        system = _system()
        for value, family, given in (("1", "王", "秀英"), ("2", "Wang", "Wei")):
            r = http.post(
                "Patient",
                content=orjson.dumps(_patient(system, value, family, given)),
                headers={"Content-Type": FHIR_JSON},
            )
            assert r.status_code == 201
        found = http.get("Patient", params={"name": "王秀", "identifier": f"{system}|"})
        assert [e["resource"]["name"][0]["text"] for e in found.json()["entry"]] == ["王秀英"]
        wide = http.get("Patient", params={"name": "ｗａｎｇ", "identifier": f"{system}|"})
        assert [e["resource"]["name"][0]["family"] for e in wide.json()["entry"]] == ["Wang"]

    def test_body_over_the_limit_is_413(self, http: httpx.Client) -> None:
        system = _system()
        big = _patient(system, "BIG")
        big["text"] = {"status": "generated", "div": "<div>" + "病" * 400_000 + "</div>"}  # 1.2 MB of UTF-8
        resp = http.post("Patient", content=orjson.dumps(big), headers={"Content-Type": FHIR_JSON})
        assert resp.status_code == 413
        assert resp.headers["content-type"].startswith(FHIR_JSON)
        assert _codes(resp.json()) == ["RHIP-FHIR-0010"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming too
            data = orjson.dumps(big)
            for i in range(0, len(data), 64 * 1024):
                yield data[i : i + 64 * 1024]

        streamed = http.post("Patient", content=chunks(), headers={"Content-Type": FHIR_JSON})
        assert streamed.status_code == 413
        assert _codes(streamed.json()) == ["RHIP-FHIR-0010"]
        assert http.get("Patient", params={"identifier": f"{system}|"}).json().get("total") == 0

    def test_body_under_the_limit_is_accepted(self, http: httpx.Client) -> None:
        system = _system()
        fine = _patient(system, "FINE")
        fine["text"] = {"status": "generated", "div": "<div>" + "病" * 300_000 + "</div>"}  # 0.9 MB
        resp = http.post("Patient", content=orjson.dumps(fine), headers={"Content-Type": FHIR_JSON})
        assert resp.status_code == 201

    def test_wrong_content_type_is_415(self, http: httpx.Client) -> None:
        resp = http.post(
            "Patient", content=orjson.dumps(_patient(_system(), "X")), headers={"Content-Type": "text/plain"}
        )
        assert resp.status_code == 415
        assert resp.headers["content-type"].startswith(FHIR_JSON)
        assert _codes(resp.json()) == ["RHIP-FHIR-0008"]
        xml = http.post(
            "Patient",
            content=b"<Patient xmlns='http://hl7.org/fhir'/>",
            headers={"Content-Type": "application/fhir+xml"},
        )
        assert xml.status_code == 415

    def test_xml_is_not_acceptable(self, http: httpx.Client) -> None:
        resp = http.get("metadata", headers={"Accept": "application/fhir+xml"})
        assert resp.status_code == 406
        assert _codes(resp.json()) == ["RHIP-FHIR-0009"]
        assert http.get("metadata", params={"_format": "xml"}).status_code == 406
        assert http.get("metadata", params={"_format": "application/fhir+json"}).status_code == 200

    def test_metadata(self, http: httpx.Client) -> None:
        resp = http.get("metadata")
        assert resp.status_code == 200
        cs = resp.json()
        assert cs["resourceType"] == "CapabilityStatement"
        assert cs["implementation"]["url"] == str(http.base_url).rstrip("/")

    def test_root_redirects_to_the_portal(self, server: Server) -> None:
        resp = httpx.get(f"{server.url}/", follow_redirects=False)
        assert resp.status_code == 303
        assert resp.headers["location"].endswith("/portal/")

    def test_head(self, http: httpx.Client) -> None:
        created = http.post(
            "Patient", content=orjson.dumps(_patient(_system(), "H1")), headers={"Content-Type": FHIR_JSON}
        )
        rid = created.json()["id"]
        resp = http.head(f"Patient/{rid}")
        assert resp.status_code == 200
        assert resp.content == b""
        assert resp.headers["etag"] == 'W/"1"'
        assert http.head("Patient/nobody").status_code == 404

    @pytest.mark.parametrize(
        "path",
        [
            "Patient?name=%FF%FE",
            "Patient?name=%ZZ",
            "Patient/%00",
            "Patient/{rid}/_history/99999999999999999999",
            "_history?_page=99999999999999999999",
            "Patient?_page=k..99999999999999999999.0",
        ],
    )
    def test_odd_requests_are_not_server_errors(self, http: httpx.Client, path: str) -> None:
        created = http.post(
            "Patient", content=orjson.dumps(_patient(_system(), "O1")), headers={"Content-Type": FHIR_JSON}
        )
        path = path.format(rid=created.json()["id"])
        resp = http.get(path)
        assert resp.status_code < 500, (path, resp.status_code, resp.text)
        assert resp.headers["content-type"].startswith(FHIR_JSON)

    def test_errors_are_operation_outcomes(self, http: httpx.Client) -> None:
        for method, path, status, code in (
            ("GET", "Patientt", 404, "RHIP-FHIR-0002"),
            ("GET", "", 400, "RHIP-FHIR-0013"),
            ("DELETE", "metadata", 405, "RHIP-FHIR-0011"),
        ):
            resp = http.request(method, path)
            assert resp.status_code == status, (method, path, resp.text)
            assert code in _codes(resp.json())
        malformed = http.post("Patient", content=b'{"resourceType":', headers={"Content-Type": FHIR_JSON})
        assert malformed.status_code == 400
        assert _codes(malformed.json()) == ["RHIP-FHIR-0001"]


# -- several workers and the writer process -----------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            out.append(int(entry.name))
    return out


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _writer_pid(server_pid: int) -> int | None:
    """The descendant of the server holding the writer's Unix socket (``…/writer.sock``)."""
    inodes = set()
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 8 and parts[7].endswith("/writer.sock"):
            inodes.add(f"socket:[{parts[6]}]")
    for pid in _descendants(server_pid):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
            if any(os.readlink(fd) in inodes for fd in fds):
                return pid
        except OSError:
            continue
    return None


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@pytest.fixture(scope="class")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with two worker processes (and so the writer process) on SQLite."""
    workdir = tmp_path_factory.mktemp("workers")
    yield from _start(workdir, f"sqlite:///{workdir}/rhip.db", "--workers", "2")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the writer process through /proc")
class TestSeveralWorkers:
    def test_concurrent_creates_are_all_stored(self, workers: Server) -> None:
        system = _system()

        def create_many(thread: int) -> list[str]:
            made = []
            with httpx.Client(base_url=workers.fhir_url, timeout=60) as http:
                for i in range(10):
                    body = orjson.dumps(_patient(system, f"{thread}-{i}", "钱", f"{thread}{i}"))
                    resp = http.post("Patient", content=body, headers={"Content-Type": FHIR_JSON})
                    assert resp.status_code == 201, resp.text
                    made.append(resp.json()["id"])
            return made

        with ThreadPoolExecutor(max_workers=4) as pool:
            created = [rid for ids in pool.map(create_many, range(4)) for rid in ids]
        assert len(created) == len(set(created)) == 40
        with httpx.Client(base_url=workers.fhir_url, timeout=60) as http:
            for rid in created:
                assert http.get(f"Patient/{rid}").status_code == 200
            found = http.get("Patient", params={"identifier": f"{system}|", "_count": "100"}).json()
            assert found["total"] == 40
            assert {e["resource"]["id"] for e in found["entry"]} == set(created)
        client = workers.client()
        assert len(client.resources("Patient").search(identifier=f"{system}|").limit(15).fetch_all()) == 40

    def test_writer_failure_gives_503_then_recovers(self, workers: Server) -> None:
        system = _system()
        with httpx.Client(base_url=workers.fhir_url, timeout=60) as http:

            def create(value: str) -> httpx.Response:
                body = orjson.dumps(_patient(system, value))
                return http.post("Patient", content=body, headers={"Content-Type": FHIR_JSON})

            before = create("before")
            assert before.status_code == 201
            writer = _writer_pid(workers.process.pid)
            assert writer is not None, "no descendant of rhip serve holds writer.sock"
            os.kill(writer, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _alive(writer):
                assert time.monotonic() < deadline, "the writer did not die"
                time.sleep(0.01)

            outcomes: list[int] = []
            deadline = time.monotonic() + 30
            while True:
                resp = create(f"during-{len(outcomes)}")
                outcomes.append(resp.status_code)
                if resp.status_code == 201:
                    break
                assert resp.status_code == 503, resp.text
                assert resp.headers["content-type"].startswith(FHIR_JSON)
                assert _codes(resp.json()) == ["RHIP-DB-0001"]
                # reads do not need the writer
                assert http.get(f"Patient/{before.json()['id']}").status_code == 200
                assert time.monotonic() < deadline, f"no recovery after the writer died: {outcomes}"
                time.sleep(0.1)
            assert outcomes[0] == 503, outcomes
            new_writer = _writer_pid(workers.process.pid)
            assert new_writer is not None
            assert new_writer != writer
            stored = http.get("Patient", params={"identifier": f"{system}|"}).json()
            assert stored["total"] == 2  # "before" and the one that succeeded; no 503 stored anything


# -- stopping ------------------------------------------------------------------------------------------
def _serve_two_workers(workdir: Path, **settings: str) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    """``rhip serve --workers 2`` on a fresh database, its TMPDIR inside ``workdir``; returns the process."""
    tmp = workdir / "tmp"
    tmp.mkdir()
    env = _env(f"sqlite:///{workdir}/rhip.db", TMPDIR=str(tmp), **settings)
    assert _cli(env, "db", "upgrade").returncode == 0
    url = f"http://127.0.0.1:{_free_port()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "rhip.cli.main", "serve", "--port", url.rsplit(":", 1)[1], "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=workdir,
    )
    return process, url, env


def _wait_ready(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + STARTUP_S
    while True:
        assert process.poll() is None, f"rhip serve exited with {process.returncode}"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "rhip serve was not ready"
        time.sleep(0.1)


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the writer process through /proc")
class TestStopping:
    def test_sigterm_stops_everything_and_cleans_up(self, tmp_path: Path) -> None:
        process, url, _ = _serve_two_workers(tmp_path)
        try:
            _wait_ready(process, url)
            writer = _writer_pid(process.pid)
            assert writer is not None
            assert any((tmp_path / "tmp").iterdir())  # the writer's socket and the metrics files
            process.send_signal(signal.SIGTERM)
            assert process.wait(30) == 0
            assert _gone(writer, 10)
            assert list((tmp_path / "tmp").iterdir()) == []
        finally:
            _stop(process)

    def test_the_writer_does_not_outlive_a_killed_server(self, tmp_path: Path) -> None:
        process, url, _ = _serve_two_workers(tmp_path)
        try:
            _wait_ready(process, url)
            writer = _writer_pid(process.pid)
            assert writer is not None
            process.kill()  # the supervisor only: no cleanup of its own runs
            process.wait(10)
            assert _gone(writer, 15), "the writer outlived the server"
        finally:
            _stop(process)

    def test_workers_that_cannot_start_give_a_failing_exit_status(self, tmp_path: Path) -> None:
        process, _, _ = _serve_two_workers(tmp_path, RHIP_TIMEZONE="Nowhere/Nothing")
        try:
            assert process.wait(STARTUP_S) == 3
        finally:
            _stop(process)


# -- PostgreSQL -----------------------------------------------------------------------------------------
@pytest.fixture(scope="class")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server on a fresh schema of the PostgreSQL test database."""
    if not PG_URL:
        pytest.skip(
            "PostgreSQL tests need RHIP_TEST_DATABASE_URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
    schema = f"rhip_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        yield from _start(tmp_path_factory.mktemp("pg"), url)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.mark.postgres
class TestPostgres:
    def test_postgres_through_the_server(self, pg_server: Server) -> None:
        assert "postgresql" in pg_server.log_text()
        client = pg_server.client()
        system = _system()
        made = []
        for i, given in enumerate(["伟", "芳", "娜", "敏", "静"]):
            pat = client.resource("Patient", **_patient(system, str(i), "王", given))
            pat.save()
            made.append(pat.id)
        fetched = client.reference("Patient", made[0]).to_resource()
        assert fetched["name"][0]["text"] == "王伟"
        fetched["gender"] = "male"
        fetched.save()
        assert client.get("Patient", made[0])["meta"]["versionId"] == "2"
        found = client.resources("Patient").search(name="王", identifier=f"{system}|").limit(2).fetch_all()
        assert sorted(p.id for p in found) == sorted(made)
        client.delete("Patient", made[1])
        with pytest.raises(ResourceNotFound):
            client.get("Patient", made[1])
        ready = httpx.get(f"{pg_server.url}/readyz")
        assert ready.status_code == 200
