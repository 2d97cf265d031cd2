#!/usr/bin/env python3
"""Data quality: how fast the scorer follows the store, per resource and in all.

A one-year synthetic region of ``--people`` residents (FHIR files, as `make demo` loads them) is loaded into
SQLite once. Then, in process:

1. Per resource: for each stored version the outbox announces (of a type with rules), read it from the store
   (``vread``), find its Patient and institution, and score it against every rule; each timed. p50/p95/p99.
   The rule interpretation alone (the resource already in memory) is timed too.
2. In all: the quality tables emptied and the consumer's position reset, ``catch_up`` scores the whole outbox
   as ``rhip quality score`` does (reads, scoring, counting in the quality tables, the position): resources
   per second.
3. The region's report for the month the region was loaded in, as JSON figures and as a spreadsheet.

Writes bench/results/quality.json.

    python bench/quality.py [--people 2000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, load_region, machine, percentiles, write_result
from sqlalchemy import delete

from rhip.bootstrap.container import build_platform
from rhip.bootstrap.quality import build_quality
from rhip.bootstrap.settings import Settings
from rhip.db import outbox
from rhip.quality.report import month_period
from rhip.quality.service import CONSUMER
from rhip.quality.tables import quality_arrivals, quality_daily, quality_example, quality_scored
from rhip.quality.xlsx import write_report

WORK = ROOT / "var" / "bench" / "quality"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=2000)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{WORK}/quality-{args.people}.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHIP_")}
    env.update(RHIP_DATABASE_URL=url, RHIP_SECURITY__KEYS_DIR=str(WORK / "keys"), RHIP_LOG_LEVEL="WARNING")
    load_region(WORK, str(args.people), env, url, people=args.people, start="2025-11-01", formats="fhir")
    settings = Settings(database_url=url, log_level="WARNING", security={"keys_dir": str(WORK / "keys")})  # type: ignore[call-arg]
    platform = build_platform(settings, empi=False, exchange=False)
    try:
        result = measure(platform)
    finally:
        platform.close()
    result |= {"people": args.people, "machine": machine()}
    per, rules = result["per_resource"], result["rules_only"]
    print(
        f"region: {args.people:,} residents, {result['events']:,} outbox events, {result['scored']:,} resource "
        f"versions scored ({', '.join(f'{t} {n:,}' for t, n in result['types'].most_common(6))})"
    )
    print(
        f"per resource (read + patient + institution + rules): p50 {per['p50_ms']} ms  p95 {per['p95_ms']} ms  "
        f"p99 {per['p99_ms']} ms  max {per['max_ms']} ms"
    )
    print(f"rules only: p50 {rules['p50_ms']} ms  p95 {rules['p95_ms']} ms  p99 {rules['p99_ms']} ms")
    print(
        f"catch-up of the whole outbox: {result['catch_up_s']:.1f} s, {result['resources_per_s']:,} resources/s "
        f"({result['events_per_s']:,} events/s)"
    )
    print(
        f"report of {result['month']}: figures {result['report_s']:.2f} s, spreadsheet {result['xlsx_s']:.2f} s"
    )
    result["types"] = dict(result["types"])
    print(f"wrote {write_result('quality', result)}")
    return 0


def measure(platform: Any) -> dict[str, Any]:
    """The figures of one loaded region."""
    service = build_quality(platform)
    with platform.db.read() as conn:
        events = []
        after = outbox.START
        while batch := outbox.read_after(conn, after, 10_000):
            events += batch
            after = batch[-1].position
    scored_events = [
        e for e in events if e.event != "ResourceDeleted" and e.res_type in service.scorer.by_type
    ]
    per_resource: list[float] = []
    rules_only: list[float] = []
    types: Counter[str] = Counter()
    patients: dict[str, Any] = {}
    for e in scored_events:
        started = time.perf_counter()
        stored = platform.store.vread(e.res_type, e.res_id, e.version)
        resource = stored.resource()
        service.score_resource(resource, stored.last_updated, stored.version, patients)
        per_resource.append(time.perf_counter() - started)
        types[e.res_type] += 1
        if len(patients) > 10_000:
            patients.clear()
        started = time.perf_counter()
        service.scorer.score(resource, 0, version=stored.version, institution="", patient=None)
        rules_only.append(time.perf_counter() - started)
    with platform.db.write() as conn:
        for table in (quality_scored, quality_daily, quality_arrivals, quality_example):
            conn.execute(delete(table))
        outbox.advance(conn, CONSUMER, outbox.START)
    started = time.perf_counter()
    done = service.catch_up()
    elapsed = time.perf_counter() - started
    month = datetime.now(ZoneInfo(platform.settings.timezone)).strftime("%Y-%m")
    started = time.perf_counter()
    report = service.report(month_period(month, None))
    report_s = time.perf_counter() - started
    started = time.perf_counter()
    write_report(report, WORK / "region.xlsx")
    xlsx_s = time.perf_counter() - started
    return {
        "events": len(events),
        "scored": done.scored,
        "types": types,
        "per_resource": percentiles(per_resource),
        "rules_only": percentiles(rules_only),
        "catch_up_s": elapsed,
        "resources_per_s": round(done.scored / elapsed) if elapsed else 0,
        "events_per_s": round(done.events / elapsed) if elapsed else 0,
        "month": month,
        "report_s": report_s,
        "xlsx_s": xlsx_s,
        "families": report.as_dict()["families"],
    }


if __name__ == "__main__":
    sys.exit(main())
