#!/usr/bin/env python3
"""Search benchmark on the store the ingest benchmark filled (1,000,000 resources by default).

Five searches of docs/performance.md, with values drawn from the stored data:

    Patient?identifier=urn:oid:2.16.156.10011.1.3|<ID number>
    Patient?name=<name>&birthdate=<date>
    Observation?patient=<id>&code=http://loinc.org|<code>&date=ge<date>&_sort=-date&_count=50
    Encounter?patient=<id>&_include=Encounter:service-provider
    Condition?code=<ICD-10 system>|<code>&_summary=count

First each search runs alone (one client) for latency p50/p95/p99; then a mix runs with ``--clients``
concurrent clients for throughput. It also reports the server's peak RSS. Results go to bench/results/.

    python bench/fhir_search.py                 # uses var/bench/ingest.db (run fhir_ingest.py first)
    python bench/fhir_search.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, machine, percentiles, write_result

ID_CARD = "urn:oid:2.16.156.10011.1.3"
ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"
LOINC = "http://loinc.org"
RECONNECT_EVERY = 200


def sample_values(url: str, n: int, seed: int) -> dict[str, list[str]]:
    """Search values taken from stored resources (so that searches find what a user would find)."""
    engine = sa.create_engine(url)
    rng = random.Random(seed)
    with engine.connect() as conn:
        total = conn.exec_driver_sql("SELECT count(*) FROM resource").scalar_one()
        patients = conn.exec_driver_sql(
            "SELECT v.content FROM resource r JOIN resource_version v ON v.vid = r.vid "
            "WHERE r.res_type = 'Patient' AND r.deleted = false ORDER BY r.pid LIMIT 20000"
        ).all()
    engine.dispose()
    chosen = rng.sample([orjson.loads(bytes(p[0])) for p in patients], min(n, len(patients)))
    queries: dict[str, list[str]] = {
        k: [] for k in ("identifier", "name_birthdate", "observation", "encounter", "condition_count")
    }
    codes = ["8480-6", "29463-7", "8302-2", "8867-4", "85354-9", "1558-6", "4548-4", "718-7", "2093-3"]
    icd = ["I10", "E11.9", "J06.9", "J18.9", "K52.9", "J45.9", "M54.5"]
    for p in chosen:
        ident = next(i["value"] for i in p["identifier"] if i["system"] == ID_CARD)
        queries["identifier"].append("/fhir/Patient?" + urlencode({"identifier": f"{ID_CARD}|{ident}"}))
        name = p["name"][0]["text"]
        queries["name_birthdate"].append(
            "/fhir/Patient?" + urlencode({"name": name, "birthdate": p["birthDate"]})
        )
        code = rng.choice(codes)
        since = f"{rng.randint(2021, 2024)}-{rng.randint(1, 12):02d}-01"
        queries["observation"].append(
            "/fhir/Observation?"
            + urlencode(
                [
                    ("patient", p["id"]),
                    ("code", f"{LOINC}|{code}"),
                    ("date", f"ge{since}"),
                    ("_sort", "-date"),
                    ("_count", "50"),
                ]
            )
        )
        queries["encounter"].append(
            "/fhir/Encounter?" + urlencode([("patient", p["id"]), ("_include", "Encounter:service-provider")])
        )
        queries["condition_count"].append(
            "/fhir/Condition?" + urlencode([("code", f"{ICD10}|{rng.choice(icd)}"), ("_summary", "count")])
        )
    queries["_store_size"] = [str(total)]
    return queries


def fetch(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    """One GET on a kept-alive connection."""
    conn.request("GET", path, headers={"Accept": "application/fhir+json"})
    resp = conn.getresponse()
    return resp.status, resp.read()


def latency(port: int, paths: list[str], rounds: int) -> dict[str, float]:
    """Percentiles of one search kind run alone (after a warm-up pass)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for path in paths[:20]:
        fetch(conn, path)
    samples = []
    results = 0
    for i in range(rounds):
        path = paths[i % len(paths)]
        started = time.perf_counter()
        status, body = fetch(conn, path)
        samples.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"{path} answered {status}: {body[:200]!r}")
        results += body.count(b'"mode":"match"') or body.count(b'"total"')
    return {**percentiles(samples), "mean_results": round(results / rounds, 1)}


def throughput(
    port: int, paths: list[str], clients: int, seconds: float, server: Server
) -> dict[str, object]:
    """Searches per second with ``clients`` concurrent clients running the mix."""
    stop = threading.Event()
    lock = threading.Lock()
    samples: list[float] = []
    errors = [0]

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local = []
        while not stop.is_set():
            if len(local) % RECONNECT_EVERY == RECONNECT_EVERY - 1:
                # As in fhir_ingest.py: clients come and go, so the load spreads over the workers.
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            path = rng.choice(paths)
            started = time.perf_counter()
            status, _ = fetch(conn, path)
            local.append(time.perf_counter() - started)
            if status != 200:
                errors[0] += 1
        with lock:
            samples.extend(local)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    peak = 0.0
    while time.perf_counter() - started < seconds:
        time.sleep(1)
        peak = max(peak, server.rss_mb())
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {
        "clients": clients,
        "seconds": round(elapsed, 1),
        "searches": len(samples),
        "errors": errors[0],
        "searches_per_s": round(len(samples) / elapsed),
        "latency": percentiles(samples),
        "peak_rss_mb": round(peak),
    }


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=f"sqlite:///{ROOT / 'var' / 'bench' / 'ingest.db'}")
    parser.add_argument("--rounds", type=int, default=300, help="runs of each search for the latency figures")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="requests served at once per worker")
    args = parser.parse_args()
    kind = "postgresql" if args.db.startswith("postgresql") else "sqlite"
    if kind == "sqlite" and not Path(args.db.split("///", 1)[1]).exists():
        print("no benchmark store: run bench/fhir_ingest.py first", file=sys.stderr)
        return 2
    # The store as the database's own maintenance leaves it a while after a bulk load (`rhip db analyze`).
    subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", "db", "analyze"],
        env={**os.environ, "RHIP_DATABASE_URL": args.db},
        check=True,
        capture_output=True,
    )
    queries = sample_values(args.db, 300, seed=5)
    store_size = int(queries.pop("_store_size")[0])
    server = Server(args.db, args.workers, {"RHIP_SERVER__THREADS": str(args.threads)})
    try:
        print(
            f"{kind} store of {store_size:,} resources; {args.workers} workers × {args.threads} threads",
            flush=True,
        )
        single = {}
        for name, paths in queries.items():
            single[name] = latency(server.port, paths, args.rounds)
            s = single[name]
            print(
                f"  {name:16s} p50 {s['p50_ms']:6.2f} ms  p95 {s['p95_ms']:6.2f} ms  p99 {s['p99_ms']:6.2f} ms  "
                f"(~{s['mean_results']} results)",
                flush=True,
            )
        mix = [p for paths in queries.values() for p in paths]
        concurrent = throughput(server.port, mix, args.clients, args.seconds, server)
        lat = concurrent["latency"]
        print(
            f"  mix, {args.clients} clients: {concurrent['searches_per_s']:,} searches/s "  # type: ignore[index]
            f"(p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms), "  # type: ignore[index]
            f"errors {concurrent['errors']}, peak server RSS {concurrent['peak_rss_mb']} MB",
            flush=True,
        )
    finally:
        server.stop()
    out = {
        "benchmark": "fhir_search",
        "database": kind,
        "machine": machine(),
        "store_resources": store_size,
        "workers": args.workers,
        "threads": args.threads,
        "single_client": single,
        "concurrent": concurrent,
    }
    print(f"written to {write_result(f'fhir_search-{kind}', out).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
