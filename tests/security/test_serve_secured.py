"""``rhip serve`` with the security layer on, talked to as a hospital would: accounts made with the CLI, a
portal sign-in at /auth/token, the FHIR API with the token, HL7 v3 with and without one, HL7 v2 over MLLP
from a trusted address; and the audit log they leave, checked by ``rhip audit verify``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rhip.exchange.mllp.client import MllpClient, ack_summary

pytestmark = pytest.mark.integration
V3_GOLDEN = Path(__file__).resolve().parents[1] / "exchange" / "hl7v3" / "golden"
SOAP = "application/soap+xml; charset=utf-8"
SERVER_PID = "TEST_SERVER_PID"  # not a setting: where the tests find the server process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", *args],
        check=False,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, dict[str, str]]]:
    """A secured ``rhip serve`` on free ports; its HTTP root, MLLP port and environment."""
    work = tmp_path_factory.mktemp("secured")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHIP_")}
    http_port, mllp_port = _free_port(), _free_port()
    env.update(
        RHIP_DATABASE_URL=f"sqlite:///{work}/rhip.db",
        RHIP_SECURITY__ENABLED="true",
        RHIP_SECURITY__KEYS_DIR=str(work / "keys"),
        RHIP_SERVER__PORT=str(http_port),
        RHIP_EXCHANGE__MLLP__PORT=str(mllp_port),
        PYTHONUNBUFFERED="1",
    )
    _cli(env, "db", "upgrade")
    _cli(
        env,
        "users",
        "add",
        "--username",
        "doctor-x",
        "--role",
        "clinician",
        "--institution",
        "510704104X01",
        "--password-stdin",
        stdin="doctor-password-1\n",
    )
    _cli(
        env,
        "clients",
        "add",
        "--client-id",
        "phis-510704104X01",
        "--role",
        "system",
        "--institution",
        "510704104X01",
        "--scopes",
        "system/*.cruds",
        "--cert-sha256",
        "cd" * 32,
    )
    _cli(
        env,
        "clients",
        "add",
        "--client-id",
        "phis-other",
        "--role",
        "system",
        "--institution",
        "510703001S01",
        "--scopes",
        "system/*.cruds",
        "--cert-sha256",
        "ef" * 32,
    )
    log = (work / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "rhip.cli.main", "serve", "--port", str(http_port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (work / "serve.log").read_text(errors="replace")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (work / "serve.log").read_text(errors="replace")
            time.sleep(0.2)
        yield base, mllp_port, {**env, SERVER_PID: str(process.pid)}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def test_portal_sign_in_and_fhir_with_the_token(server: tuple[str, int, dict[str, str]]) -> None:
    base, _, _ = server
    with httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/fhir/Patient").status_code == 401
        bad = client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "doctor-x", "password": "wrong-password"},
        )
        assert bad.status_code in (400, 401) and bad.json()["error"] == "invalid_grant"
        answer = client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "doctor-x", "password": "doctor-password-1"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["cache-control"] == "no-store"
        token = answer.json()["access_token"]
        found = client.get("/fhir/Organization", headers={"Authorization": f"Bearer {token}"})
        assert found.status_code == 200 and found.json()["resourceType"] == "Bundle"
        # Security headers and no CORS unless configured.
        assert found.headers["x-content-type-options"] == "nosniff"
        assert "access-control-allow-origin" not in found.headers
        jwks = client.get("/.well-known/jwks.json").json()
        assert jwks["keys"] and all("d" not in k for k in jwks["keys"])


def test_hl7v3_needs_a_token_and_writes_as_its_institution(server: tuple[str, int, dict[str, str]]) -> None:
    base, _, env = server
    register = (V3_GOLDEN / "07-person-register.request.xml").read_bytes()
    with httpx.Client(base_url=base, timeout=30) as client:
        refused = client.post("/hl7v3/", content=register, headers={"content-type": "application/xml"})
        assert refused.status_code == 401
        assert b'typeCode="AR"' in refused.content or b"AR" in refused.content
        own = _cli(env, "tokens", "issue", "--client-id", "phis-510704104X01").strip().splitlines()[-1]
        other = _cli(env, "tokens", "issue", "--client-id", "phis-other").strip().splitlines()[-1]
        # A system of another institution may not register a person in this institution's name.
        foreign = client.post(
            "/hl7v3/",
            content=register,
            headers={"content-type": "application/xml", "Authorization": f"Bearer {other}"},
        )
        assert b'typeCode="AA"' not in foreign.content
        assert b"RHIP-SEC-0002" in foreign.content
        accepted = client.post(
            "/hl7v3/",
            content=register,
            headers={"content-type": "application/xml", "Authorization": f"Bearer {own}"},
        )
        assert b'typeCode="AA"' in accepted.content, accepted.text


def test_mllp_from_a_trusted_address(server: tuple[str, int, dict[str, str]]) -> None:
    _, port, env = server
    message = (
        "MSH|^~\\&|HIS|510704104X01|RHIP|RHIP|20250308134800+0800||ADT^A04^ADT_A01|SEC-1|P|2.5.1||||||UNICODE UTF-8\r"
        "EVN|A04|20250308134800+0800\r"
        "PID|1||SEC-P1^^^510704104X01^MR||张^三||19800101|M\r"
        "PV1|1|O|03^^^510704104X01^^^^^内科||||||||||||||||MZSEC1^^^510704104X01^VN\r"
    )

    async def send() -> tuple[str, str, str]:
        client = await MllpClient.connect("127.0.0.1", port)
        try:
            return ack_summary(await client.send(message.encode()))
        finally:
            await client.close()

    assert asyncio.run(send())[0] == "AA"
    # Every access above is in the audit log, whose chain holds.
    out = _cli(env, "audit", "verify")
    assert "ok" in out.lower() or "intact" in out.lower(), out


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def test_reads_are_audited_by_the_appender_process(server: tuple[str, int, dict[str, str]]) -> None:
    base, _, env = server
    with httpx.Client(base_url=base, timeout=30) as client:
        answer = client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "doctor-x", "password": "doctor-password-1"},
        )
        token = answer.json()["access_token"]
        searched = client.get("/fhir/Practitioner?name=nobody", headers={"Authorization": f"Bearer {token}"})
        assert searched.status_code == 200
    database = env["RHIP_DATABASE_URL"].removeprefix("sqlite:///")
    deadline = time.monotonic() + 30
    while True:  # reads are written in batches, at least once a second
        with sqlite3.connect(database) as conn:
            found = conn.execute(
                "SELECT count(*) FROM audit_log WHERE subject = 'user:doctor-x' AND subtype = 'search-type'"
            ).fetchone()[0]
        if found:
            break
        assert time.monotonic() < deadline, "the search was not audited"
        time.sleep(0.2)
    commands = [Path(f"/proc/{c}/cmdline").read_bytes() for c in _children(int(env[SERVER_PID]))]
    assert any(b"rhip.security.audit.appender" in c for c in commands), commands
