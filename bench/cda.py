#!/usr/bin/env python3
"""CDA ingest benchmark: every CDA document of a synthetic region through the document registry.

Each document is read (hardened parse, header checks), stored (the original bytes as a Binary), registered
(DocumentReference, with the institution, patient, visit and author) and extracted (its structured entries
as FHIR resources), ``--batch`` documents per FHIR transaction, in process, on a fresh database. With
``--jobs N`` N processes share the work, each taking whole institutions (the zips), as a bulk import
would. It prints documents/s and resources/s, the latency of a batch and per document (batch time divided
by its documents) at p50/p95/p99, the peak memory of a process and the CPU time the ingest took (on a
shared machine, documents per CPU second says what a core of its own would do); the result is saved
under var/bench/.

    python bench/cda.py                              # var/bench/cda-region (generated when absent), SQLite
    python bench/cda.py --jobs 2                     # two import processes side by side
    python bench/cda.py --source var/ex-small        # another region (its cda/*.zip)
    python bench/cda.py --shared --empi              # as concurrent senders: conditional creates, EMPI on
    python bench/cda.py --db postgresql+psycopg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing
import resource
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, percentiles, reset_database

from rhip.bootstrap.container import build_platform
from rhip.bootstrap.settings import Settings
from rhip.documents.bulk import iter_documents
from rhip.documents.model import DocumentReceipt
from rhip.documents.service import DocumentService, RegistryConfig

DEFAULT_SOURCE = ROOT / "var" / "bench" / "cda-region"
# 2,200 people over four years write about 5,300 documents (docs/synthetic-data.md §10).
SYNTH_ARGS = ["--people", "2200", "--years", "4", "--start", "2022-01-01", "--formats", "cda"]
TARGET = 200


@dataclass
class Options:
    """What one import process does."""

    url: str
    batch: int
    empi: bool
    exclusive: bool
    zips: list[Path] = field(default_factory=list)
    limit: int = 0


@dataclass
class Part:
    """What one import process measured."""

    documents: int = 0
    batch_s: list[float] = field(default_factory=list)
    per_doc_s: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0  # user + system time of the ingest (the machine is shared: wall time alone misleads)


def region(source: Path) -> list[Path]:
    """The region's CDA zips, generating the region when absent."""
    if not (source / "cda").exists():
        print(f"generating a synthetic region into {source} …", flush=True)
        subprocess.run(
            [sys.executable, "-m", "rhip.cli.main", "synth", "--out", str(source), *SYNTH_ARGS], check=True
        )
    return sorted((source / "cda").glob("*.zip"))


def split(zips: list[Path], jobs: int) -> list[list[Path]]:
    """Whole institutions per process, the largest first to the least loaded."""
    parts: list[list[Path]] = [[] for _ in range(jobs)]
    loads = [0] * jobs
    for z in sorted(zips, key=lambda p: p.stat().st_size, reverse=True):
        i = loads.index(min(loads))
        parts[i].append(z)
        loads[i] += z.stat().st_size
    return parts


def ingest(options: Options, start_at: float) -> Part:
    """One import process: read its documents, wait for the common start, register them in batches."""
    documents = list(iter_documents(options.zips))
    if options.limit:
        documents = documents[: options.limit]
    settings = Settings(database_url=options.url, log_format="text", log_level="WARNING")
    platform = build_platform(settings, empi=options.empi, empi_online=options.empi or None)
    service = DocumentService(
        platform.fhir, RegistryConfig(timezone=settings.timezone, exclusive=options.exclusive)
    )
    part = Part(len(documents))
    time.sleep(max(0.0, start_at - time.time()))
    cpu_before = _cpu_s()
    try:
        for start in range(0, len(documents), options.batch):
            chunk = documents[start : start + options.batch]
            t0 = time.perf_counter()
            outcomes = service.submit_many(chunk, channel="cda")
            elapsed = time.perf_counter() - t0
            part.batch_s.append(elapsed)
            part.per_doc_s.extend([elapsed / len(chunk)] * len(chunk))
            for o in outcomes:
                part.outcomes["registered" if isinstance(o, DocumentReceipt) else f"refused {o.code}"] += 1
    finally:
        platform.close()
    part.cpu_s = _cpu_s() - cpu_before
    part.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return part


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(options: Options, start_at: float, queue: multiprocessing.Queue[Part]) -> None:
    queue.put(ingest(options, start_at))


def run(options: list[Options]) -> dict[str, object]:
    """Ingest with one process per Options (in this one when there is one); the figures."""
    lead = 3.0 if len(options) > 1 else 0.0  # time for the processes to read their documents
    start_at = time.time() + lead
    if len(options) == 1:
        parts = [ingest(options[0], start_at)]
    else:
        queue: multiprocessing.Queue[Part] = multiprocessing.Queue()
        procs = [multiprocessing.Process(target=_child, args=(o, start_at, queue)) for o in options]
        for p in procs:
            p.start()
        parts = [queue.get() for _ in procs]
        for p in procs:
            p.join()
    elapsed = time.time() - start_at
    settings = Settings(database_url=options[0].url, log_format="text", log_level="WARNING")
    platform = build_platform(settings, empi=False)
    try:
        with platform.db.read() as conn:
            rows = conn.exec_driver_sql(
                "SELECT res_type, COUNT(*) FROM resource WHERE NOT deleted GROUP BY res_type ORDER BY res_type"
            ).all()
    finally:
        platform.close()
    stored = {str(t): int(n) for t, n in rows}
    documents = sum(p.documents for p in parts)
    return {
        "documents": documents,
        "outcomes": dict(sum((p.outcomes for p in parts), Counter())),
        "seconds": round(elapsed, 2),
        "documents_per_s": round(documents / elapsed, 1),
        "resources": stored,
        "resources_per_s": round(sum(stored.values()) / elapsed),
        "batch_size": options[0].batch,
        "jobs": len(options),
        "batch_latency": percentiles([s for p in parts for s in p.batch_s]),
        "document_latency": percentiles([s for p in parts for s in p.per_doc_s]),
        "peak_rss_mb_per_process": round(max(p.peak_rss_mb for p in parts)),
        "cpu_seconds": round(sum(p.cpu_s for p in parts), 1),
        "documents_per_cpu_second": round(documents / max(sum(p.cpu_s for p in parts), 1e-9), 1),
    }


def main() -> None:
    """Parse arguments, ingest, print and save the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="region folder holding cda/*.zip")
    parser.add_argument("--db", default=f"sqlite:///{ROOT / 'var' / 'bench' / 'cda.db'}")
    parser.add_argument("--batch", type=int, default=50, help="documents per FHIR transaction")
    parser.add_argument(
        "--jobs", type=int, default=1, help="import processes, each taking whole institutions"
    )
    parser.add_argument("--limit", type=int, default=0, help="at most N documents per process")
    parser.add_argument("--empi", action="store_true", help="with the resident index matching each Patient")
    parser.add_argument(
        "--shared", action="store_true", help="conditional creates, as for concurrent senders (not bulk mode)"
    )
    args = parser.parse_args()
    zips = region(args.source)
    size_mb = sum(z.stat().st_size for z in zips) / 1e6
    print(f"{len(zips)} institutions' CDA zips ({size_mb:.1f} MB compressed) from {args.source}", flush=True)
    reset_database(args.db)
    options = [
        Options(args.db, args.batch, args.empi, not args.shared, part, args.limit)
        for part in split(zips, max(1, args.jobs))
        if part
    ]
    figures = run(options)
    result = {
        "benchmark": "cda-ingest",
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": args.db.split(":", 1)[0].split("+", 1)[0],
        "source": str(args.source),
        "mode": "shared" if args.shared else "bulk (exclusive)",
        "empi": args.empi,
        "machine": machine(),
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        **figures,
    }
    print(json.dumps(result, indent=2, ensure_ascii=False))
    name = f"cda-{result['database']}-j{len(options)}{'-shared' if args.shared else ''}{'-empi' if args.empi else ''}"
    out = ROOT / "var" / "bench" / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"saved {out.relative_to(ROOT)}")
    rate = float(str(figures["documents_per_s"]))
    print(
        f"{rate} documents/s {'meets' if rate >= TARGET else 'MISSES'} the target of {TARGET}/s", flush=True
    )


if __name__ == "__main__":
    main()
