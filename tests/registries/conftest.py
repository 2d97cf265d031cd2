"""A real server for the registries' tests: ``rhip serve`` on a free port over a fresh SQLite database."""

from __future__ import annotations

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

STARTUP_S = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str) -> dict[str, str]:
    """The environment of a test server (the suite's security setting kept, its own MLLP port)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("RHIP_") or k.startswith("RHIP_SECURITY__")
    }
    env.update(
        RHIP_DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
        RHIP_EXCHANGE__MLLP__PORT=str(_free_port()),
        RHIP_LOG_FORMAT="text",
    )
    return env


def run_cli(
    env: dict[str, str], *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``rhip <args>`` in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A running ``rhip serve``: its FHIR base URL and the environment that reaches its database."""
    workdir: Path = tmp_path_factory.mktemp("registries")
    env = server_env(f"sqlite:///{workdir}/rhip.db")
    migrated = run_cli(env, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr.decode()
    port = _free_port()
    log = workdir / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "rhip.cli.main", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=workdir,
        )
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"rhip serve exited:\n{log.read_text(errors='replace')}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"rhip serve was not ready:\n{log.read_text(errors='replace')}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/fhir", env
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
