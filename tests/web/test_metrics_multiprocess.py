"""/metrics with several worker processes: prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR).

Each "worker" is a separate Python process running the application made by ``create_app_from_env`` (as
uvicorn's workers do), with the variable set before prometheus_client is imported.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rhip.bootstrap.container import database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.web.app import Metrics

WORKER = """
import sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
from starlette.testclient import TestClient
from rhip.web.app import create_app_from_env

creates, reads = int(sys.argv[1]), int(sys.argv[2])
with TestClient(create_app_from_env()) as client:
    for _ in range(creates):
        created = client.post(
            "/fhir/Patient", content=b'{"resourceType": "Patient"}', headers={"Content-Type": "application/fhir+json"}
        )
        assert created.status_code == 201, created.text
    for _ in range(reads):
        assert client.get("/fhir/metadata").status_code == 200
    sys.stdout.write(client.get("/metrics").text)
"""


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _requests(method: str, route: str, status: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("rhip_http_requests_total", (("method", method), ("route", route), ("status", status)))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    url = f"sqlite:///{tmp_path}/rhip.db"
    db = database(Settings(database_url=url))
    upgrade(db.engine)
    db.dispose()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RHIP_", "PROMETHEUS_", "prometheus_")) or k.startswith("RHIP_SECURITY__")
    }  # the suite's security setting (tests/conftest.py) stays
    env.update(RHIP_DATABASE_URL=url, RHIP_LOG_LEVEL="WARNING", PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    return env


def _worker(
    env: dict[str, str], creates: int, reads: int
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(creates), str(reads)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return _samples(done.stdout)


def test_a_scrape_sums_every_worker(env: dict[str, str]) -> None:
    first = _worker(env, creates=2, reads=2)
    assert first[_requests("POST", "fhir:Patient:type", "201")] == 2
    second = _worker(env, creates=1, reads=3)
    # The second worker's scrape holds the first's requests too (its files outlive it).
    assert second[_requests("POST", "fhir:Patient:type", "201")] == 3
    assert second[_requests("GET", "fhir:metadata", "200")] == 5
    assert second[_requests("GET", "/metrics", "200")] == 1
    assert (
        second[("rhip_fhir_writes_total", (("event", "ResourceCreated"), ("resource_type", "Patient")))] == 3
    )
    assert second[("rhip_http_request_seconds_count", (("route", "fhir:metadata"),))] == 5
    # In flight: summed over live workers only (the scrape itself), with no per-process series.
    in_flight = {labels: value for (name, labels), value in second.items() if name == "rhip_http_in_flight"}
    assert in_flight == {(): 1.0}
    files = sorted(p.name for p in Path(env["PROMETHEUS_MULTIPROC_DIR"]).iterdir())
    assert not [f for f in files if f.startswith("gauge_live")], files  # stopped workers left no live gauge
    assert len([f for f in files if f.startswith("counter_")]) == 2, files


def test_without_file_backed_values_the_registry_stays_per_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # This test process imported prometheus_client without the variable: its values live in memory,
    # so the application keeps its own registry rather than reading files nobody writes.
    metrics = Metrics(str(tmp_path))
    assert metrics.multiprocess_dir is None
    assert "PROMETHEUS_MULTIPROC_DIR" in caplog.text
    metrics.requests.labels("GET", "fhir:metadata", "200").inc()
    assert list(tmp_path.iterdir()) == []
    assert Metrics().multiprocess_dir is None
