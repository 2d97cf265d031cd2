"""Shared helpers of the benchmarks: a real server in a subprocess, HTTP clients, percentiles, results."""

from __future__ import annotations

import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run ``rhip`` with ``env``; its standard output (exits the benchmark when it fails)."""
    done = subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", *args],
        check=False,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"rhip {' '.join(args[:2])} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def load_region(
    work: Path, name: str, env: dict[str, str], url: str, *, people: int, start: str, formats: str
) -> None:
    """Generate a one-year synthetic region and load it into ``url`` once (``work/loaded-<name>`` marks it).

    ``formats``: ``fhir`` or ``fhir,cda``; the documents the region gets wrong on purpose are refused and kept.
    """
    marker = work / f"loaded-{name}"
    if marker.exists():
        return
    region = work / f"region-{name}"
    if not (region / "manifest.json").exists():
        cli(env, "synth", "--out", str(region), "--people", str(people), "--years", "1", "--start", start,
            "--formats", formats)  # fmt: skip
    reset_database(url)
    started = time.perf_counter()
    cli(env, "import", str(region / "fhir"), "--jobs", "2")
    if "cda" in formats.split(","):
        cli(env, "import", str(region / "cda"), "--allow-refused")
    print(f"loaded the region in {time.perf_counter() - started:.0f} s")
    marker.touch()


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def reset_database(url: str) -> None:
    """Start from an empty database: delete the SQLite file, or empty PostgreSQL's public schema."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1]
        for suffix in ("", "-wal", "-shm", ".lock"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    else:
        import sqlalchemy

        engine = sqlalchemy.create_engine(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public")
        engine.dispose()
    subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", "db", "upgrade"],
        env={**os.environ, "RHIP_DATABASE_URL": url},
        check=True,
        capture_output=True,
    )


class Server:
    """``rhip serve`` in a subprocess on a free port."""

    def __init__(self, url: str, workers: int = 1, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "RHIP_DATABASE_URL": url,
            "RHIP_LOG_LEVEL": "WARNING",
            "RHIP_EXCHANGE__MLLP__ENABLED": "false",  # the FHIR benchmarks measure HTTP only
            **(extra_env or {}),
        }
        self.log = (ROOT / "var" / "bench-server.log").open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rhip.cli.main",
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("server did not become ready; see var/bench-server.log")

    def pids(self) -> list[int]:
        """The server and its child processes (workers, the writer, audit appenders)."""
        pids = [self.proc.pid]
        # Each thread lists the children it started (the audit appender is started by the audit thread).
        for task in Path(f"/proc/{self.proc.pid}/task").glob("*"):
            try:
                pids += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
        return pids

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server and its running child processes have used."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the server and its worker processes, in MB."""
        total = 0
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def stop(self) -> None:
        """Stop the server and its workers."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of latencies in seconds, as milliseconds."""
    if not samples:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {
        "p50_ms": at(0.50),
        "p95_ms": at(0.95),
        "p99_ms": at(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def write_result(name: str, data: dict[str, Any]) -> Path:
    """Save a result as JSON under bench/results/ and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    return path


def http_load(port: int, paths: list[str], token: str | None, clients: int, seconds: float) -> dict[str, Any]:
    """Requests, latencies (seconds) and error statuses of ``clients`` threads sending ``paths`` for ``seconds``."""
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    samples: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad, i = [], [], k
        while time.perf_counter() < stop:
            path = paths[i % len(paths)]
            i += clients
            started = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status != 200:
                bad.append(response.status)
        conn.close()
        with lock:
            samples.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    return {"requests": len(samples), "seconds": elapsed, "samples": samples, "errors": errors}
