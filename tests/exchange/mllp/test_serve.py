"""The listener as ``rhip serve`` runs it: built from the settings, and the real server with two workers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.mllp.client import MllpClient, ack_summary
from rhip.web.mllp import start_v2_listener

from .conftest import search
from .messages import MRN_SYSTEM, adt

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_listener_of_the_settings(platform: Platform) -> None:
    settings = platform.settings.model_copy(deep=True)
    settings.exchange.mllp.port = _free_port()
    settings.exchange.mllp.charsets = {"510725H01": "GBK"}

    async def scenario() -> None:
        listener = await start_v2_listener(platform, settings)
        assert listener is not None
        try:
            client = await MllpClient.connect("127.0.0.1", settings.exchange.mllp.port)
            ack = await client.send(adt("W1", "M1", charset=None).encode("gbk"))
            assert ack_summary(ack)[:2] == ("AA", "W1")
            await client.close()
        finally:
            await listener.stop()
        settings.exchange.mllp.enabled = False
        assert await start_v2_listener(platform, settings) is None

    asyncio.run(asyncio.wait_for(scenario(), 60))
    assert search(platform, "Patient", f"identifier={MRN_SYSTEM}|M1")[0]["name"][0]["family"] == "张"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``rhip serve`` with two workers on a fresh SQLite database; its HTTP base and MLLP port."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RHIP_") or k.startswith("RHIP_SECURITY__")
    }  # the suite's security setting (tests/conftest.py) stays
    env.update(RHIP_DATABASE_URL=f"sqlite:///{tmp_path}/rhip.db", PYTHONUNBUFFERED="1")
    subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", "db", "upgrade"], env=env, check=True, capture_output=True
    )
    http_port, mllp_port = _free_port(), _free_port()
    env["RHIP_EXCHANGE__MLLP__PORT"] = str(mllp_port)
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rhip.cli.main", "serve", "--port", str(http_port), "--workers", "2"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/readyz", timeout=2).status_code == 200:
                    with socket.create_connection(("127.0.0.1", mllp_port), timeout=2):
                        break
            except (httpx.TransportError, OSError):
                pass
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{http_port}/fhir", mllp_port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def test_rhip_serve_listens_with_two_workers(served: tuple[str, int]) -> None:
    base, port = served

    async def sender(k: int) -> list[str]:
        client = await MllpClient.connect("127.0.0.1", port)
        try:
            return [
                ack_summary(await client.send(adt(f"S{k}-{i}", f"P{k}-{i}", id_card="").encode()))[0]
                for i in range(5)
            ]
        finally:
            await client.close()

    async def scenario() -> list[list[str]]:
        return await asyncio.gather(*(sender(k) for k in range(6)))

    assert asyncio.run(scenario()) == [["AA"] * 5] * 6
    found = httpx.get(f"{base}/Patient", params={"identifier": f"{MRN_SYSTEM}|P3-4"}, timeout=30).json()
    assert found["total"] == 1 if "total" in found else len(found["entry"]) == 1
    headers = httpx.get(f"{base}/MessageHeader", params={"_summary": "count"}, timeout=30).json()
    assert headers["total"] == 30


def test_rhip_serve_answers_hl7v3_and_the_person_is_one_master(served: tuple[str, int]) -> None:
    base, _port = served
    root = base.removesuffix("/fhir")
    request = (
        Path(__file__).resolve().parents[1] / "hl7v3" / "golden" / "07-person-register.request.xml"
    ).read_bytes()
    answer = httpx.post(
        f"{root}/hl7v3/", content=request, headers={"content-type": "application/xml"}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert 'typeCode="AA"' in answer.text and "MCCI_IN000002UV01" in answer.text
    wsdl = httpx.get(f"{root}/hl7v3/", params={"wsdl": ""}, timeout=30)
    assert wsdl.status_code == 200 and "definitions" in wsdl.text
    found = httpx.get(
        f"{base}/Patient", params={"identifier": "urn:rhip:mrn:510704104X01|812524559757"}, timeout=30
    ).json()
    [entry] = found["entry"]
    master = httpx.get(f"{base}/Patient/{entry['resource']['id']}/$empi-master", timeout=30)
    assert master.status_code == 200, master.text
