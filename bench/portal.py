#!/usr/bin/env python3
"""How fast the portal's pages are: server time per page, p50/p95/p99, on the demo-size region.

The region is ``make demo``'s (5,000 residents, one year of care ending today; FHIR and CDA documents), generated and
loaded once under var/bench/portal. The demo accounts are made with known passwords, ``rhip serve`` starts
with the security layer on, and each account signs in through the sign-in form (/portal/signin) with httpx.
A resident with about 500 resources (encounters and observations at the demo clinician's hospital, so the
clinician has a care relationship) is added through the FHIR API as demo-admin.

Each page is then requested N times in turn. A page's time is the server's (its ``Server-Timing: app``
header; loopback client time when it is missing), plus the htmx fragments the page loads at once
(``hx-trigger="load"``, e.g. the record's sections): what a person waits for before the page is whole.
Targets (issue #7): every page p95 ≤ 150 ms; the 500-resource record ≤ 300 ms.

    python bench/portal.py [--people 5000] [--requests 40]
"""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, Server, load_region, machine, percentiles, write_result

WORK = ROOT / "var" / "bench" / "portal"
PAGE_P95_MS, BIG_RECORD_MS = 150.0, 300.0
BIG_MARK = "urn:rhip:bench:portal"  # Patient.identifier.system of the 500-resource resident
LAZY = re.compile(r'hx-get="([^"]+)"[^>]*hx-trigger="load')
TIMING = re.compile(r"app;dur=([0-9.]+)")


def password_of(username: str) -> str:
    """The benchmark's password of a demo account."""
    return f"{username}-bench-Pw!1"


def prepare(people: int, env: dict[str, str], url: str) -> None:
    """Generate and load the demo-size region once (kept under var/bench/portal)."""
    start = (date.today() - timedelta(days=365)).isoformat()
    load_region(WORK, f"{people}-cda", env, url, people=people, start=start, formats="fhir,cda")


def sign_in(base: str, username: str) -> httpx.Client:
    """A client signed in as ``username`` through the portal's sign-in form."""
    client = httpx.Client(base_url=base, timeout=120, follow_redirects=False)
    client.get("/portal/signin").raise_for_status()
    form = {
        "username": username,
        "password": password_of(username),
        "csrf": client.cookies.get("rhip_csrf") or "",
    }
    answer = client.post("/portal/signin", data=form)
    if answer.status_code != 303 or not client.cookies.get("rhip_at"):
        raise SystemExit(f"{username} could not sign in: {answer.status_code} {answer.text[:200]}")
    return client


def admin_fhir(base: str) -> httpx.Client:
    """A FHIR client with demo-admin's bearer token."""
    token = httpx.post(
        f"{base}/auth/token",
        data={"grant_type": "password", "username": "demo-admin", "password": password_of("demo-admin")},
        timeout=30,
    )
    token.raise_for_status()
    return httpx.Client(
        base_url=f"{base}/fhir",
        timeout=120,
        headers={
            "authorization": f"Bearer {token.json()['access_token']}",
            "accept": "application/fhir+json",
        },
    )


def post(fhir: httpx.Client, resource: dict[str, Any]) -> str:
    """Create ``resource``; its id."""
    answer = fhir.post(
        resource["resourceType"], json=resource, headers={"content-type": "application/fhir+json"}
    )
    if answer.status_code != 201:
        raise SystemExit(f"POST {resource['resourceType']}: {answer.status_code} {answer.text[:300]}")
    return str(answer.json()["id"])


def big_resident(fhir: httpx.Client, org: str, resources: int) -> str:
    """The Patient with ~``resources`` resources at ``org`` (made once)."""
    found = fhir.get("Patient", params={"identifier": f"{BIG_MARK}|big-{resources}"}).json()
    if found.get("entry"):
        return str(found["entry"][0]["resource"]["id"])
    pid = post(
        fhir,
        {
            "resourceType": "Patient",
            "identifier": [{"system": BIG_MARK, "value": f"big-{resources}"}],
            "name": [{"text": "测试大病历", "family": "测", "given": ["大病历"]}],
            "gender": "female",
            "birthDate": "1956-03-12",
        },
    )
    now = datetime.now(UTC)
    encounters = resources // 5
    for k in range(encounters):
        when = (now - timedelta(days=3 * k)).replace(microsecond=0)
        enc = post(
            fhir,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": f"Patient/{pid}"},
                "serviceProvider": {"reference": f"Organization/{org}"},
                "period": {"start": when.isoformat(), "end": (when + timedelta(minutes=20)).isoformat()},
            },
        )
        for code, display, value, unit in (
            ("8480-6", "Systolic blood pressure", 120 + k % 30, "mm[Hg]"),
            ("8462-4", "Diastolic blood pressure", 75 + k % 15, "mm[Hg]"),
            ("2345-7", "Glucose", 5.0 + (k % 20) / 10, "mmol/L"),
            ("29463-7", "Body weight", 60 + k % 5, "kg"),
        ):
            post(
                fhir,
                {
                    "resourceType": "Observation",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "laboratory" if code == "2345-7" else "vital-signs",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "encounter": {"reference": f"Encounter/{enc}"},
                    "effectiveDateTime": when.isoformat(),
                    "valueQuantity": {
                        "value": value,
                        "unit": unit,
                        "system": "http://unitsofmeasure.org",
                        "code": unit,
                    },
                },
            )
    print(f"made Patient/{pid} with {encounters * 5} resources")
    return pid


def timed(client: httpx.Client, path: str) -> tuple[float, float, float, int]:
    """(server seconds of the page alone, with its load-time fragments, client seconds, status) of one GET."""
    page = server = wall = 0.0
    status = 0
    todo = [path]
    first = True
    while todo:
        url = todo.pop(0)
        headers = {} if first else {"hx-request": "true"}
        started = time.perf_counter()
        answer = client.get(url, headers=headers)
        elapsed = time.perf_counter() - started
        wall += elapsed
        found = TIMING.search(answer.headers.get("server-timing", ""))
        server += float(found.group(1)) / 1000 if found else elapsed
        if first:
            page, status = server, answer.status_code
            todo += [html.unescape(u) for u in LAZY.findall(answer.text)]
        elif answer.status_code >= 400:
            status = answer.status_code
        first = False
    return page, server, wall, status


def measure(client: httpx.Client, path: str, n: int) -> dict[str, Any]:
    """``n`` timed requests of ``path`` (after two to warm up)."""
    for _ in range(2):
        timed(client, path)
    pages, servers, walls, statuses = [], [], [], set()
    for _ in range(n):
        page, server, wall, status = timed(client, path)
        pages.append(page)
        servers.append(server)
        walls.append(wall)
        statuses.add(status)
    return {
        "server": percentiles(servers),
        "page_only": percentiles(pages),
        "client": percentiles(walls),
        "statuses": sorted(statuses),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--people", type=int, default=int(os.environ.get("DEMO_PEOPLE", "5000")))
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--resources", type=int, default=500)
    args = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{WORK}/portal.db"
    keys = str(WORK / "keys")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RHIP_")}
    env.update(RHIP_DATABASE_URL=url, RHIP_SECURITY__KEYS_DIR=keys, RHIP_LOG_LEVEL="WARNING")
    prepare(args.people, env, url)

    from rhip.bootstrap.settings import Settings
    from rhip.cli.demo import make_demo_accounts

    settings = Settings(database_url=url, security={"enabled": True, "keys_dir": keys}, log_format="text")
    accounts = {a.username: a for a in make_demo_accounts(settings, password=password_of)}
    resident = accounts["demo-resident"].scope.removeprefix("Patient/")
    code = accounts["demo-doctor"].scope.removeprefix("institution ")
    server = Server(
        url,
        extra_env={
            "RHIP_SECURITY__ENABLED": "true",
            "RHIP_SECURITY__KEYS_DIR": keys,
            "RHIP_SECURITY__RATE_PER_SECOND": "100000",
            "RHIP_SECURITY__RATE_BURST": "100000",
        },
    )
    base = f"http://127.0.0.1:{server.port}"
    results: dict[str, Any] = {}
    try:
        fhir = admin_fhir(base)
        orgs = fhir.get("Organization", params={"identifier": f"urn:oid:2.16.156.10011.1.5|{code}"}).json()
        org = str(orgs["entry"][0]["resource"]["id"])
        big = big_resident(fhir, org, args.resources)
        name = fhir.get(f"Patient/{resident}").json()["name"][0]
        words = name.get("text") or name.get("family", "") + "".join(name.get("given", []))
        cases = fhir.get("Patient/$empi-review-list").json()
        case = next(
            (
                p.get("valueInteger") or p.get("valueString")
                for item in cases.get("parameter", [])
                if item.get("name") == "item"
                for p in item.get("part", [])
                if p.get("name") == "id"
            ),
            None,
        )
        fhir.close()
        clients = {
            u: sign_in(base, u)
            for u in ("demo-doctor", "demo-resident", "demo-admin", "demo-cdc", "demo-stats")
        }
        pages: list[tuple[str, str, str]] = [
            ("clinician: search page", "demo-doctor", "/portal/clinician"),
            ("clinician: find by name", "demo-doctor", f"/portal/clinician?q={quote(words)}"),
            ("clinician: record", "demo-doctor", f"/portal/clinician/patient/{resident}"),
            (
                f"clinician: record of {args.resources} resources",
                "demo-doctor",
                f"/portal/clinician/patient/{big}",
            ),
            ("public health: search page", "demo-cdc", "/portal/clinician"),
            ("resident: my record", "demo-resident", "/portal/me"),
            ("resident: who viewed", "demo-resident", "/portal/me/viewers"),
            ("resident: consent", "demo-resident", "/portal/me/consent"),
            ("admin: health", "demo-admin", "/portal/admin/health"),
            ("admin: institutions", "demo-admin", "/portal/admin/institutions"),
            ("admin: accounts", "demo-admin", "/portal/admin/accounts"),
            ("admin: review queue", "demo-admin", "/portal/admin/review"),
            ("admin: exchange errors", "demo-admin", "/portal/admin/exchange"),
            ("admin: audit", "demo-admin", "/portal/admin/audit"),
            ("admin: audit search (a user)", "demo-admin", "/portal/admin/audit?user=demo-doctor&search=1"),
            (
                "admin: audit search (a resident)",
                "demo-admin",
                f"/portal/admin/audit?patient={resident}&search=1",
            ),
            ("statistician: health", "demo-stats", "/portal/admin/health"),
        ]
        if case is not None:
            pages.insert(12, ("admin: review case", "demo-admin", f"/portal/admin/review/{case}"))
        print(
            f"{len(pages)} pages × {args.requests} requests; server ms of the page with its load-time "
            "fragments (one after another), and of the page alone"
        )
        print(
            f"{'page':<40} {'p50':>8} {'p95':>8} {'p99':>8} {'page p95':>9} {'client p95':>11}  status  target"
        )
        for label, username, path in pages:
            result = measure(clients[username], path, args.requests)
            target = BIG_RECORD_MS if "resources" in label else PAGE_P95_MS
            p95 = result["server"]["p95_ms"]
            result.update(
                path=path,
                account=username,
                target_ms=target,
                ok=p95 <= target and result["statuses"] == [200],
            )
            results[label] = result
            s = result["server"]
            print(
                f"{label:<40} {s['p50_ms']:>8} {s['p95_ms']:>8} {s['p99_ms']:>8} "
                f"{result['page_only']['p95_ms']:>9} {result['client']['p95_ms']:>11}  {','.join(map(str, result['statuses'])):>6}  "
                f"{'ok' if result['ok'] else 'MISSED'} (≤ {target:.0f} ms)"
            )
        for client in clients.values():
            client.close()
    finally:
        server.stop()
    path = write_result(
        "portal",
        {
            "people": args.people,
            "requests": args.requests,
            "big_record_resources": args.resources,
            "machine": machine(),
            "targets_ms": {"page_p95": PAGE_P95_MS, "big_record_p95": BIG_RECORD_MS},
            "pages": results,
        },
    )
    print(f"wrote {path.relative_to(ROOT)}")
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
