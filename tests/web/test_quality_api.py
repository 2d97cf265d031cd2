"""The data-quality API on a real server (uvicorn, security on), called with httpx: figures, roles, errors.

The hand-count fixture of tests/quality is stored and scored, then served: a region administrator sees
every institution, an institution's administrator only its own, anyone else nothing.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn

from quality.fixture import A, B, build_fixture, drain  # tests/ is on sys.path (its packages are top-level)
from quality.test_hand_count import A_FAMILIES, REGION_FAMILIES
from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.quality import build_quality
from rhip.bootstrap.settings import QualitySettings, SecuritySettings, Settings
from rhip.db.migrate import upgrade
from rhip.web.app import create_app
from rhip.web.quality import REPORT_PATH

pytestmark = pytest.mark.integration


@dataclass
class Served:
    """A running server and a token per kind of caller."""

    url: str
    platform: Platform
    tokens: dict[str, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("quality-api")
    security = SecuritySettings(
        enabled=True, keys_dir=str(folder / "keys"), rate_per_second=100_000, rate_burst=100_000
    )
    settings = Settings(  # type: ignore[call-arg]
        database_url=f"sqlite:///{folder}/rhip.db",
        log_format="text",
        security=security,
        quality=QualitySettings(interval_s=0.1),
    )
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    platform = build_platform(settings, empi=False, exchange=False)
    build_fixture(platform)
    drain(build_quality(platform), platform)
    assert platform.security is not None
    identity = platform.security.identity
    password = "quality-password-1"
    identity.accounts.add_user("region-admin", password, "admin")
    identity.accounts.add_user("a-admin", password, "admin", institution=A, organization="org-A")
    identity.accounts.add_user("a-doctor", password, "clinician", institution=A, organization="org-A")
    tokens = {name: identity.issue_token(username=name) for name in ("region-admin", "a-admin", "a-doctor")}
    port = _free_port()
    # As `rhip serve` builds it (mllp=True: the doors and the scoring follower; this platform has no MLLP door).
    app = create_app(settings, platform, mllp=True)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield Served(f"http://127.0.0.1:{port}", platform, tokens)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        platform.close()


def get(served: Served, who: str | None, **params: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {served.tokens[who]}"} if who else {}
    return httpx.get(served.url + REPORT_PATH, params=params, headers=headers, timeout=30)


def families(body: dict[str, object]) -> dict[str, tuple[int, int]]:
    rows = body["families"]
    assert isinstance(rows, list)
    return {f["family"]: (f["checked"], f["passed"]) for f in rows}


def test_a_region_administrator_sees_the_region_and_each_institution(served: Served) -> None:
    region = get(served, "region-admin", month="2026-10")
    assert region.status_code == 200
    body = region.json()
    assert body["scope"] == "region" and body["resources"] == 22
    assert families(body) == REGION_FAMILIES
    assert {i["institution"] for i in body["institutions"]} == {A, B}
    a = get(served, "region-admin", month="2026-10", institution=A).json()
    assert families(a) == A_FAMILIES


def test_an_institution_administrator_sees_only_its_own(served: Served) -> None:
    own = get(served, "a-admin", month="2026-10")
    assert own.status_code == 200
    assert own.json()["scope"] == A and families(own.json()) == A_FAMILIES
    assert get(served, "a-admin", month="2026-10", institution=A).status_code == 200
    other = get(served, "a-admin", month="2026-10", institution=B)
    assert other.status_code == 403
    assert other.json()["issue"][0]["diagnostics"].startswith("an institution's administrator")


def test_others_and_bad_requests_are_refused_clearly(served: Served) -> None:
    assert get(served, "a-doctor", month="2026-10").status_code == 403
    anonymous = get(served, None, month="2026-10")
    assert anonymous.status_code == 401 and "Bearer" in anonymous.headers["www-authenticate"]
    for month in ("2026-13", "October", "", "2026-1"):
        bad = get(served, "region-admin", month=month)
        assert bad.status_code == 400, month
        assert bad.json()["resourceType"] == "OperationOutcome"
    assert get(served, "region-admin", month="2026-10", institution="x" * 200).status_code == 400


def test_the_server_scores_what_arrives(served: Served) -> None:
    """What the server stores is scored in the background (the follower `rhip serve` starts), then reported."""
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    before = get(served, "region-admin", month=month).json()["resources"]
    created = httpx.post(
        served.url + "/fhir/Patient",
        content=b'{"resourceType": "Patient", "gender": "male", "birthDate": "1960-01-01"}',
        headers={
            "Authorization": f"Bearer {served.tokens['region-admin']}",
            "Content-Type": "application/fhir+json",
        },
        timeout=30,
    )
    assert created.status_code == 201
    deadline = time.monotonic() + 30
    while get(served, "region-admin", month=month).json()["resources"] == before:
        assert time.monotonic() < deadline, "the server did not score the new Patient"
        time.sleep(0.05)
    rules = {r["rule"]: r for r in get(served, "region-admin", month=month).json()["rules"]}
    assert rules["C-PAT-NAME"]["failed"] >= 1  # the new Patient has no name
