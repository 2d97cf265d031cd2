#!/usr/bin/env python3
"""Terminology: how long a code check takes, and how many $expand pages a second the FHIR API answers.

1. Code checks in process, as validation on write makes them: ``--checks`` calls of
   ``TerminologyService.validate_code`` over every shipped code table and FHIR R4's required value sets
   (nine in ten codes valid, one in ten not), each timed; p50/p95/p99 and checks per second. The issue's
   bound: p95 ≤ 1 ms per code check.
2. Coding checks as the store's validator makes them on every write (``coding_problem``: is the code one of
   a complete code table's), and the standard codes added on the way in (``add_standard_codes``) to a
   Condition whose local diagnosis code is in a local dictionary of ``--map-size`` codes: each timed.
3. ``ValueSet/$expand``, ``CodeSystem/$lookup`` and ``ConceptMap/$translate`` (that dictionary, registered by
   ``rhip terminology map``) over HTTP against ``rhip serve`` (SQLite, security on, a clinician's token),
   ``--clients`` threads for ``--seconds``: requests per second and p50/p95/p99.

Writes bench/results/terminology.json.

    python bench/terminology.py [--checks 200000] [--map-size 5000] [--clients 4] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, cli, http_load, machine, percentiles, write_result

from rhip.fhir.valuesets import required_valuesets
from rhip.terminology.codesystems import builtin_code_systems
from rhip.terminology.conceptmaps import ConceptMap, Target
from rhip.terminology.mapping import ConceptMaps
from rhip.terminology.service import TerminologyService

WORK = ROOT / "var" / "bench" / "terminology"


def code_checks(n: int) -> dict[str, Any]:
    """Time ``n`` validate_code calls over every held value set."""
    tracemalloc.start()
    service = TerminologyService(builtin_code_systems(), required_valuesets())
    _, built_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rng = random.Random(3)
    cases: list[tuple[str, str | None, str]] = []
    for cs in builtin_code_systems():
        assert cs.valueset is not None
        for c in cs.concepts:
            cases.append((cs.valueset, cs.url, c.code))
    required = required_valuesets()
    for url in ("http://hl7.org/fhir/ValueSet/administrative-gender", "http://hl7.org/fhir/ValueSet/observation-status",
                "http://hl7.org/fhir/ValueSet/encounter-status", "http://hl7.org/fhir/ValueSet/request-status"):  # fmt: skip
        expansion = required.expansion(url)
        assert expansion is not None
        cases += [(url, system, code) for system, code in sorted(expansion.pairs)]
    checks = []
    for _ in range(n):
        vs, system, code = rng.choice(cases)
        checks.append((vs, system, code if rng.random() < 0.9 else code + "x"))
    samples = []
    valid = 0
    for vs, system, code in checks:
        started = time.perf_counter()
        result = service.validate_code(code, valueset=vs, system=system)
        samples.append(time.perf_counter() - started)
        valid += result.result
    total = sum(samples)
    return {
        "checks": n,
        "valid": valid,
        "per_second": round(n / total),
        "latency_us": micro_percentiles(samples),
        "service_build_peak_kb": round(built_peak / 1024),
    }


LOCAL_DIAGNOSES = "urn:rhip:cs:local:510722H01:diagnosis"
ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"  # ICD-10 (国家临床版) as the platform writes it


def local_dictionary(size: int) -> ConceptMap:
    """A hospital's diagnosis dictionary of ``size`` local codes, each mapped to a shipped ICD-10 code."""
    icd = next(cs for cs in builtin_code_systems() if cs.url == ICD10)
    codes = [c for c in icd.concepts if "." in c.code or len(c.code) == 3]
    elements = {
        (LOCAL_DIAGNOSES, f"ZD{n:05d}"): (
            Target(ICD10, codes[n % len(codes)].code, codes[n % len(codes)].display),
        )
        for n in range(size)
    }
    return ConceptMap("urn:rhip:cm:510722H01:diagnosis", "510722H01 诊断字典", "2026-11", elements=elements)


def coding_checks(n: int, map_size: int) -> dict[str, Any]:
    """Time the validator's Coding check and the mapping step on the way in."""
    service = TerminologyService(builtin_code_systems(), required_valuesets())
    rng = random.Random(7)
    complete = [cs for cs in builtin_code_systems() if cs.content == "complete"]
    pairs = [(cs.url, c.code) for cs in complete for c in cs.concepts]
    checks = [(s, c if rng.random() < 0.9 else c + "x") for s, c in (rng.choice(pairs) for _ in range(n))]
    samples, refused = [], 0
    for system, code in checks:
        started = time.perf_counter()
        problem = service.coding_problem(system, code)
        samples.append(time.perf_counter() - started)
        refused += problem is not None
    maps = ConceptMaps()
    maps.replace([local_dictionary(map_size)])
    conditions = [
        {
            "resourceType": "Condition",
            "subject": {"reference": "Patient/p1"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "code": {"coding": [{"system": LOCAL_DIAGNOSES, "code": f"ZD{rng.randrange(map_size):05d}"}],
                     "text": "诊断"},
            "recordedDate": "2026-11-20",
        }
        for _ in range(min(n, 50_000))
    ]  # fmt: skip
    mapped = []
    for resource in conditions:
        started = time.perf_counter()
        maps.add_standard_codes(resource)
        mapped.append(time.perf_counter() - started)
    return {
        "coding_checks": n,
        "refused": refused,
        "coding_per_second": round(n / sum(samples)),
        "coding_latency_us": micro_percentiles(samples),
        "map_size": map_size,
        "mapped_resources": len(conditions),
        "mapping_per_second": round(len(conditions) / sum(mapped)),
        "mapping_latency_us": micro_percentiles(mapped),
    }


def micro_percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/max of durations in seconds, as microseconds."""
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6, 2)

    return {"p50_us": at(0.50), "p95_us": at(0.95), "p99_us": at(0.99), "max_us": round(ordered[-1] * 1e6, 1)}


def http_summary(result: dict[str, Any]) -> dict[str, Any]:
    """Requests per second, error count and latency of an http_load result."""
    return {
        "requests": result["requests"],
        "per_second": round(result["requests"] / result["seconds"], 1),
        "errors": len(result["errors"]),
        "latency": percentiles(result["samples"]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=200_000)
    parser.add_argument("--map-size", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    checks = code_checks(args.checks)
    lat = checks["latency_us"]
    print(
        f"code checks: {checks['checks']:,} ({checks['valid']:,} valid)  {checks['per_second']:,}/s  "
        f"p50 {lat['p50_us']} µs  p95 {lat['p95_us']} µs  p99 {lat['p99_us']} µs  max {lat['max_us']} µs  "
        f"(bound: p95 ≤ 1000 µs)"
    )
    on_write = coding_checks(args.checks, args.map_size)
    cl, ml = on_write["coding_latency_us"], on_write["mapping_latency_us"]
    print(
        f"coding checks on write: {on_write['coding_checks']:,} ({on_write['refused']:,} refused)  "
        f"{on_write['coding_per_second']:,}/s  p50 {cl['p50_us']} µs  p95 {cl['p95_us']} µs  p99 {cl['p99_us']} µs"
    )
    print(
        f"standard codes added on the way in ({on_write['map_size']:,}-code dictionary): "
        f"{on_write['mapped_resources']:,} Conditions  {on_write['mapping_per_second']:,}/s  p50 {ml['p50_us']} µs  "
        f"p95 {ml['p95_us']} µs  p99 {ml['p99_us']} µs"
    )
    WORK.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{WORK}/terminology.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHIP_")}
    env.update(RHIP_DATABASE_URL=url, RHIP_SECURITY__KEYS_DIR=str(WORK / "keys"), RHIP_LOG_LEVEL="WARNING")
    cli(env, "db", "upgrade")
    dictionary = WORK / "local-diagnoses.json"
    dictionary.write_bytes(orjson.dumps(local_dictionary(args.map_size).to_fhir()))
    cli(env, "terminology", "map", str(dictionary))
    username = "bench-terminology"
    listed = cli(env, "users", "list", "--json")
    if username not in {orjson.loads(line)["username"] for line in listed.splitlines() if line.strip()}:
        cli(env, "users", "add", "--username", username, "--role", "clinician", "--institution", "510722H01",
            "--password-stdin", stdin="bench-password-1\n")  # fmt: skip
    extra = {"RHIP_SECURITY__KEYS_DIR": str(WORK / "keys"), "RHIP_SECURITY__RATE_PER_SECOND": "1000000",
             "RHIP_SECURITY__RATE_BURST": "1000000"}  # fmt: skip
    server = Server(url, extra_env=extra)
    try:
        token = cli({**env, **extra, "RHIP_SERVER__PORT": str(server.port)}, "tokens", "issue", "--username",
                    username, "--minutes", "60").strip().splitlines()[-1]  # fmt: skip
        rng = random.Random(5)
        words = ["族", "维", "哈", "苗", "han", "k", ""]
        expands = []
        for _ in range(500):
            query = {"url": "urn:rhip:vs:gb-3304", "filter": rng.choice(words), "offset": rng.randrange(20)}
            expands.append("/fhir/ValueSet/$expand?" + urlencode({**query, "count": 20}))
        lookups = [
            "/fhir/CodeSystem/$lookup?" + urlencode({"system": cs.url, "code": rng.choice(cs.concepts).code})
            for cs in builtin_code_systems()
            for _ in range(50)
        ]
        translates = [
            "/fhir/ConceptMap/$translate?"
            + urlencode({"system": LOCAL_DIAGNOSES, "code": f"ZD{rng.randrange(args.map_size):05d}"})
            for _ in range(500)
        ]
        http_load(server.port, expands[:50] + lookups[:50] + translates[:50], token, args.clients, 2)  # warm
        results = {}
        for name, paths in (("expand", expands), ("lookup", lookups), ("translate", translates)):
            result = http_summary(http_load(server.port, paths, token, args.clients, args.seconds))
            results[name] = result
            hl = result["latency"]
            print(
                f"${name:<10} over HTTP: {result['per_second']:>7}/s  p50 {hl['p50_ms']} ms  p95 {hl['p95_ms']} ms  "
                f"p99 {hl['p99_ms']} ms  errors {result['errors']}"
            )
        rss = round(server.rss_mb(), 1)
    finally:
        server.stop()
    print(f"server memory {rss} MB (its audit appender included)")
    path = write_result(
        "terminology",
        {
            "machine": machine(),
            "code_checks": checks,
            "on_write": on_write,
            "http": results,
            "clients": args.clients,
            "rss_mb": rss,
        },
    )
    print(f"wrote {path.relative_to(ROOT)}")
    errors = sum(r["errors"] for r in results.values())
    return 0 if lat["p95_us"] <= 1000 and cl["p95_us"] <= 1000 and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
