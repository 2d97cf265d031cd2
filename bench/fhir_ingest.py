#!/usr/bin/env python3
"""Ingest benchmark: transaction Bundles of realistic patient records posted to a real rhip server.

Each Bundle is one resident's record from the sample region (Patient, Encounters, Conditions, vital
signs and labs, MedicationRequests, Immunizations; ~55 resources, urn:uuid references). Several
clients post Bundles concurrently until the store holds ``--resources`` resources. It prints throughput
(overall and per interval), Bundle latency p50/p95/p99 and the server's peak RSS, and the "floor":
the same JSON inserted into a bare one-table database with SQLAlchemy Core (one transaction per
Bundle, same journal settings), measured right before and right after the ingest, and the ratio of
the ingest rate to their mean. Results go to bench/results/.

    python bench/fhir_ingest.py                       # SQLite, 1,000,000 resources
    python bench/fhir_ingest.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
    python bench/fhir_ingest.py --resources 100000    # a quicker run
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import threading
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, machine, percentiles, reset_database, write_result

from rhip.synth.sample import SampleRegion, as_transaction

SEED = 11
RECONNECT_EVERY = 10
APPEND_FIRST_RESIDENT = 1_000_000  # far beyond the residents of any first run


def bundle_file(resources: int, first: int = 0) -> Path:
    """Pre-generated Bundles (one per line), so generating them is not part of the measurement."""
    path = ROOT / "var" / "bench" / f"ingest-{SEED}-{resources}{f'-from-{first}' if first else ''}.ndjson"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    region = SampleRegion(SEED)
    written = 0
    tmp = path.with_suffix(".tmp")
    print(f"generating Bundles for {resources:,} resources into {path.relative_to(ROOT)} …", flush=True)
    with tmp.open("wb") as fh:
        i = first
        while written < resources:
            record = region.patient_record(i)
            fh.write(orjson.dumps(as_transaction(record)) + b"\n")
            written += len(record)
            i += 1
    tmp.rename(path)
    return path


def load_reference_data(port: int) -> int:
    """PUT the region's organizations and practitioners (the Bundles reference them)."""
    region = SampleRegion(SEED)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    n = 0
    for r in region.organizations() + region.practitioners():
        conn.request(
            "PUT",
            f"/fhir/{r['resourceType']}/{r['id']}",
            orjson.dumps(r),
            {"Content-Type": "application/fhir+json"},
        )
        resp = conn.getresponse()
        resp.read()
        assert resp.status in (200, 201), resp.status
        n += 1
    return n


def run_clients(
    port: int, path: Path, clients: int, server: Server, report_every: float
) -> dict[str, object]:
    """Post every Bundle of ``path`` with ``clients`` concurrent connections."""
    lock = threading.Lock()
    fh = path.open("rb")
    latencies: list[float] = []
    done = {"resources": 0, "bundles": 0, "errors": 0}
    stop = threading.Event()

    finished: list[float] = []

    def worker() -> None:
        try:
            post_all()
        finally:
            with lock:
                finished[:] = [time.perf_counter()]

    def post_all() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
        sent = 0
        while not stop.is_set():
            with lock:
                line = fh.readline()
            if not line:
                return
            sent += 1
            if sent % RECONNECT_EVERY == 0:
                # Many senders come and go in a region; reconnecting spreads the load over the server's
                # workers as they would, where eight pinned keep-alive connections could land on one.
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            started = time.perf_counter()
            conn.request("POST", "/fhir", line, headers)
            resp = conn.getresponse()
            body = resp.read()
            elapsed = time.perf_counter() - started
            with lock:
                if resp.status == 200:
                    latencies.append(elapsed)
                    done["bundles"] += 1
                    done["resources"] += line.count(b'"request":')
                else:
                    done["errors"] += 1
                    if done["errors"] <= 3:
                        print(f"  error {resp.status}: {body[:300]!r}", flush=True)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    intervals = []
    peak_rss = server.rss_mb()
    last_t, last_n = started, 0
    next_report = started + report_every
    while any(t.is_alive() for t in threads):
        time.sleep(0.05)
        now = time.perf_counter()
        if now < next_report:
            continue
        next_report = now + report_every
        with lock:
            n = done["resources"]
        rss = server.rss_mb()
        peak_rss = max(peak_rss, rss)
        rate = (n - last_n) / (now - last_t)
        intervals.append({"at_resources": n, "resources_per_s": round(rate), "rss_mb": round(rss)})
        print(
            f"  {n:>9,} resources  {rate:>7,.0f}/s now  {n / (now - started):>7,.0f}/s overall  server RSS {rss:,.0f} MB",
            flush=True,
        )
        last_t, last_n = now, n
    elapsed = (finished[0] if finished else time.perf_counter()) - started
    fh.close()
    return {
        "resources": done["resources"],
        "bundles": done["bundles"],
        "errors": done["errors"],
        "seconds": round(elapsed, 1),
        "resources_per_s": round(done["resources"] / elapsed),
        "bundle_latency": percentiles(latencies),
        "peak_rss_mb": round(peak_rss),
        "intervals": intervals,
    }


def floor(url: str, path: Path, limit: int) -> dict[str, float]:
    """Rows/s of a plain insert of the same resource JSON into a bare one-table database, a transaction per Bundle.

    Two ways: one INSERT statement per resource (the plain insert), and one executemany per Bundle.
    """
    import sqlalchemy as sa

    if url.startswith("sqlite"):
        bare_url = f"sqlite:///{ROOT / 'var' / 'bench' / 'bare.db'}"
        reset = bare_url.split("///", 1)[1]
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(reset + suffix):
                os.remove(reset + suffix)
    else:
        bare_url = url
    engine = sa.create_engine(bare_url)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi: object, _rec: object) -> None:
            cur = dbapi.cursor()  # type: ignore[attr-defined]
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

    meta = sa.MetaData()
    bare = sa.Table(
        "bare_insert",
        meta,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("res_type", sa.String(64)),
        sa.Column("content", sa.LargeBinary),
    )
    results: dict[str, float] = {}
    for style in ("per_row", "executemany"):
        meta.drop_all(engine)
        meta.create_all(engine)
        rows_done = 0
        started = time.perf_counter()
        with path.open("rb") as fh:
            for line in fh:
                bundle = orjson.loads(line)
                rows = [
                    {"res_type": e["resource"]["resourceType"], "content": orjson.dumps(e["resource"])}
                    for e in bundle["entry"]
                ]
                with engine.begin() as conn:
                    if style == "per_row":
                        for row in rows:
                            conn.execute(bare.insert().values(**row))
                    else:
                        conn.execute(bare.insert(), rows)
                rows_done += len(rows)
                if rows_done >= limit:
                    break
        results[f"{style}_rows_per_s"] = round(rows_done / (time.perf_counter() - started))
        results["rows"] = rows_done
    meta.drop_all(engine)
    engine.dispose()
    return results


def main() -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=f"sqlite:///{ROOT / 'var' / 'bench' / 'ingest.db'}")
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--threads", type=int, default=4, help="requests served at once per worker")
    parser.add_argument("--floor-rows", type=int, default=50_000)
    parser.add_argument("--report-every", type=float, default=10.0)
    parser.add_argument(
        "--append", action="store_true", help="add to the existing store instead of starting empty"
    )
    args = parser.parse_args()
    kind = "postgresql" if args.db.startswith("postgresql") else "sqlite"
    # --append adds residents the first run did not have to an existing store: the rate at its size.
    path = bundle_file(args.resources, first=APPEND_FIRST_RESIDENT if args.append else 0)
    if not args.append:
        reset_database(args.db)
    # This machine's speed drifts (shared hosts): the floor is measured right before and right after the
    # ingest, and the ratio uses their mean.
    print("measuring the floor before the ingest …", flush=True)
    before = floor(args.db, path, args.floor_rows)
    server = Server(args.db, args.workers, {"RHIP_SERVER__THREADS": str(args.threads)})
    try:
        reference = load_reference_data(server.port)
        print(
            f"ingesting into {kind} with {args.clients} clients, {args.workers} workers × {args.threads} threads",
            flush=True,
        )
        result = run_clients(server.port, path, args.clients, server, args.report_every)
    finally:
        server.stop()
    print("measuring the floor after the ingest …", flush=True)
    after = floor(args.db, path, args.floor_rows)
    base = {
        key: round((before[key] + after[key]) / 2) for key in ("per_row_rows_per_s", "executemany_rows_per_s")
    }
    rate = float(result["resources_per_s"])  # type: ignore[arg-type]
    ratios = {
        "per_row": round(rate / base["per_row_rows_per_s"], 3),
        "executemany": round(rate / base["executemany_rows_per_s"], 3),
    }
    out = {
        "benchmark": "fhir_ingest",
        "database": kind,
        "machine": machine(),
        "clients": args.clients,
        "workers": args.workers,
        "threads": args.threads,
        "reference_resources": reference,
        **result,
        "floor": {**base, "rows": before["rows"], "before": before, "after": after},
        "ratio_to_floor": ratios,
    }
    lat = result["bundle_latency"]
    print(
        f"\n{kind}: {result['resources']:,} resources in {result['seconds']} s = {result['resources_per_s']:,} resources/s "
        f"(Bundle p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms), "  # type: ignore[index]
        f"peak server RSS {result['peak_rss_mb']} MB, errors {result['errors']}"
    )
    print(
        f"floor, plain insert (one INSERT per resource): {base['per_row_rows_per_s']:,} rows/s "
        f"(before {before['per_row_rows_per_s']:,}, after {after['per_row_rows_per_s']:,}) -> ratio {ratios['per_row']:.2f}; "
        f"executemany per Bundle: {base['executemany_rows_per_s']:,} rows/s -> ratio {ratios['executemany']:.2f}"
    )
    print(f"written to {write_result(f'fhir_ingest-{kind}', out).relative_to(ROOT)}")
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
