"""审计查询: the audit log searched by patient, user, institution and date; the chain verified."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from starlette.testclient import TestClient

from .conftest import PortalSite, sign_in
from .test_admin_directory import as_user, csrf, fhir_get, fhir_token, fresh_client, own_account


def _rows(page: str) -> list[str]:
    table = page.split('<table id="audit-results">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr class=\"(?:ok|refused)\">(.*?)</tr>", table, re.S)


def test_an_access_is_found_by_patient_user_institution_and_date(
    portal_app: Callable[[str | None], TestClient], portal_site: PortalSite
) -> None:
    clinician = own_account(portal_app, "clinician")  # at the demo doctor's institution
    doctor = as_user(portal_app, clinician)
    patient = portal_site.resident_patient
    token = fhir_token(doctor, clinician)
    assert fhir_get(doctor, token, f"Patient/{patient}").status_code == 200
    admin = as_user(portal_app, "demo-admin")
    form = admin.get("/portal/admin/audit")
    assert form.status_code == 200 and 'id="audit-search"' in form.text
    assert '<table id="audit-results">' not in form.text
    # Dates are days in Asia/Shanghai.
    shanghai_today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    today = shanghai_today.isoformat()
    found = admin.get(
        "/portal/admin/audit",
        params={"search": "1", "patient": patient, "user": clinician, "since": today, "until": today},
    )
    assert found.status_code == 200
    rows = _rows(found.text)
    assert rows and all(f"user:{clinician}" in r and patient in r for r in rows)
    assert any("读取" in r and "read" in r and "成功" in r and "TREAT" in r for r in rows)
    # By institution: the doctor's institution code (the demo account's binding).
    institution = portal_site.accounts["demo-doctor"].scope.removeprefix("institution ")
    by_institution = _rows(
        admin.get("/portal/admin/audit", params={"search": "1", "institution": institution}).text
    )
    assert by_institution and all(institution in r for r in by_institution)
    # Yesterday's entries do not hold today's access.
    yesterday = (shanghai_today - timedelta(days=1)).isoformat()
    old = admin.get(
        "/portal/admin/audit",
        params={"search": "1", "user": clinician, "since": yesterday, "until": yesterday},
    )
    assert _rows(old.text) == []
    # Searching the log is itself recorded: the administrator's AuditEvent search is in the log.
    mine = _rows(admin.get("/portal/admin/audit", params={"search": "1", "user": "demo-admin"}).text)
    assert any("search-type" in r for r in mine)


def test_sign_ins_are_found_and_pages_follow(portal_app: Callable[[str | None], TestClient]) -> None:
    counter = own_account(portal_app, "statistician")
    for _ in range(2):
        sign_in(fresh_client(portal_app), counter)
    admin = as_user(portal_app, "demo-admin")
    page = admin.get("/portal/admin/audit", params={"search": "1", "user": counter})
    rows = _rows(page.text)
    assert sum("login" in r for r in rows) >= 2
    everything = admin.get("/portal/admin/audit", params={"search": "1"})
    link = re.search(r'<a rel="next" class="next" href="([^"]+)"', everything.text)
    assert link is not None
    second = admin.get(link.group(1).replace("&amp;", "&"))
    assert second.status_code == 200 and _rows(second.text)
    assert _rows(second.text)[0] != _rows(everything.text)[0]


def test_bad_fields_are_a_message(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    bad = admin.get("/portal/admin/audit", params={"search": "1", "since": "26/11/2026"})
    assert bad.status_code == 400 and 'id="audit-error"' in bad.text
    assert admin.get("/portal/admin/audit", params={"search": "1", "patient": "a b"}).status_code == 400
    assert admin.get("/portal/admin/audit", params={"search": "1", "outcome": "7"}).status_code == 400


def test_refusals_are_found_by_outcome(portal_app: Callable[[str | None], TestClient]) -> None:
    counter = own_account(portal_app, "statistician")
    assert sign_in(fresh_client(portal_app), counter, "not-the-password").status_code == 401
    admin = as_user(portal_app, "demo-admin")
    query = {"search": "1", "user": counter, "outcome": "4"}
    refused = _rows(admin.get("/portal/admin/audit", params=query).text)
    assert refused and all("拒绝" in r and f"user:{counter}" in r for r in refused)
    assert any("login" in r for r in refused)


def test_the_chain_is_verified_on_demand(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    full = admin.post("/portal/admin/audit/verify", data={"csrf": csrf(admin)})
    assert full.status_code == 200 and 'id="verify-ok"' in full.text and "审计日志完整" in full.text
    fragment = admin.post(
        "/portal/admin/audit/verify", headers={"hx-request": "true", "x-csrf-token": csrf(admin)}
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text and "verify-ok" in fragment.text
    assert admin.post("/portal/admin/audit/verify", data={"csrf": "forged"}).status_code == 403


def test_only_administrators_search_the_log(portal_app: Callable[[str | None], TestClient]) -> None:
    for role in ("clinician", "resident", "public-health"):
        other = as_user(portal_app, own_account(portal_app, role))
        assert other.get("/portal/admin/audit", params={"search": "1"}).status_code == 403
        assert other.post("/portal/admin/audit/verify", data={"csrf": csrf(other)}).status_code == 403
    assert fresh_client(portal_app).get("/portal/admin/audit", follow_redirects=False).status_code == 303
