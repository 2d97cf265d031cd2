#!/usr/bin/env python3
"""Care-services registries (mCSD): the cost of indexing pinyin, and searches by name, pinyin and division.

The directory is built here, synthetically, at a region's size: ``--orgs`` Organizations (a commission, its
district hospitals, township health centres and village clinics, partOf up the hierarchy, each with an
institution code, a USCC and a division code under 绵阳市 5107) and ``--practitioners`` Practitioners with
a PractitionerRole each, names drawn from common surnames and given-name characters. It is loaded with
``rhip import`` (NDJSON, the FHIR service's write path).

1. Indexing in process: ``IndexExtractor.extract`` of every Organization and Practitioner with the registries'
   parameters (pinyin, division) and without them; microseconds per resource, so the index hook's cost shows.
2. Searches over HTTP against ``rhip serve`` (SQLite, security off: the search path itself), ``--clients``
   threads for ``--seconds`` per kind: Organization by ``pinyin`` (initials and full, from a later syllable),
   ``name:contains``, ``division`` (district and township prefixes), both combined; Practitioner by
   ``pinyin`` and ``identifier``. Requests per second, p50/p95/p99, and the mean number of matches.

Writes bench/results/registries.json.

    python bench/registries.py [--orgs 1200] [--practitioners 12000] [--clients 4] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, cli, http_load, machine, percentiles, reset_database, write_result

from rhip.fhir.search.extract import IndexExtractor
from rhip.fhir.search.params import registry
from rhip.registries.identifiers import (
    DIVISION_EXTENSION,
    INSTITUTION_CODE,
    KIND_SYSTEM,
    PRACTITIONER_LICENCE,
    USCC,
    organization_code_check_char,
    uscc_check_char,
)
from rhip.registries.pinyin import readings
from rhip.registries.search import registry_params

WORK = ROOT / "var" / "bench" / "registries"
# 绵阳市's districts and counties (GB/T 2260) and syllables for township and village names.
DISTRICTS = [("510703", "涪城区"), ("510704", "游仙区"), ("510705", "安州区"), ("510722", "三台县"),
             ("510723", "盐亭县"), ("510725", "梓潼县"), ("510726", "北川羌族自治县"), ("510727", "平武县"),
             ("510781", "江油市")]  # fmt: skip
PLACE = "石塘金峰新桥魏城忠兴玉河青义丰谷关帝永兴小枧松垭城郊沉抗白马柏林东宣太平龙门双河富乐花园"
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉梅林文辉斌波宇浩凯鹏飞"


def _uscc(area: str, n: int) -> str:
    body = f"{45000000 + n:08d}"
    first17 = "12" + area + body + organization_code_check_char(body)
    return first17 + uscc_check_char(first17)


def directory(
    n_orgs: int, n_practitioners: int, rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Organizations, Practitioners and their roles) of a synthetic region."""

    orgs: list[dict[str, Any]] = []

    def org(rid: str, code: str, name: str, kind: str, division: str, parent: str | None) -> dict[str, Any]:
        res: dict[str, Any] = {
            "resourceType": "Organization", "id": rid, "active": True, "name": name,
            "identifier": [{"system": INSTITUTION_CODE, "value": code},
                           {"system": USCC, "value": _uscc(division[:6], len(orgs))}],
            "type": [{"coding": [{"system": KIND_SYSTEM, "code": kind}]}],
            "address": [{"text": name, "extension": [{"url": DIVISION_EXTENSION, "valueCode": division}]}],
        }  # fmt: skip
        if parent:
            res["partOf"] = {"reference": f"Organization/{parent}"}
        return res

    orgs.append(org("b-wjw", "B0000", "绵阳市卫生健康委员会", "commission", "510700", None))
    townships: list[tuple[str, str, str]] = []
    for d, (division, district) in enumerate(DISTRICTS):
        hospital = f"b-h{d}"
        orgs.append(org(hospital, f"B1{d:03d}", f"绵阳市{district}人民医院", "secondary", division, "b-wjw"))
        for t in range(14):
            town = PLACE[(d * 3 + t) % len(PLACE)] + PLACE[(d * 7 + t * 5 + 1) % len(PLACE)] + "镇"
            rid, tcode = f"b-t{d}-{t}", f"{division}{100 + t:03d}"
            orgs.append(org(rid, f"B2{d:02d}{t:02d}", f"{district}{town}卫生院", "thc", tcode, hospital))
            townships.append((rid, tcode, district + town))
    v = 0
    while len(orgs) < n_orgs:
        rid, tcode, town = townships[v % len(townships)]
        village = PLACE[rng.randrange(len(PLACE))] + PLACE[rng.randrange(len(PLACE))] + "村"
        division = f"{tcode}{200 + v // len(townships):03d}"
        orgs.append(org(f"b-v{v}", f"B3{v:05d}", f"{town}{village}卫生室", "village", division, rid))
        v += 1
    staff: list[dict[str, Any]] = []
    for p in range(n_practitioners):
        family = SURNAMES[rng.randrange(len(SURNAMES))]
        given = "".join(GIVEN[rng.randrange(len(GIVEN))] for _ in range(rng.choice((1, 2))))
        where = orgs[rng.randrange(1, len(orgs))]["id"]
        staff.append({"resourceType": "Practitioner", "id": f"b-p{p}", "active": True,
                      "identifier": [{"system": PRACTITIONER_LICENCE, "value": f"1105107{p:08d}"}],
                      "name": [{"use": "official", "text": family + given, "family": family, "given": [given]}]})  # fmt: skip
        staff.append({"resourceType": "PractitionerRole", "id": f"b-r{p}", "active": True,
                      "practitioner": {"reference": f"Practitioner/b-p{p}"},
                      "organization": {"reference": f"Organization/{where}"}})  # fmt: skip
    return orgs, staff


def indexing(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """Microseconds per resource to extract index entries, with and without the registries' parameters."""
    zone = ZoneInfo("Asia/Shanghai")
    out: dict[str, Any] = {}
    for label, params in (
        ("official", registry()),
        ("with_registries", registry().extended(registry_params())),
    ):
        extractor = IndexExtractor(params, zone)
        for rtype in ("Organization", "Practitioner"):
            chosen = [r for r in resources if r["resourceType"] == rtype]
            extractor.extract(chosen[0])  # compiled and pypinyin's dictionaries loaded before timing
            started = time.perf_counter()
            for r in chosen:
                extractor.extract(r)
            out[f"{rtype}.{label}_us"] = round((time.perf_counter() - started) / len(chosen) * 1e6, 1)
    return out


def query_sets(
    orgs: list[dict[str, Any]], staff: list[dict[str, Any]], rng: random.Random
) -> dict[str, list[str]]:
    """Per kind of search, the request paths the clients send (drawn from the directory itself)."""
    names = [o["name"] for o in orgs]
    people = [s for s in staff if s["resourceType"] == "Practitioner"]
    sets: dict[str, list[str]] = {k: [] for k in ("org_pinyin_initials", "org_pinyin_full", "org_name_contains",
                                                   "org_division", "org_division_and_pinyin",
                                                   "practitioner_pinyin", "practitioner_identifier")}  # fmt: skip
    for _ in range(200):
        name = rng.choice(names)
        found = readings(name, from_every_syllable=True)  # full, initials from each syllable
        k = rng.randrange(len(found) // 2) * 2
        sets["org_pinyin_full"].append(f"/fhir/Organization?pinyin={found[k]}&_count=20")
        sets["org_pinyin_initials"].append(f"/fhir/Organization?pinyin={found[k + 1]}&_count=20")
        sets["org_name_contains"].append(f"/fhir/Organization?name:contains={quote(name[-5:-1])}&_count=20")
        division = rng.choice(orgs)["address"][0]["extension"][0]["valueCode"]
        sets["org_division"].append(f"/fhir/Organization?division={division[: rng.choice((6, 9))]}&_count=20")
        sets["org_division_and_pinyin"].append(
            f"/fhir/Organization?division={division[:6]}&pinyin=wsy&_count=20")  # fmt: skip
        person = rng.choice(people)
        sets["practitioner_pinyin"].append(
            f"/fhir/Practitioner?pinyin={readings(person['name'][0]['text'], from_every_syllable=False)[0]}&_count=20")  # fmt: skip
        ident = person["identifier"][0]
        sets["practitioner_identifier"].append(
            "/fhir/Practitioner?" + urlencode({"identifier": f"{ident['system']}|{ident['value']}"}))  # fmt: skip
    return sets


def matches_of(port: int, paths: list[str]) -> float:
    """The mean total of a sample of searches (what the searches find, to read the latencies by)."""
    import http.client

    totals = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for path in paths[:20]:
        conn.request(
            "GET", path.replace("_count=20", "_count=0") + ("&" if "?" in path else "?") + "_total=accurate"
        )
        totals.append(orjson.loads(conn.getresponse().read()).get("total", 0))
    conn.close()
    return round(statistics.mean(totals), 1)


def main() -> None:
    """Build, load, measure, report."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--orgs", type=int, default=1200)
    ap.add_argument("--practitioners", type=int, default=12000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    rng = random.Random(8)
    orgs, staff = directory(args.orgs, args.practitioners, rng)
    WORK.mkdir(parents=True, exist_ok=True)
    folder = WORK / "ndjson"
    folder.mkdir(exist_ok=True)
    (folder / "1-organizations.ndjson").write_bytes(b"\n".join(orjson.dumps(o) for o in orgs) + b"\n")
    (folder / "2-staff.ndjson").write_bytes(b"\n".join(orjson.dumps(s) for s in staff) + b"\n")
    print(f"directory: {len(orgs)} Organizations, {args.practitioners} Practitioners and PractitionerRoles")
    indexed = indexing(orgs + staff)
    print("indexing (µs per resource):", indexed)
    url = f"sqlite:///{WORK}/rhip.db"
    env = {**os.environ, "RHIP_DATABASE_URL": url, "RHIP_SECURITY__ENABLED": "false",
           "RHIP_LOG_LEVEL": "WARNING"}  # fmt: skip
    reset_database(url)
    started = time.perf_counter()
    cli(env, "import", str(folder / "1-organizations.ndjson"), "--no-link")
    cli(env, "import", str(folder / "2-staff.ndjson"), "--no-link")
    load_s = time.perf_counter() - started
    print(f"loaded {len(orgs) + len(staff)} resources in {load_s:.1f} s")
    # One client address sends every request: the per-client rate limit would answer 429.
    unlimited = {"RHIP_SECURITY__RATE_PER_SECOND": "1000000", "RHIP_SECURITY__RATE_BURST": "1000000"}
    server = Server(url, extra_env={"RHIP_SECURITY__ENABLED": "false", **unlimited})
    results: dict[str, Any] = {}
    try:
        for kind, paths in query_sets(orgs, staff, rng).items():
            http_load(server.port, paths[:10], None, 1, 0.5)  # warm the connection pool and caches
            run = http_load(server.port, paths, None, args.clients, args.seconds)
            if run["errors"]:
                raise SystemExit(
                    f"{kind}: {len(run['errors'])} errors, statuses {sorted(set(run['errors']))}"
                )
            results[kind] = {
                "per_s": round(run["requests"] / run["seconds"], 1),
                **percentiles(run["samples"]),
                "mean_matches": matches_of(server.port, paths),
            }
            print(f"{kind:26s} {results[kind]}")
    finally:
        server.stop()
    out = write_result("registries", {
        "data": {"organizations": len(orgs), "practitioners": args.practitioners, "roles": args.practitioners},
        "load_seconds": round(load_s, 1), "indexing": indexed, "searches": results,
        "clients": args.clients, "seconds_per_kind": args.seconds, "machine": machine(),
    })  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
