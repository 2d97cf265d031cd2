"""Fixtures of the portal tests: a small synthetic region (FHIR and CDA documents) with one account per
role, served in process (Starlette's TestClient) and by a real ``rhip serve`` for the browser tests.

The region is built once per test process (about 15 s): 40 residents, one year of care ending today, so
the demo clinician's visits fall within the care window.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from rhip.bootstrap.settings import Settings
from rhip.cli.demo import DemoAccount, make_demo_accounts
from rhip.web.app import create_app

STARTUP_S = 60.0


def password_of(username: str) -> str:
    """The test password of a demo account."""
    return f"{username}-Pw!2026"


@dataclass
class PortalSite:
    """The region's database, keys and accounts."""

    workdir: Path
    env: dict[str, str]  # RHIP_* settings of a secured platform on the region
    accounts: dict[
        str, DemoAccount
    ]  # by username: demo-admin, demo-doctor, demo-cdc, demo-stats, demo-resident

    def settings(self) -> Settings:
        """The platform's settings (security on)."""
        return Settings(
            database_url=self.env["RHIP_DATABASE_URL"],
            security={
                "enabled": True,
                "keys_dir": self.env["RHIP_SECURITY__KEYS_DIR"],
                # Every test signs in: the sign-in throttle is tested in tests/web/test_auth_hardening.py.
                "signin_attempts_per_minute": 10_000,
                "signin_attempt_burst": 10_000,
            },
            log_format="text",
        )

    @property
    def resident_patient(self) -> str:
        """The Patient id the demo resident is bound to."""
        return self.accounts["demo-resident"].scope.removeprefix("Patient/")


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def portal_site(tmp_path_factory: pytest.TempPathFactory) -> PortalSite:
    """The region, loaded, with its demo accounts (passwords from :func:`password_of`)."""
    workdir = tmp_path_factory.mktemp("portal")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHIP_")}
    env.update(
        RHIP_DATABASE_URL=f"sqlite:///{workdir}/rhip.db",
        RHIP_SECURITY__ENABLED="true",
        RHIP_SECURITY__KEYS_DIR=str(workdir / "keys"),
        RHIP_SECURITY__SIGNIN_ATTEMPTS_PER_MINUTE="10000",
        RHIP_SECURITY__SIGNIN_ATTEMPT_BURST="10000",
        RHIP_LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
    )
    start = (date.today() - timedelta(days=365)).isoformat()
    region = workdir / "region"
    _cli(env, "db", "upgrade")
    _cli(
        env,
        "synth",
        "--out",
        str(region),
        "--people",
        "40",
        "--years",
        "1",
        "--start",
        start,
        "--formats",
        "fhir,cda",
        "--workers",
        "1",
    )
    _cli(env, "import", str(region / "fhir"), "--jobs", "1")
    _cli(env, "import", str(region / "cda"))
    site = PortalSite(workdir, env, {})
    made = make_demo_accounts(site.settings(), password=password_of)
    site.accounts = {a.username: a for a in made}
    return site


@pytest.fixture(scope="session")
def portal_app(portal_site: PortalSite) -> Iterator[Callable[[str | None], TestClient]]:
    """A factory of in-process clients of one application: signed in as a demo account, or not (None)."""
    app = create_app(portal_site.settings())
    clients: list[TestClient] = []
    with TestClient(app) as first:
        clients.append(first)

        def make(username: str | None, address: str | None = None) -> TestClient:
            # Each client its own address unless told (sign-in attempts are throttled per address).
            own = f"10.0.{len(clients) // 250}.{len(clients) % 250 + 1}"
            client = TestClient(app, raise_server_exceptions=True, client=(address or own, 50000))
            client.__enter__()
            clients.append(client)
            if username is not None:
                sign_in(client, username)
            return client

        yield make
        for client in clients[1:]:
            client.__exit__(None, None, None)


def sign_in(client: TestClient, username: str, password: str | None = None) -> httpx.Response:
    """Sign ``client`` in through the sign-in form (CSRF cookie first); the final response."""
    form = client.get("/portal/signin")
    assert form.status_code == 200
    csrf = client.cookies.get("rhip_csrf")
    response: httpx.Response = client.post(
        "/portal/signin",
        data={"username": username, "password": password or password_of(username), "csrf": csrf or ""},
    )
    return response


@dataclass
class RunningPortal:
    """A ``rhip serve`` of the region."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="session")
def portal_server(portal_site: PortalSite) -> Iterator[RunningPortal]:
    """The real server on a free port (the browser tests' target)."""
    port = _free_port()
    env = {**portal_site.env, "RHIP_EXCHANGE__MLLP__PORT": str(_free_port())}
    log = portal_site.workdir / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rhip.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=portal_site.workdir,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            assert process.poll() is None, log.read_text(errors="replace")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the portal server did not start: " + log.read_text(
                errors="replace"
            )
            time.sleep(0.2)
        yield RunningPortal(url, process, log)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)


@pytest.fixture(scope="module", autouse=True)
def _browser_closed_after_each_module() -> Iterator[None]:
    """The browser tests' shared Chromium is closed when a module's tests end: while Playwright's sync API
    is running, its event loop is this thread's, and tests elsewhere that call ``asyncio.run`` would fail."""
    yield
    from .browser import close_shared

    close_shared()
