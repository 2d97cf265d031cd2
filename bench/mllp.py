#!/usr/bin/env python3
"""MLLP benchmark: a synthetic region's HL7 v2 messages streamed over 8 connections to a real listener.

The region's hospitals each send their own stream (``hl7v2/<institution>.mllp``: ADT^A01/A03/A04/A08 and
ORU^R01, UTF-8 or GBK), every stream on one connection in its own order, the streams shared among the
connections by size. Each message is acknowledged only after its data is committed (original mode: one
message at a time per connection). Two runs on fresh SQLite databases:

1. as fast as the listener answers: messages/s acknowledged (AA) and persisted (MessageHeader receipts
   counted in the store afterwards), ACK latency p50/p95/p99, peak server memory;
2. paced at ``--rate`` messages/s in total (500; repeat the option for more runs): ACK latency
   p50/p95/p99 at that load.

The listener is ``rhip serve`` when the web application starts the MLLP listener, otherwise this script
started as a server (``--child``: the platform and ``rhip.web.mllp``'s listener, as one ``rhip serve``
worker runs them). Results are printed and written to var/bench/mllp-<time>.json.

    python bench/mllp.py                          # a 6,000-resident region over 3 years (~17,000 messages)
    python bench/mllp.py --source var/ex-small    # another region (a folder holding hl7v2/*.mllp)
    python bench/mllp.py --limit 5000 --paced-seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import inspect
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, free_port, machine, percentiles, reset_database

OUT = ROOT / "var" / "bench"
REGION = OUT / "mllp-region"


# -- the region ---------------------------------------------------------------------------------------
def region(source: Path | None, people: int, years: int) -> Path:
    """The folder of .mllp streams: ``--source`` or a region generated once."""
    folder = source or REGION
    streams = folder / "hl7v2" if (folder / "hl7v2").is_dir() else folder
    if not list(streams.glob("*.mllp")):
        if source is not None:
            raise SystemExit(f"no *.mllp under {source}")
        print(
            f"generating a {people:,}-resident region ({years} years) into {REGION.relative_to(ROOT)} …",
            flush=True,
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rhip.cli.main",
                "synth",
                "--out",
                str(REGION),
                "--people",
                str(people),
                "--years",
                str(years),
                "--start",
                "2023-01-01",
                "--formats",
                "hl7v2",
            ],
            check=True,
        )
        streams = REGION / "hl7v2"
    return streams


def load(streams: Path, limit: int | None) -> list[list[bytes]]:
    """Each institution's messages, in order (at most ``limit`` in all, taken evenly)."""
    from rhip.exchange.mllp.client import split_messages

    per_file = [split_messages(f.read_bytes()) for f in sorted(streams.glob("*.mllp"))]
    if limit is not None:
        total = sum(len(p) for p in per_file)
        share = min(1.0, limit / max(total, 1))
        per_file = [p[: max(1, round(len(p) * share))] for p in per_file]
    return [p for p in per_file if p]


def deal(per_file: list[list[bytes]], connections: int) -> list[list[bytes]]:
    """The institutions' streams shared among the connections, largest first to the least loaded."""
    queues: list[list[bytes]] = [[] for _ in range(connections)]
    for stream in sorted(per_file, key=len, reverse=True):
        min(queues, key=len).extend(stream)
    return [q for q in queues if q]


def message_types(per_file: list[list[bytes]]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for stream in per_file:
        for m in stream:
            fields = m.split(b"|", 9)
            counts[fields[8].split(b"^")[0].decode() + "^" + fields[8].split(b"^")[1].decode()] += 1
    return dict(counts.most_common())


# -- the listener --------------------------------------------------------------------------------------
def serve_listens() -> bool:
    """Whether ``rhip serve`` starts the MLLP listener (the web application's lifespan does)."""
    import rhip.web.app

    return "start_v2_listener" in inspect.getsource(rhip.web.app)


class Listener:
    """The server process (``rhip serve``, or this script as ``--child``) on a fresh database."""

    def __init__(self, url: str, mode: str, workers: int, extra_env: dict[str, str]) -> None:
        self.http_port, self.port = free_port(), free_port()
        env = {
            **os.environ,
            "RHIP_DATABASE_URL": url,
            "RHIP_LOG_LEVEL": "WARNING",
            "RHIP_EXCHANGE__MLLP__PORT": str(self.port),
            **extra_env,
        }
        self.log = (ROOT / "var" / "bench-server.log").open("ab")
        if mode == "serve":
            commands = [
                ["-m", "rhip.cli.main", "serve", "--port", str(self.http_port), "--workers", str(workers)]
            ]
        else:
            # as many listeners as workers, sharing the port (SO_REUSEPORT) as rhip serve's workers do
            env["RHIP_SERVER__WORKERS"] = str(workers)
            commands = [[__file__, "--child"] for _ in range(workers)]
        self.procs = [
            subprocess.Popen(
                [sys.executable, *args],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=self.log,
                start_new_session=True,
            )
            for args in commands
        ]
        deadline = time.time() + 90
        while time.time() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError("the server stopped; see var/bench-server.log")
            if mode == "serve" and not self._http_ready():
                time.sleep(0.3)
                continue
            try:
                import socket

                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError("the MLLP listener did not come up; see var/bench-server.log")

    def _http_ready(self) -> bool:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=2)
            conn.request("GET", "/readyz")
            return conn.getresponse().status == 200
        except OSError:
            return False

    def rss_mb(self) -> float:
        """Resident memory of the server processes and their child processes, in MB."""
        total = 0
        pids = [p.pid for p in self.procs]
        for proc in self.procs:
            with contextlib.suppress(OSError):
                pids += [
                    int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
                ]
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total / 1024

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.log.close()


def child() -> int:
    """Run the platform and its MLLP listener as one ``rhip serve`` worker does, until SIGTERM."""
    from rhip.bootstrap.container import build_platform
    from rhip.bootstrap.logging import configure_logging
    from rhip.bootstrap.settings import Settings
    from rhip.web.mllp import start_v2_listener

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    platform = build_platform(settings)

    async def run() -> None:
        listener = await start_v2_listener(platform, settings)
        assert listener is not None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await listener.stop()

    try:
        asyncio.run(run())
    finally:
        platform.close()
    return 0


# -- the senders ---------------------------------------------------------------------------------------
async def send_all(
    port: int, queues: list[list[bytes]], rate: float | None, listener: Listener, report_every: float
) -> dict[str, Any]:
    """Send every queue on its own connection (paced at ``rate`` messages/s in all when given)."""
    from rhip.exchange.mllp.client import MllpClient

    latencies: list[float] = []
    codes: Counter[str] = Counter()
    sent = [0]
    peak = [listener.rss_mb()]
    # The paced schedule: the queues' messages taken round-robin (a finished queue drops out), one every 1/rate s.
    slot: list[list[int]] = [[] for _ in queues]
    position = 0
    for i in range(max(len(q) for q in queues)):
        for k, q in enumerate(queues):
            if i < len(q):
                slot[k].append(position)
                position += 1
    started = time.perf_counter()

    async def connection(k: int, queue: list[bytes]) -> None:
        client = await MllpClient.connect("127.0.0.1", port)
        try:
            for i, message in enumerate(queue):
                if rate:
                    due = started + slot[k][i] / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                t = time.perf_counter()
                ack = await client.send(message, timeout=120)
                latencies.append(time.perf_counter() - t)
                at = ack.find(b"\rMSA")
                codes[ack[at + 5 : at + 7].decode("ascii", "replace") if at >= 0 else "??"] += 1
                sent[0] += 1
        finally:
            await client.close()

    async def watch() -> None:
        last_t, last_n = started, 0
        while True:
            await asyncio.sleep(report_every)
            now, done = time.perf_counter(), sent[0]
            rss = listener.rss_mb()
            peak[0] = max(peak[0], rss)
            print(
                f"  {done:>7,} acknowledged  {(done - last_n) / (now - last_t):>6,.0f}/s now  "
                f"{done / (now - started):>6,.0f}/s overall  server {rss:,.0f} MB",
                flush=True,
            )
            last_t, last_n = now, done

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.gather(*(connection(k, q) for k, q in enumerate(queues)))
    finally:
        watcher.cancel()
    seconds = time.perf_counter() - started
    peak[0] = max(peak[0], listener.rss_mb())
    return {
        "messages": sum(codes.values()),
        "seconds": round(seconds, 2),
        "messages_per_s": round(sum(codes.values()) / seconds, 1),
        "acks": dict(codes),
        "ack_latency": percentiles(latencies),
        "peak_rss_mb": round(peak[0]),
    }


def persisted(url: str) -> int:
    """Receipts (MessageHeader) in the store: the messages whose data was committed."""
    from rhip.bootstrap.container import build_platform
    from rhip.bootstrap.settings import Settings
    from rhip.fhir.rest.messages import FhirRequest

    platform = build_platform(Settings(database_url=url, log_format="text"), empi=False)
    try:
        response = platform.fhir.handle(FhirRequest("GET", "MessageHeader", query=[("_summary", "count")]))
        return int(json.loads(response.body or b"{}").get("total", 0))
    finally:
        platform.close()


def one_run(
    args: argparse.Namespace, url: str, mode: str, queues: list[list[bytes]], rate: float | None
) -> dict[str, Any]:
    reset_database(url)
    env = {
        "RHIP_EMPI__ONLINE": "true" if args.empi else "false",
        "RHIP_EXCHANGE__MLLP__BATCH_LINGER_MS": str(args.linger_ms),
        "RHIP_EXCHANGE__MLLP__BATCH_MAX": str(args.batch_max),
    }
    listener = Listener(url, mode, args.workers, env)
    try:
        result = asyncio.run(send_all(listener.port, queues, rate, listener, args.report_every))
    finally:
        listener.stop()
    result["persisted"] = persisted(url)
    return result


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--source", type=Path, help="a region folder (with hl7v2/*.mllp) or a folder of .mllp files"
    )
    parser.add_argument("--people", type=int, default=6000, help="residents of the generated region")
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument(
        "--limit", type=int, help="send at most this many messages (taken evenly from each stream)"
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument(
        "--rate", type=float, action="append", help="messages/s of a paced run (repeatable; default 500)"
    )
    parser.add_argument("--paced-seconds", type=float, default=30.0, help="length of the paced run")
    parser.add_argument("--server", choices=["auto", "serve", "child"], default="auto")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes, each with its MLLP listener"
    )
    parser.add_argument(
        "--empi",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="match Patients in the resident index as they are stored (the default of rhip serve)",
    )
    parser.add_argument("--linger-ms", type=float, default=2.0)
    parser.add_argument("--batch-max", type=int, default=64)
    parser.add_argument("--db", default=f"sqlite:///{OUT / 'mllp.db'}")
    parser.add_argument("--report-every", type=float, default=5.0)
    args = parser.parse_args()
    if args.child:
        return child()
    mode = args.server if args.server != "auto" else ("serve" if serve_listens() else "child")
    per_file = load(region(args.source, args.people, args.years), args.limit)
    queues = deal(per_file, args.connections)
    total = sum(len(q) for q in queues)
    types = message_types(per_file)
    print(
        f"{total:,} messages from {len(per_file)} institutions over {len(queues)} connections "
        f"({', '.join(f'{k} {v:,}' for k, v in types.items())}); listener: {mode}, EMPI online: {args.empi}",
        flush=True,
    )

    print("run 1: as fast as acknowledged", flush=True)
    fast = one_run(args, args.db, mode, queues, None)
    paced: list[dict[str, Any]] = []
    for rate in args.rate or [500.0]:
        share = min(total, int(rate * args.paced_seconds)) / total
        paced_queues = [q[: max(1, round(len(q) * share))] for q in queues]
        count = sum(len(q) for q in paced_queues)
        print(f"run {len(paced) + 2}: paced at {rate:,.0f} messages/s ({count:,} messages)", flush=True)
        paced.append({"rate": rate, **one_run(args, args.db, mode, paced_queues, rate)})

    out = {
        "benchmark": "mllp",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "listener": mode,
        "workers": args.workers,
        "empi_online": args.empi,
        "connections": len(queues),
        "batch_linger_ms": args.linger_ms,
        "batch_max": args.batch_max,
        "messages": total,
        "message_types": types,
        "fast": fast,
        "paced": paced,
    }
    runs = [("as fast as acknowledged", fast)] + [(f"paced at {r['rate']:,.0f}/s", r) for r in paced]
    for name, r in runs:
        lat = r["ack_latency"]
        print(
            f"\n{name}: {r['messages']:,} messages in {r['seconds']} s = {r['messages_per_s']:,} messages/s "
            f"acknowledged ({r['acks']}), {r['persisted']:,} persisted; ACK latency p50 {lat['p50_ms']} ms, "
            f"p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms; peak server RSS "
            f"{r['peak_rss_mb']} MB"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"mllp-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(out, indent=2, ensure_ascii=False))
    print(f"written to {path.relative_to(ROOT)}")
    ok = fast["acks"].get("AA", 0) == fast["messages"] == fast["persisted"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
