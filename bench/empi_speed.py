#!/usr/bin/env python3
"""EMPI speed: online matching against 1,000,000 registered residents, batch relink, FHIR POST Patient.

Residents: the synthetic region's population builder (census pyramid, households, names by frequency,
valid ID numbers, phones, villages) for ``--people / --copies`` people, repeated ``--copies`` times with
a birth date shifted by up to a year, a new valid ID number, a new phone and another village, so names
and birth dates collide as often as in a city of that size. One registration per resident, normalised
through the EMPI's own feature extraction and stored in a SQLite database under var/bench/ (kept for the
next run). Then:

1. **relink**: ``rhip empi relink``'s batch over every record (score, cluster, write masters), timed,
   with the peak memory of the parent and its scoring workers;
2. **online match** (excluding HTTP): ``--queries`` incoming registrations, half of them re-registrations
   of residents with the errors of a registration desk, half new people: candidate lookup, scoring and
   the decision (read only), then the same with the write of the link and master;
3. **POST Patient end to end**: the real server (``rhip serve``) on that database, POSTing new Patients
   over HTTP, each matched in the request.

    python bench/empi_speed.py [--people 1000000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import http.client
import random
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, machine, percentiles, write_result

from rhip.core.ids import new_resource_id
from rhip.db.engine import Database, DatabaseConfig, build_engine
from rhip.db.migrate import upgrade
from rhip.empi import repository as sql
from rhip.empi.blocking import candidate_keys, keys
from rhip.empi.features import extract
from rhip.empi.model import default_model
from rhip.empi.relink import relink
from rhip.empi.service import EmpiService
from rhip.empi.tables import AUTO, MATCH
from rhip.synth.idcard import make_id_number
from rhip.synth.population import PopulationBuilder
from rhip.synth.region import Region

ID_CARD = "urn:oid:2.16.156.10011.1.3"
START = date(2024, 1, 1)


class _NoPatients:
    def read(self, resource_type: str, id: str) -> Any:
        raise NotImplementedError("the speed benchmark matches features directly")


def residents(people: int, copies: int, seed: int) -> list[dict[str, Any]]:
    """Patient resources of ``people`` residents (see the module docstring)."""
    region = Region(seed, START)
    base = PopulationBuilder(region, seed, START, START + timedelta(days=365)).build(people // copies)
    villages = [v.code for vs in region.villages.values() for v in vs]
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    persons = [p for hh in base.households for p in hh.members]
    for copy in range(copies):
        for p in persons:
            birth = p.birth
            if copy:
                birth = p.birth + timedelta(days=rng.randrange(-365, 365))
                if birth >= START:  # reflected, not clamped: a clamp would pile births on one day
                    birth = p.birth - (birth - p.birth)
            village = p.addresses[0][1] if copy == 0 else rng.choice(villages)
            for attempt in range(10_000):
                # A county has 500 sequence numbers per birth date and sex; after a few collisions try
                # the next day.
                number = make_id_number(
                    village[:6], birth + timedelta(days=attempt // 50), rng.randrange(500), p.male
                )
                if number not in seen:
                    seen.add(number)
                    break
            phone = (
                p.phones[0][1]
                if copy == 0 and p.phones
                else f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
            )
            out.append(patient(new_resource_id(), p.family, p.given, p.male, birth, number, phone, village))
            if len(out) >= people:
                return out
    return out


def patient(
    pid: str,
    family: str,
    given: str,
    male: bool,
    birth: date,
    number: str | None,
    phone: str | None,
    village: str,
    mrn_system: str = "urn:rhip:mrn:bench",
) -> dict[str, Any]:
    """A registration as an institution sends it."""
    identifiers = [{"system": mrn_system, "value": pid[:12]}]
    if number:
        identifiers.append({"system": ID_CARD, "value": number})
    resource_: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "identifier": identifiers,
        "name": [{"use": "official", "text": family + given, "family": family, "given": [given]}],
        "gender": "male" if male else "female",
        "birthDate": birth.isoformat(),
        "address": [
            {
                "use": "home",
                "text": village,
                "extension": [{"url": "urn:rhip:ext:division", "valueCode": village}],
            }
        ],
    }
    if phone:
        resource_["telecom"] = [{"system": "phone", "value": phone}]
    return resource_


def messy_copy(rng: random.Random, source: dict[str, Any]) -> dict[str, Any]:
    """A re-registration of a resident elsewhere: new MRN, and a desk's errors."""
    copy = orjson.loads(orjson.dumps(source))
    copy["id"] = new_resource_id()
    copy["identifier"][0] = {"system": "urn:rhip:mrn:elsewhere", "value": copy["id"][:12]}
    roll = rng.random()
    if roll < 0.3:
        copy["identifier"] = copy["identifier"][:1]  # no ID number
    elif roll < 0.4 and "telecom" in copy:
        del copy["telecom"]
    return copy


def load(db: Database, service: EmpiService, people: int, copies: int, seed: int) -> list[dict[str, Any]]:
    """Fill the index with ``people`` residents (unless it holds them already); returns a sample of them."""
    with db.read() as conn:
        held = conn.execute(sa.text("SELECT count(*) FROM empi_record")).scalar_one()
    if held >= people:
        with db.read() as conn:
            rows = conn.execute(
                sa.text("SELECT patient_id, features FROM empi_record ORDER BY random() LIMIT 5000")
            ).all()
        return [_as_patient(pid, data) for pid, data in rows]
    started = time.perf_counter()
    print(f"building {people:,} residents …", flush=True)
    patients = residents(people, copies, seed)
    print(f"  {time.perf_counter() - started:.1f} s; normalising and storing …", flush=True)
    t0 = time.perf_counter()
    batch: list[sql.RecordRow] = []
    block_rows: list[tuple[int, str]] = []
    stamp = time.time_ns() // 1000
    for n, p in enumerate(patients, 1):
        f = extract(p)
        batch.append(sql.RecordRow(f.patient_id, 1, new_resource_id(), MATCH, AUTO, None, f.to_json(), stamp))
        block_rows.extend((k, f.patient_id) for k in keys(f))
        if len(batch) == 50_000 or n == len(patients):
            with db.write() as conn:
                sql.bulk_insert_records(conn, batch, [])
            batch = []
    normalised_s = time.perf_counter() - t0
    # Keys in key order: the block table is a B-tree on the key, and appending in order is what a bulk
    # load of an index should do (random inserts into a 14-million-row tree are ten times slower).
    block_rows.sort()
    for start in range(0, len(block_rows), 500_000):
        with db.write() as conn:
            sql.bulk_insert_records(conn, [], block_rows[start : start + 500_000])
    print(
        f"  normalised {people / normalised_s:,.0f} records/s; {len(block_rows):,} blocking keys", flush=True
    )
    normalise_s = time.perf_counter() - t0
    print(
        f"  normalised and stored in {normalise_s:.1f} s ({people / normalise_s:,.0f} records/s)", flush=True
    )
    return random.Random(seed).sample(patients, 5000)


def _as_patient(pid: str, data: bytes) -> dict[str, Any]:
    from rhip.empi.features import Features

    f = Features.from_json(pid, data)
    birth = date.fromisoformat(f.birth_date)
    number = f.id_number if f.id_trust else None
    return patient(
        pid,
        f.family,
        f.given,
        f.sex == "male",
        birth,
        number,
        f.phones[0] if f.phones else None,
        f.village or f.county,
    )


def relink_only(url: str) -> None:
    """Child process: every record back to a master of its own, then one timed relink (printed as JSON)."""
    db = Database(build_engine(DatabaseConfig(url=url, sqlite_cache_mb=512)))
    with db.write() as conn:
        # The first relink after a bulk load is the heavy one: every link and every master is new.
        conn.execute(sa.text("UPDATE empi_record SET master_id = 'fresh-' || patient_id, state = 'match'"))
        for table in ("empi_master", "empi_history", "empi_review", "outbox"):
            conn.execute(sa.text(f"DELETE FROM {table}"))
    service = EmpiService(db, _NoPatients(), model=default_model())
    t0 = time.perf_counter()
    summary = relink(service)
    seconds = time.perf_counter() - t0
    print(
        orjson.dumps(
            {
                "seconds": round(seconds, 1),
                "phases": summary.seconds,
                "records": summary.records,
                "pairs": summary.pairs_scored,
                "masters": summary.masters,
                "changed": summary.changed_links,
            }
        ).decode(),
        flush=True,
    )


def _pss_mb(root: int) -> tuple[float, float]:
    """Total PSS and RSS (MB) of a process and its children (PSS shares copy-on-write pages fairly)."""
    pids = [root]
    try:
        pids += [int(p) for p in Path(f"/proc/{root}/task/{root}/children").read_text().split()]
    except OSError:
        return 0.0, 0.0
    pss = rss = 0.0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) / 1024
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1]) / 1024
        except OSError:
            continue
    return pss, rss


def measure_relink(url: str) -> dict[str, Any]:
    """Run :func:`relink_only` in a child process, sampling the memory of it and its workers."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--relink-only", url], stdout=subprocess.PIPE, text=True
    )
    peak_pss = peak_rss = 0.0
    while child.poll() is None:
        pss, rss = _pss_mb(child.pid)
        peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
        time.sleep(0.5)
    out = (child.stdout.read() if child.stdout else "").strip().splitlines()
    if child.returncode != 0 or not out:
        raise SystemExit("the relink child failed")
    result: dict[str, Any] = orjson.loads(out[-1])
    result["peak_memory_mb"] = {"pss_total": round(peak_pss), "rss_total": round(peak_rss)}
    print(
        f"relink of {result['records']:,} records: {result['seconds']} s {result['phases']}, "
        f"{result['pairs']:,} pairs, {result['masters']:,} masters; peak memory of the process and its "
        f"workers: PSS {peak_pss:,.0f} MB (RSS summed {peak_rss:,.0f} MB)",
        flush=True,
    )
    return result


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument(
        "--copies", type=int, default=10, help="how many times the built population is varied"
    )
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--skip-relink", action="store_true")
    parser.add_argument("--relink-only", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.relink_only:
        relink_only(args.relink_only)
        return
    path = ROOT / "var" / "bench" / f"empi-speed-{args.people}.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    # Every run starts from the database as loaded: the online phases add records, which a later run's
    # queries (same seed) would otherwise find.
    pristine = path.with_name(path.stem + ".pristine.db")
    if pristine.exists():
        for stale in path.parent.glob(path.name + "*"):
            stale.unlink()
        shutil.copyfile(pristine, path)
    url = f"sqlite:///{path}"
    engine = build_engine(DatabaseConfig(url=url, sqlite_cache_mb=512))
    upgrade(engine)
    db = Database(engine)
    model = default_model()
    service = EmpiService(db, _NoPatients(), model=model)
    sample = load(db, service, args.people, args.copies, args.seed)
    if not pristine.exists():
        db.analyze()  # folds the WAL into the file, so that the copy is the whole database
        shutil.copyfile(path, pristine)
    results: dict[str, Any] = {"people": args.people, "machine": machine()}

    if not args.skip_relink:
        db.dispose()
        results["relink"] = measure_relink(url)
        db = Database(build_engine(DatabaseConfig(url=url, sqlite_cache_mb=512)))
        service = EmpiService(db, _NoPatients(), model=model)

    rng = random.Random(args.seed + 1)
    incoming = []
    for k in range(args.queries):
        if k % 2 == 0:
            incoming.append(messy_copy(rng, rng.choice(sample)))
        else:
            src = rng.choice(sample)
            fresh = patient(
                new_resource_id(),
                src["name"][0]["family"],
                src["name"][0]["given"][0],
                rng.random() < 0.5,
                date(1930, 1, 1) + timedelta(days=rng.randrange(33_000)),
                None,
                f"1{rng.choice('3589')}{rng.randrange(10**9):09d}",
                src["address"][0]["extension"][0]["valueCode"],
            )
            incoming.append(fresh)
    features = [service.features(p) for p in incoming]
    read_ms: list[float] = []
    for f in features:
        t = time.perf_counter()
        with db.read() as conn:
            service._decide(conn, f, sql.candidate_ids(conn, candidate_keys(f)))
        read_ms.append(time.perf_counter() - t)
    write_ms: list[float] = []
    outcomes: dict[str, int] = {}
    for f in features:
        t = time.perf_counter()
        out = service.process_features(f, 1)
        write_ms.append(time.perf_counter() - t)
        outcomes[out.outcome] = outcomes.get(out.outcome, 0) + 1
    results["match_ms"] = percentiles(read_ms)
    results["match_and_link_ms"] = percentiles(write_ms)
    results["outcomes"] = outcomes
    print(f"online match (read only, {len(read_ms)} queries): {results['match_ms']}")
    print(
        f"online match and link (with writes): {results['match_and_link_ms']} outcomes {outcomes}", flush=True
    )
    db.dispose()

    server = Server(url)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        post_ms: list[float] = []
        for k in range(args.posts):
            chosen = messy_copy(rng, rng.choice(sample)) if k % 2 == 0 else incoming[k % len(incoming)]
            body = orjson.dumps({key: v for key, v in chosen.items() if key != "id"})
            t = time.perf_counter()
            conn.request("POST", "/fhir/Patient", body, {"Content-Type": "application/fhir+json"})
            response = conn.getresponse()
            response.read()
            post_ms.append(time.perf_counter() - t)
            if response.status != 201:
                raise SystemExit(f"POST Patient answered {response.status}")
        results["post_patient_ms"] = percentiles(post_ms)
        print(f"POST Patient end to end over HTTP ({len(post_ms)}): {results['post_patient_ms']}")
    finally:
        server.stop()
    print(f"written to {write_result('empi_speed', results)}")


if __name__ == "__main__":
    main()
