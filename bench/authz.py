#!/usr/bin/env python3
"""What the security layer costs: search throughput with and without it, in one run, on the same data.

A synthetic region (2,000 residents by default, one year of care: about 60,000 resources) is loaded into
SQLite once. A clinician account is made at the busiest hospital and given a token. Then the same search
mix runs against ``rhip serve`` twice per round, alternately with the security layer off and on:

    Observation?patient=<id>&_count=20                  a resident's results (调阅: care relationship)
    Condition?patient=<id>                              their problems (consent labels checked in SQL)
    Patient?identifier=<ID number>                      the patient directory
    Encounter?patient=<id>&_include=Encounter:service-provider
    Observation?code=http://loinc.org|85354-9&_count=20 a population search (care relationships in SQL)

With the layer on every request carries the bearer token (verified, cached), passes the policy, is
narrowed in SQL and is audited (the hash-chained log; reads batched and, as under any `rhip serve`, built
and chained by the audit appender process). Both servers run at once and take turns: ``--rounds`` times
one slice of ``--seconds`` each, in alternating order, so that both sides see the same machine (on a shared
2-core machine throughput drifts by a fifth from minute to minute; two runs one after the other compare the
drift, not the layer). The script prints, for each side, searches/s over all its slices, p50/p95/p99, the
CPU time a search costs the server and its child processes (the audit appender included), memory, the
ratio of the two throughputs and the spread of the per-round ratios, and writes bench/results/authz.json.
The issue's bound: the layer costs at most 15% of search throughput.

    python bench/authz.py [--people 2000] [--clients 4] [--seconds 3] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, cli, http_load, load_region, machine, percentiles, write_result

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
            # Blood-pressure panels of the whole region (the systolic value is a component: 8480-6 is
            # indexed as component-code, so a search by code finds the panel).
            paths.append(
                "/fhir/Observation?" + urlencode({"code": "http://loinc.org|85354-9", "_count": "20"})
            )
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=3, help="one slice of one side")
    parser.add_argument("--rounds", type=int, default=20, help="slices of each side")
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
        f"{len(patients):,} residents with encounters at {code}; {args.clients} clients; "
        f"{args.rounds} rounds of {args.seconds:g} s a side, sides alternating"
    )
    common = {
        "RHIP_SECURITY__RATE_PER_SECOND": "1000000",
        "RHIP_SECURITY__RATE_BURST": "1000000",
        "RHIP_SECURITY__KEYS_DIR": str(WORK / "keys"),
        # The synthetic visits start on 2025-01-01: a care window reaching them keeps every search allowed.
        "RHIP_SECURITY__CARE_WINDOW_DAYS": "3650",
    }
    servers: dict[str, Server] = {}
    tokens: dict[str, str | None] = {"off": None}
    totals = {side: {"requests": 0, "seconds": 0.0, "cpu": 0.0, "errors": []} for side in ("off", "on")}
    samples: dict[str, list[float]] = {"off": [], "on": []}
    rounds: list[dict[str, float]] = []
    try:
        for side in ("off", "on"):
            extra = {**common, "RHIP_SECURITY__ENABLED": "true" if side == "on" else "false"}
            servers[side] = Server(url, extra_env=extra)
            if side == "on":
                issued = cli(
                    {**env, **extra, "RHIP_SERVER__PORT": str(servers[side].port)},
                    "tokens",
                    "issue",
                    "--username",
                    username,
                    "--minutes",
                    "120",
                )
                tokens[side] = issued.strip().splitlines()[-1]
            http_load(servers[side].port, paths[:300], tokens[side], args.clients, 2)  # warm caches
        for k in range(args.rounds):
            per_second: dict[str, float] = {}
            for side in ("off", "on") if k % 2 == 0 else ("on", "off"):
                server = servers[side]
                cpu_before = server.cpu_seconds()
                result = http_load(server.port, paths, tokens[side], args.clients, args.seconds)
                total = totals[side]
                total["cpu"] += server.cpu_seconds() - cpu_before
                total["requests"] += result["requests"]
                total["seconds"] += result["seconds"]
                total["errors"] += result["errors"]
                samples[side] += result["samples"]
                per_second[side] = result["requests"] / result["seconds"]
            rounds.append({side: round(v, 1) for side, v in per_second.items()})
        rss = {side: round(server.rss_mb(), 1) for side, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
    results: dict[str, dict[str, Any]] = {}
    for side in ("off", "on"):
        total = totals[side]
        results[side] = {
            "requests": total["requests"],
            "per_second": round(total["requests"] / total["seconds"], 1),
            "cpu_ms_per_search": round(1000 * total["cpu"] / max(1, total["requests"]), 3),
            "errors": len(total["errors"]),
            "error_statuses": sorted(set(total["errors"]))[:5],
            "latency": percentiles(samples[side]),
            "rss_mb": rss[side],
        }
        r, lat = results[side], results[side]["latency"]
        print(
            f"security {side:>3}: {r['per_second']:>7} searches/s  p50 {lat['p50_ms']} ms  p95 {lat['p95_ms']} ms  "
            f"p99 {lat['p99_ms']} ms  cpu {r['cpu_ms_per_search']} ms/search  errors {r['errors']}  rss {r['rss_mb']} MB"
        )
    ratio = results["on"]["per_second"] / results["off"]["per_second"]
    each = sorted(r["on"] / r["off"] for r in rounds)
    print(
        f"with / without the security layer: {ratio:.3f}  (cost {100 * (1 - ratio):.1f}%; bound 15%)  "
        f"rounds: min {each[0]:.3f} median {statistics.median(each):.3f} max {each[-1]:.3f}"
    )
    path = write_result(
        "authz",
        {
            "people": args.people,
            "clients": args.clients,
            "seconds": args.seconds,
            "rounds": rounds,
            "machine": machine(),
            "results": results,
            "ratio": round(ratio, 4),
        },
    )
    print(f"wrote {path.relative_to(ROOT)}")
    errors = results["off"]["errors"] + results["on"]["errors"]
    return 0 if ratio >= 0.85 and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
