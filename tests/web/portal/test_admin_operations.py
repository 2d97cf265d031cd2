"""The operators' pages: the identity review queue, exchange errors (replay, dismiss) and platform health."""

from __future__ import annotations

import itertools
import re
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from exchange.mllp.messages import adt  # tests/ is on sys.path (its packages are top-level)
from rhip.bootstrap.container import database
from rhip.exchange.rejects import RejectStore

from .conftest import PortalSite

Factory = Callable[[str | None], TestClient]
ID_CARD = "urn:oid:2.16.156.10011.1.3"
V3_GOLDEN = Path(__file__).resolve().parents[2] / "exchange" / "hl7v3" / "golden"
_births = itertools.count(1)
_controls = itertools.count(1)


def id_number(birth: str, seq: str = "003") -> str:
    """A valid GB 11643 ID number (Beijing Xicheng) of a man born on ``birth`` (YYYY-MM-DD)."""
    body = "110102" + birth.replace("-", "") + seq
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11]


def resident(
    mrn: str, birth: str, *, with_id: bool = True, elsewhere: bool = False, given: str = "测"
) -> dict[str, Any]:
    """司马测, as an institution registers him (with his ID number, or elsewhere without it)."""
    identifiers = [{"system": "urn:rhip:mrn:OPS" + mrn[0], "value": mrn}]
    if with_id:
        identifiers.append({"system": ID_CARD, "value": id_number(birth)})
    n = birth[-2:]  # each case's man has his own phones and house
    phone, address = (
        (f"159276543{n}", {"text": f"上海市浦东新区世纪大道{n}号", "district": "浦东新区"})
        if elsewhere
        else (f"137665812{n}", {"text": f"北京市西城区西长安街{n}号", "district": "西城区"})
    )
    return {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [{"text": "司马" + given, "family": "司马", "given": [given]}],
        "gender": "male",
        "birthDate": birth,
        "telecom": [{"system": "phone", "value": phone}],
        "address": [address],
    }


def bearer(client: TestClient) -> dict[str, str]:
    """The signed-in account's access token as a FHIR API header."""
    return {"Authorization": f"Bearer {client.cookies.get('rhip_at')}", "Accept": "application/fhir+json"}


def csrf(client: TestClient) -> str:
    return client.cookies.get("rhip_csrf") or ""


def fhir_values(parameters: dict[str, Any], name: str) -> list[Any]:
    out = []
    for p in parameters.get("parameter", parameters.get("part", [])):
        if p["name"] == name:
            out.append(p if "part" in p else next(v for k, v in p.items() if k.startswith("value")))
    return out


@dataclass
class Case:
    """A review case: ``c`` may be the person of master ``master`` (``a`` and ``b``)."""

    id: int
    a: str
    b: str
    c: str
    master: str
    birth: str


def master_of(client: TestClient, patient: str) -> str:
    answer = client.get(f"/fhir/Patient/$empi-query-links?patient={patient}", headers=bearer(client))
    assert answer.status_code == 200, answer.text
    (link,) = fhir_values(answer.json(), "link")
    return str(fhir_values(link, "master")[0])


def make_case(admin: TestClient) -> Case:
    """Three records of one man (two with his ID number; one without it, elsewhere, his name written with
    another character of the same sound): a review case."""
    birth = f"1931-01-{next(_births):02d}"
    ids = []
    variants: list[tuple[str, dict[str, Any]]] = [
        ("A1", {}),
        ("B1", {}),
        ("C1", {"with_id": False, "elsewhere": True, "given": "策"}),
    ]
    for mrn, kw in variants:
        made = admin.post(
            "/fhir/Patient",
            content=orjson.dumps(resident(mrn + birth, birth, **kw)),
            headers={**bearer(admin), "Content-Type": "application/fhir+json"},
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    a, b, c = ids
    listed = admin.get("/fhir/Patient/$empi-review-list?_count=200", headers=bearer(admin)).json()
    items = [i for i in fhir_values(listed, "item") if fhir_values(i, "patient") == [c]]
    assert len(items) == 1, "the third record did not land in the review queue"
    return Case(int(fhir_values(items[0], "id")[0]), a, b, c, master_of(admin, a), birth)


@pytest.fixture(scope="module")
def signed_in(portal_app: Factory) -> Callable[[str], TestClient]:
    """One signed-in client per account for the module (sign-ins are throttled per address)."""
    clients: dict[str, TestClient] = {}

    def get(username: str) -> TestClient:
        if username not in clients:
            clients[username] = portal_app(username)
        return clients[username]

    return get


@pytest.fixture(scope="module")
def admin(signed_in: Callable[[str], TestClient]) -> TestClient:
    return signed_in("demo-admin")


@pytest.fixture
def case(admin: TestClient) -> Case:
    return make_case(admin)


def number(element_id: str, html: str) -> int:
    """The number shown in the element of ``element_id``."""
    found = re.search(rf'id="{element_id}">(\d+)<', html)
    assert found, f"no #{element_id}"
    return int(found.group(1))


def rows_of(html: str, table_id: str) -> list[str]:
    found = re.search(rf'<table id="{table_id}".*?</table>', html, re.DOTALL)
    assert found, f"no table#{table_id}"
    return re.findall(r"<tr[^>]*>.*?</tr>", found.group(0), re.DOTALL)


# -- review queue ---------------------------------------------------------------------------------------


def test_a_review_case_is_listed_compared_and_linked(
    admin: TestClient, portal_site: PortalSite, case: Case
) -> None:
    queue = admin.get("/portal/admin/review")
    assert queue.status_code == 200
    assert f'<a class="case" href="/portal/admin/review/{case.id}">' in queue.text
    assert 'table id="review-cases"' in queue.text

    page = admin.get(f"/portal/admin/review/{case.id}")
    assert page.status_code == 200, page.text
    rows = rows_of(page.text, "compare")
    agree = [r for r in rows if 'class="agree"' in r]
    disagree = [r for r in rows if 'class="disagree"' in r]
    assert any("姓名" in r and "司马策" in r and "司马测" in r for r in disagree)
    assert any("拼音" in r for r in agree) and any("出生日期" in r for r in agree)
    assert any("电话" in r for r in disagree) and any("地址" in r for r in disagree)
    # administrators see ID numbers and phones masked
    assert id_number(case.birth) not in page.text and "1376658120" not in page.text
    assert f"137****12{case.birth[-2:]}" in page.text
    score = re.search(r'<strong id="score">([0-9.]+)</strong>', page.text)
    assert score and 0 < float(score.group(1)) < 1
    assert 'class="reason"' in page.text and "出生日期" in rows_of(page.text, "reasons")[1] + page.text
    assert f'form method="post" action="/portal/admin/review/{case.id}/decide" id="decide"' in page.text
    assert 'name="decision" value="link"' in page.text and 'name="decision" value="no-link"' in page.text

    decided = admin.post(
        f"/portal/admin/review/{case.id}/decide", data={"decision": "link", "csrf": csrf(admin)}
    )
    assert decided.status_code == 200 and "已合并为同一人" in decided.text
    assert f'/portal/admin/review/{case.id}"' not in decided.text  # no longer open
    assert master_of(admin, case.c) == case.master  # linked, as the EMPI's own operation says
    # the decision is audited under the administrator's name
    assert _audited(portal_site, "$empi-review-decide", "demo-admin")
    again = admin.post(
        f"/portal/admin/review/{case.id}/decide", data={"decision": "link", "csrf": csrf(admin)}
    )
    assert again.status_code == 409


def test_no_link_keeps_the_records_apart_and_unlink_works(admin: TestClient, case: Case) -> None:
    decided = admin.post(
        f"/portal/admin/review/{case.id}/decide", data={"decision": "no-link", "csrf": csrf(admin)}
    )
    assert decided.status_code == 200 and "已判定为不同人" in decided.text
    assert master_of(admin, case.c) != case.master
    shown = admin.get(f"/portal/admin/review/{case.id}")
    assert 'id="decide"' not in shown.text  # decided cases take no decision
    unlinked = admin.post(
        f"/portal/admin/review/{case.id}/action",
        data={"action": "unlink", "patient": case.b, "csrf": csrf(admin)},
    )
    assert unlinked.status_code == 200 and "已拆分" in unlinked.text
    assert master_of(admin, case.b) != master_of(admin, case.a)


def test_merge_and_unmerge_from_a_case(admin: TestClient, case: Case) -> None:
    own = master_of(admin, case.c)  # the open case's record waits under a master of its own
    assert own != case.master
    page = admin.get(f"/portal/admin/review/{case.id}")
    assert f'name="from" value="{own}"' in page.text and f'name="into" value="{case.master}"' in page.text
    merged = admin.post(
        f"/portal/admin/review/{case.id}/action",
        data={"action": "merge", "from": own, "into": case.master, "csrf": csrf(admin)},
    )
    assert merged.status_code == 200 and "已合并主索引" in merged.text
    assert master_of(admin, case.c) == case.master
    assert f'id="unmerge-master" name="master" required maxlength="64" value="{own}"' in merged.text
    undone = admin.post(
        f"/portal/admin/review/{case.id}/action",
        data={"action": "unmerge", "master": own, "csrf": csrf(admin)},
    )
    assert undone.status_code == 200 and "已撤销合并" in undone.text
    assert master_of(admin, case.c) == own
    wrong = admin.post(
        f"/portal/admin/review/{case.id}/action",
        data={"action": "unmerge", "master": own, "csrf": csrf(admin)},
    )
    assert wrong.status_code == 400  # not a merged master (any more): the EMPI's refusal, shown as a page
    # records told apart may not be merged: the EMPI's conflict is shown, nothing changes
    admin.post(f"/portal/admin/review/{case.id}/decide", data={"decision": "no-link", "csrf": csrf(admin)})
    clash = admin.post(
        f"/portal/admin/review/{case.id}/action",
        data={"action": "merge", "from": master_of(admin, case.c), "into": case.master, "csrf": csrf(admin)},
    )
    assert clash.status_code == 409 and master_of(admin, case.c) != case.master


def test_decisions_need_the_csrf_token_and_a_known_decision(admin: TestClient, case: Case) -> None:
    forged = admin.post(f"/portal/admin/review/{case.id}/decide", data={"decision": "link", "csrf": "x"})
    assert forged.status_code == 403
    bad = admin.post(
        f"/portal/admin/review/{case.id}/decide", data={"decision": "maybe", "csrf": csrf(admin)}
    )
    assert bad.status_code == 400
    assert master_of(admin, case.c) != case.master  # nothing happened
    assert admin.get("/portal/admin/review/999999999").status_code == 404


# -- exchange errors ------------------------------------------------------------------------------------


@pytest.fixture
def rejects(portal_site: PortalSite) -> Iterator[RejectStore]:
    db = database(portal_site.settings())
    try:
        yield RejectStore(db)
    finally:
        db.dispose()


def refused(store: RejectStore, *, mrn: str = "M1", reason: str = "RHIP-V2-0099") -> tuple[int, str]:
    """A well-formed ADT message kept as refused (as a door does while, say, a code map was missing)."""
    control = f"OPS{next(_controls)}-{secrets.token_hex(4)}"
    raw = adt(control, mrn, name="欧阳^测试").encode()
    rid = store.record(
        channel="mllp",
        sender="510725H01",
        application="卫宁HIS",
        raw=raw,
        control_id=control,
        reason_code=reason,
        reason="a code map was missing",
        ack=b"MSH|...\rMSA|AE|" + control.encode(),
    )
    return rid, control


def test_a_refused_message_is_listed_shown_masked_and_replayed(
    admin: TestClient, rejects: RejectStore, portal_site: PortalSite
) -> None:
    rid, control = refused(rejects)
    listing = admin.get("/portal/admin/exchange?channel=mllp&sender=510725H01")
    assert listing.status_code == 200
    row = next(r for r in rows_of(listing.text, "rejects") if f'id="reject-{rid}"' in r)
    assert control in row and "RHIP-V2-0099" in row and 'class="replay"' in row

    shown = admin.get(f"/portal/admin/exchange/{rid}")
    assert shown.status_code == 200
    content = re.search(r'<pre id="content"[^>]*>(.*?)</pre>', shown.text, re.DOTALL)
    assert content and "PID|1||" in content.group(1) and control in content.group(1)
    assert "欧阳" not in shown.text and "测试" not in shown.text  # the name is hidden
    assert "513701195012285032" not in shown.text and "5137" not in content.group(1)
    assert "19501228" not in content.group(1)  # the birth date too

    replayed = admin.post(
        f"/portal/admin/exchange/{rid}/resolve", data={"action": "replay", "csrf": csrf(admin)}
    )
    assert replayed.status_code == 200 and "重放成功" in replayed.text
    assert rejects.get(rid).status == "replayed" and "demo-admin" in rejects.get(rid).note
    assert f'id="reject-{rid}"' not in replayed.text  # no longer open
    # the message's resources were stored as the administrator's writes
    assert _audited(portal_site, f"exchange_reject/{rid}", "demo-admin")
    again = admin.post(
        f"/portal/admin/exchange/{rid}/resolve", data={"action": "replay", "csrf": csrf(admin)}
    )
    assert "不能重放" in again.text


def test_a_message_still_wrong_is_refused_again_and_can_be_dismissed(
    admin: TestClient, rejects: RejectStore, portal_site: PortalSite
) -> None:
    rid, _ = refused(rejects, mrn="")  # no MRN: the pipeline refuses it again
    replayed = admin.post(
        f"/portal/admin/exchange/{rid}/resolve", data={"action": "replay", "csrf": csrf(admin)}
    )
    assert replayed.status_code == 200 and "重放后仍被拒收" in replayed.text
    assert rejects.get(rid).status == "open"
    # why is shown on the reject's page, not carried in a URL
    assert "detail=" not in str(replayed.url) and not replayed.history
    assert (
        'id="outcome"' in replayed.text and f'action="/portal/admin/exchange/{rid}/resolve"' in replayed.text
    )
    assert _outcomes(portal_site, rid, "exchange-reject-replay") == {"4"}
    forged = admin.post(f"/portal/admin/exchange/{rid}/resolve", data={"action": "dismiss"})
    assert forged.status_code == 403 and rejects.get(rid).status == "open"
    dismissed = admin.post(
        f"/portal/admin/exchange/{rid}/resolve",
        data={"action": "dismiss", "note": "resent", "csrf": csrf(admin)},
    )
    assert dismissed.status_code == 200 and rejects.get(rid).status == "dismissed"
    every = admin.get("/portal/admin/exchange?status=all&channel=mllp")
    assert f'id="reject-{rid}"' in every.text


def test_a_sender_refusal_cannot_be_replayed(admin: TestClient, rejects: RejectStore) -> None:
    rid, _ = refused(rejects, reason="RHIP-V2-0061")
    row = next(
        r for r in rows_of(admin.get("/portal/admin/exchange").text, "rejects") if f"reject-{rid}" in r
    )
    assert 'class="replay"' not in row
    tried = admin.post(
        f"/portal/admin/exchange/{rid}/resolve", data={"action": "replay", "csrf": csrf(admin)}
    )
    assert "不能重放" in tried.text and rejects.get(rid).status == "open"


def test_a_v3_security_refusal_wrapped_by_its_door_cannot_be_replayed(
    admin: TestClient, rejects: RejectStore, portal_site: PortalSite
) -> None:
    """The v3 door kept a store's 403 as RHIP-V3-0016, the security code only in the reason's text."""
    register = (V3_GOLDEN / "07-person-register.request.xml").read_bytes()
    rid = rejects.record(
        channel="hl7v3",
        sender="510704104X01",
        raw=register,
        reason_code="RHIP-V3-0016",
        reason="RHIP-SEC-0002: Access denied: meta.source names another institution",
        control_id=f"V3-{secrets.token_hex(4)}",
        content_type="application/xml",
    )
    row = next(
        r for r in rows_of(admin.get("/portal/admin/exchange").text, "rejects") if f"reject-{rid}" in r
    )
    assert 'class="replay"' not in row
    page = admin.get(f"/portal/admin/exchange/{rid}")
    assert page.status_code == 200 and 'class="replay"' not in page.text
    tried = admin.post(
        f"/portal/admin/exchange/{rid}/resolve", data={"action": "replay", "csrf": csrf(admin)}
    )
    assert tried.status_code == 200 and "不能重放" in tried.text and "detail=" not in str(tried.url)
    assert rejects.get(rid).status == "open"
    assert _outcomes(portal_site, rid, "exchange-reject-replay") == {"4"}  # the refused attempt is audited


@pytest.mark.parametrize("bad", ["99999999999999999999999", str(2**63), "0"])
def test_ids_no_row_can_have_are_not_found(admin: TestClient, bad: str) -> None:
    assert admin.get(f"/portal/admin/exchange/{bad}").status_code == 404
    resolved = admin.post(
        f"/portal/admin/exchange/{bad}/resolve", data={"action": "replay", "csrf": csrf(admin)}
    )
    assert resolved.status_code == 404
    assert admin.get(f"/portal/admin/review/{bad}").status_code == 404
    decided = admin.post(f"/portal/admin/review/{bad}/decide", data={"decision": "link", "csrf": csrf(admin)})
    assert decided.status_code == 404
    acted = admin.post(
        f"/portal/admin/review/{bad}/action", data={"action": "unlink", "patient": "x", "csrf": csrf(admin)}
    )
    assert acted.status_code == 404


# -- platform health ------------------------------------------------------------------------------------


def _db_path(site: PortalSite) -> str:
    return site.env["RHIP_DATABASE_URL"].removeprefix("sqlite:///")


def test_health_counts_match_the_database(
    signed_in: Callable[[str], TestClient], portal_site: PortalSite
) -> None:
    page = signed_in("demo-stats").get("/portal/admin/health")
    assert page.status_code == 200
    assert page.text.count('class="chart"') == 3 and "plotly.min.js" in page.text
    window = re.search(r'data-since-us="(\d+)" data-until-us="(\d+)"', page.text)
    assert window
    since_us, until_us = int(window.group(1)), int(window.group(2))
    assert until_us - since_us == 3600 * 1_000_000
    # An independent count: every version written in the window, by the institution its JSON names.
    by_source: Counter[str] = Counter()
    with closing(sqlite3.connect(_db_path(portal_site))) as conn:
        for (content,) in conn.execute(
            "SELECT content FROM resource_version WHERE updated_us >= ? AND updated_us < ?",
            (since_us, until_us),
        ):
            source = str((orjson.loads(content).get("meta") or {}).get("source", ""))
            by_source[source.rpartition(":")[2] if source.startswith("urn:rhip:source:") else ""] += 1
    assert number("total-resources", page.text) == sum(by_source.values()) > 0
    table = {}
    for row in rows_of(page.text, "health-institutions")[1:]:
        cells = [
            re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>.*?</t[hd]>", row, re.DOTALL)
        ]
        table[cells[0]] = int(cells[1])
    sourced = {k: n for k, n in by_source.items() if k}
    assert sourced and all(table[k] == n for k, n in sourced.items())
    figure = re.search(r"id=\"chart-writes\" data-figure='([^']*)'", page.text)
    assert figure
    drawn = orjson.loads(figure.group(1).replace("&#34;", '"'))["data"]
    assert sum(sum(t["y"]) for t in drawn) == sum(by_source.values())


def test_health_counts_refusals_and_open_errors(admin: TestClient, rejects: RejectStore) -> None:
    before = number("total-open-rejects", admin.get("/portal/admin/health").text)
    refused(rejects)
    page = admin.get("/portal/admin/health?window=day")
    after = number("total-open-rejects", page.text)
    assert after == before + 1
    assert any("510725H01" in r for r in rows_of(page.text, "health-institutions"))


# -- who may see what -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("username", "allowed"),
    [
        ("demo-stats", {"/portal/admin/health"}),
        ("demo-doctor", set()),
        ("demo-cdc", set()),
        ("demo-resident", set()),
    ],
)
def test_pages_are_for_administrators(
    signed_in: Callable[[str], TestClient], username: str, allowed: set[str]
) -> None:
    client = signed_in(username)
    for path in (
        "/portal/admin/review",
        "/portal/admin/review/1",
        "/portal/admin/exchange",
        "/portal/admin/exchange/1",
        "/portal/admin/health",
    ):
        assert client.get(path).status_code == (200 if path in allowed else 403), path
    posted = client.post("/portal/admin/review/1/decide", data={"decision": "link", "csrf": csrf(client)})
    assert posted.status_code == 403
    posted = client.post("/portal/admin/exchange/1/resolve", data={"action": "dismiss", "csrf": csrf(client)})
    assert posted.status_code == 403


def test_visitors_are_sent_to_sign_in(portal_app: Factory) -> None:
    response = portal_app(None).get("/portal/admin/exchange", follow_redirects=False)
    assert response.status_code == 303 and "/portal/signin" in response.headers["location"]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_word_is_there_in_both_languages(admin: TestClient, rejects: RejectStore, lang: str) -> None:
    case = make_case(admin)
    rid, _ = refused(rejects)
    pages = {
        "/portal/admin/health": ("平台运行", "Platform health"),
        "/portal/admin/health?window=day": ("最近一天", "Last day"),
        "/portal/admin/exchange?status=all": ("交换错误", "Exchange errors"),
        f"/portal/admin/exchange/{rid}": ("拒收原因", "Reason"),
        "/portal/admin/review?status=all": ("主索引待审", "Identity review queue"),
        f"/portal/admin/review/{case.id}": ("记录对照", "The records side by side"),
    }
    admin.get(f"/portal/lang?to={lang}&next=/portal/admin/health")
    try:
        for path, words in pages.items():
            page = admin.get(path)
            assert page.status_code == 200, path
            assert words[0 if lang == "zh-CN" else 1] in page.text, path
            assert not re.findall(r">\s*ops\.[a-z_.]+", page.text), path  # a missing word shows as its key
            assert f'<html lang="{lang}">' in page.text
    finally:
        admin.get("/portal/lang?to=zh-CN&next=/portal/admin/health")  # as the other tests expect


def _audited(site: PortalSite, query: str, username: str) -> bool:
    """Whether the audit log holds an entry of ``username`` whose content names ``query`` (waits for the
    trail's writer)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with closing(sqlite3.connect(_db_path(site))) as conn:
            rows = conn.execute("SELECT * FROM audit_log ORDER BY rowid DESC LIMIT 200").fetchall()
        for row in rows:
            text = " ".join(str(v) if not isinstance(v, bytes) else v.decode("utf-8", "replace") for v in row)
            if query in text and username in text:
                return True
        time.sleep(0.2)
    return False


def _outcomes(site: PortalSite, reject_id: int, subtype: str) -> set[str]:
    """The outcomes of the audit entries of ``subtype`` about reject ``reject_id`` (waits for the writer)."""
    deadline = time.monotonic() + 5
    found: set[str] = set()
    while time.monotonic() < deadline and not found:
        with closing(sqlite3.connect(_db_path(site))) as conn:
            rows = conn.execute(
                "SELECT outcome, event FROM audit_log WHERE subtype = ? ORDER BY seq DESC LIMIT 200",
                (subtype,),
            ).fetchall()
        for outcome, event in rows:
            text = event.decode("utf-8", "replace") if isinstance(event, bytes) else str(event)
            if f"exchange_reject/{reject_id}" in text:
                found.add(str(outcome))
        if not found:
            time.sleep(0.2)
    return found
