#!/usr/bin/env python3
"""What the security layer costs: search throughput with and without it, in one run, on the same data.

A synthetic region (2,000 residents by default, one year of care: about 60,000 resources) is loaded into
SQLite once. A clinician account is made at the busiest hospital and given a token. Then the same search
mix runs against ``rhip serve`` twice per round, alternately with the security layer off and on:

    Observation?patient=<id>&_count=20                  a resident's results (调阅: care relationship)
    Condition?patient=<id>                              their problems (consent labels checked in SQL)
    Patient?identifier=<ID number>                      the patient directory
    Encounter?patient=<id>&_include=Encounter:service-provider
    Observation?code=http://loinc.org|8480-6&_count=20  a population search (care relationships in SQL)

With the layer on every request carries the bearer token (verified, cached), passes the policy, is
narrowed in SQL and is audited (the hash-chained log; reads batched). The script prints throughput and
p50/p95/p99 for each side, the ratio, and writes bench/results/authz.json. The issue's bound: the layer
costs at most 15% of search throughput.

    python bench/authz.py [--people 2000] [--clients 4] [--seconds 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, cli, load_region, machine, percentiles, write_result

ID_CARD = "urn:oid:2.16.156.10011.1.3"
WORK = ROOT / "var" / "bench" / "authz"


def prepare(people: int, env: dict[str, str], url: str) -> None:
    """Generate and load the region once (kept under var/bench/authz)."""
    load_region(WORK, str(people), env, url, people=people, start="2025-01-01", formats="fhir")


def busiest_hospital(url: str) -> tuple[str, str, list[str]]:
    """The Organization with the most encounters, its institution code, and some of its patients."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT v.content FROM resource r JOIN resource_version v ON v.vid = r.vid "
            "WHERE r.res_type = 'Encounter' AND r.deleted = false"
        ).all()
        counts: dict[str, list[str]] = {}
        for (content,) in rows:
            enc = orjson.loads(bytes(content))
            org = str((enc.get("serviceProvider") or {}).get("reference", "")).removeprefix("Organization/")
            subject = str((enc.get("subject") or {}).get("reference", "")).removeprefix("Patient/")
            if org and subject:
                counts.setdefault(org, []).append(subject)
        org = max(counts, key=lambda o: len(counts[o]))
        organization = orjson.loads(
            bytes(
                conn.exec_driver_sql(
                    "SELECT v.content FROM resource r JOIN resource_version v ON v.vid = r.vid "
                    f"WHERE r.res_type = 'Organization' AND r.res_id = '{org}'"
                ).scalar_one()
            )
        )
    engine.dispose()
    code = next(i["value"] for i in organization["identifier"] if i["system"] == "urn:oid:2.16.156.10011.1.5")
    return org, code, sorted(set(counts[org]))


def id_numbers(url: str, patients: list[str]) -> dict[str, str]:
    """The ID-card number of each patient (for the directory search)."""
    engine = sa.create_engine(url)
    out = {}
    with engine.connect() as conn:
        for pid in patients:
            content = conn.exec_driver_sql(
                "SELECT v.content FROM resource r JOIN resource_version v ON v.vid = r.vid "
                "WHERE r.res_type = 'Patient' AND r.res_id = :i",
                {"i": pid},
            ).scalar()
            if content is None:
                continue
            for ident in orjson.loads(bytes(content)).get("identifier", []):
                if ident.get("system") == ID_CARD:
                    out[pid] = ident["value"]
    engine.dispose()
    return out


def mix(patients: list[str], cards: dict[str, str], seed: int, n: int) -> list[str]:
    """``n`` request paths of the search mix."""
    rng = random.Random(seed)
    paths = []
    for _ in range(n):
        p = rng.choice(patients)
        kind = rng.randrange(5)
        if kind == 0:
            paths.append("/fhir/Observation?" + urlencode({"patient": p, "_count": "20"}))
        elif kind == 1:
            paths.append("/fhir/Condition?" + urlencode({"patient": p}))
        elif kind == 2 and p in cards:
            paths.append("/fhir/Patient?" + urlencode({"identifier": f"{ID_CARD}|{cards[p]}"}))
        elif kind == 3:
            paths.append(
                "/fhir/Encounter?" + urlencode({"patient": p, "_include": "Encounter:service-provider"})
            )
        else:
            paths.append(
                "/fhir/Observation?" + urlencode({"code": "http://loinc.org|8480-6", "_count": "20"})
            )
    return paths


def run(port: int, paths: list[str], token: str | None, clients: int, seconds: float) -> dict[str, object]:
    """Throughput and latency of ``clients`` threads sending ``paths`` for ``seconds``."""
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
    return {
        "requests": len(samples),
        "per_second": round(len(samples) / elapsed, 1),
        "errors": len(errors),
        "error_statuses": sorted(set(errors))[:5],
        "latency": percentiles(samples),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{WORK}/authz.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHIP_")}
    env.update(RHIP_DATABASE_URL=url, RHIP_SECURITY__KEYS_DIR=str(WORK / "keys"), RHIP_LOG_LEVEL="WARNING")
    prepare(args.people, env, url)
    org, code, patients = busiest_hospital(url)
    cards = id_numbers(url, patients[:400])
    username = "bench-doctor"
    listed = cli(env, "users", "list", "--json")
    if username not in {orjson.loads(line)["username"] for line in listed.splitlines() if line.strip()}:
        cli(
            env,
            "users",
            "add",
            "--username",
            username,
            "--role",
            "clinician",
            "--institution",
            code,
            "--organization",
            org,
            "--password-stdin",
            stdin="bench-password-1\n",
        )
    paths = mix(patients[:400], cards, seed=7, n=5000)
    print(
        f"{len(patients):,} residents with encounters at {code}; {args.clients} clients, {args.seconds:.0f} s a side"
    )
    common = {
        "RHIP_SECURITY__RATE_PER_SECOND": "1000000",
        "RHIP_SECURITY__RATE_BURST": "1000000",
        "RHIP_SECURITY__KEYS_DIR": str(WORK / "keys"),
        # The synthetic visits start on 2025-01-01: a care window reaching them keeps every search allowed.
        "RHIP_SECURITY__CARE_WINDOW_DAYS": "3650",
    }
    results: dict[str, list[dict[str, object]]] = {"off": [], "on": []}
    for _round in range(args.rounds):
        for side in ("off", "on"):
            extra = {**common, "RHIP_SECURITY__ENABLED": "true" if side == "on" else "false"}
            server = Server(url, extra_env=extra)
            try:
                token = None
                if side == "on":
                    token = (
                        cli(
                            {**env, **extra, "RHIP_SERVER__PORT": str(server.port)},
                            "tokens",
                            "issue",
                            "--username",
                            username,
                            "--minutes",
                            "120",
                        )
                        .strip()
                        .splitlines()[-1]
                    )
                run(server.port, paths[:200], token, args.clients, 2)  # warm caches
                result = run(server.port, paths, token, args.clients, args.seconds)
                result["rss_mb"] = round(server.rss_mb(), 1)
            finally:
                server.stop()
            results[side].append(result)
            lat = result["latency"]
            assert isinstance(lat, dict)
            print(
                f"security {side:>3}: {result['per_second']:>7} searches/s  p50 {lat['p50_ms']} ms  "
                f"p95 {lat['p95_ms']} ms  p99 {lat['p99_ms']} ms  errors {result['errors']}  rss {result['rss_mb']} MB"
            )
    best = {side: max(float(r["per_second"]) for r in rs) for side, rs in results.items()}  # type: ignore[arg-type]
    ratio = best["on"] / best["off"]
    print(f"with / without the security layer: {ratio:.3f}  (cost {100 * (1 - ratio):.1f}%; bound 15%)")
    path = write_result(
        "authz",
        {
            "people": args.people,
            "clients": args.clients,
            "seconds": args.seconds,
            "machine": machine(),
            "runs": results,
            "ratio": round(ratio, 4),
        },
    )
    print(f"wrote {path.relative_to(ROOT)}")
    return 0 if ratio >= 0.85 else 1


if __name__ == "__main__":
    sys.exit(main())
