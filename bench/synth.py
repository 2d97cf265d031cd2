"""Benchmark of ``rhip synth``: resources per second, time per batch of households, memory.

Generates a region of ``--people`` residents (default 100,000: several million resources) into
var/bench/synth and prints throughput, p50/p95/p99 of the time between finished batches of 40 households,
peak RSS of the parent process and of the largest worker, and the output size. The issue's target is
20,000 resources/s on this machine.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, machine, percentiles, write_result

from rhip.synth.run import FORMATS, Options, synthesize


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--years", type=int, default=4)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--formats", default=",".join(FORMATS))
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench" / "synth")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    gaps: list[float] = []
    last = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    options = Options(
        out=args.out,
        people=args.people,
        years=args.years,
        workers=args.workers,
        formats=tuple(f for f in args.formats.split(",") if f),
    )
    summary = synthesize(options, progress)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    result = {
        "people": summary.people,
        "households": summary.households,
        "years": args.years,
        "formats": list(options.formats),
        "resources": summary.total,
        "seconds": round(summary.seconds, 2),
        "resources_per_s": round(summary.total / summary.seconds),
        "batch_latency": percentiles(gaps[1:] or gaps),
        "peak_rss_parent_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_rss_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
        "output_mb": round(size / 2**20),
        "files": summary.files,
        "machine": machine(),
    }
    print(
        f"synth: {summary.people:,} people, {summary.total:,} resources in {summary.seconds:.1f} s "
        f"= {result['resources_per_s']:,} resources/s (target 20,000)"
    )
    lat = result["batch_latency"]
    print(
        f"  time per batch of 40 households: p50 {lat['p50_ms']} ms, p95 {lat['p95_ms']} ms, p99 {lat['p99_ms']} ms"
    )
    print(
        f"  peak RSS: parent {result['peak_rss_parent_mb']} MB, largest worker {result['peak_rss_worker_mb']} MB; "
        f"output {result['output_mb']} MB in {summary.files} files"
    )
    print(f"  written to {write_result('synth', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
