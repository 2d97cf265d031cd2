"""机构与人员: the form of one practitioner — edit and read back through FHIR, add, refusals."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from .test_admin_directory import as_user, csrf, fhir_get, fhir_token, own_account

LICENCE = "urn:rhip:sid:practitioner-licence"
STAFF_NO = "urn:oid:2.16.156.10011.1.4"
Clients = Callable[[str | None], TestClient]


def practitioner_ids(page: str) -> list[str]:
    """The practitioner edit links of a list page."""
    return re.findall(r'<a class="practitioner" href="/portal/admin/practitioners/([^"/]+)/edit"', page)


def listed(admin: TestClient) -> list[str]:
    page = admin.get("/portal/admin/institutions", params={"list": "practitioners"})
    assert page.status_code == 200
    ids = practitioner_ids(page.text)
    assert len(ids) > 3
    return ids


def licence_of(res: dict[str, Any]) -> str:
    return str(next(i["value"] for i in res["identifier"] if i["system"] == LICENCE))


def form_of(res: dict[str, Any], admin: TestClient, **changes: str) -> dict[str, str]:
    """The form's fields of a stored Practitioner, with ``changes``."""
    name = res["name"][0]
    fields = {
        "csrf": csrf(admin),
        "version": res["meta"]["versionId"],
        "name": name.get("text", ""),
        "family": name.get("family", ""),
        "given": " ".join(name.get("given", [])),
        "gender": res.get("gender", ""),
        "birth_date": res.get("birthDate", ""),
        "licence": licence_of(res),
        "active": "true" if res.get("active", True) else "false",
    }
    return {**fields, **changes}


def test_a_practitioner_is_edited_and_read_back_through_fhir(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    token = fhir_token(admin, "demo-admin")
    pid = listed(admin)[-1]
    before = fhir_get(admin, token, f"Practitioner/{pid}").json()
    page = admin.get(f"/portal/admin/practitioners/{pid}/edit")
    assert page.status_code == 200 and 'id="practitioner-form"' in page.text
    assert f'value="{before["name"][0]["text"]}"' in page.text and licence_of(before) in page.text
    assert 'id="practitioner-roles"' in page.text
    fields = form_of(
        before,
        admin,
        name="测试更名",
        family="测",
        given="试更名",
        birth_date="1980-02-03",
        licence="LIC-FORM-0001",
    )
    saved = admin.post(f"/portal/admin/practitioners/{pid}/edit", data=fields, follow_redirects=False)
    assert saved.status_code == 303, re.findall(r"id=\"form-error\">([^<]*)", saved.text)
    assert saved.headers["location"].endswith(f"/{pid}/edit?saved=1")
    after = fhir_get(admin, token, f"Practitioner/{pid}").json()
    assert after["name"][0] == {"use": "official", "text": "测试更名", "family": "测", "given": ["试更名"]}
    assert after["birthDate"] == "1980-02-03" and licence_of(after) == "LIC-FORM-0001"
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    # What the form does not hold is kept: the staff number (and its assigner), the qualification.
    assert [i for i in after["identifier"] if i["system"] == STAFF_NO] == [
        i for i in before["identifier"] if i["system"] == STAFF_NO
    ]
    assert after.get("qualification") == before.get("qualification")
    found = fhir_get(admin, token, "Practitioner", identifier=f"{LICENCE}|LIC-FORM-0001").json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [pid]
    shown = admin.get(f"/portal/admin/practitioners/{pid}/edit?saved=1")
    assert 'id="saved"' in shown.text and "测试更名" in shown.text
    # Put back as it was (other tests see the region's practitioners).
    back = admin.post(f"/portal/admin/practitioners/{pid}/edit", data=form_of(before, admin, version=""))
    assert back.status_code == 200, back.text
    restored = fhir_get(admin, token, f"Practitioner/{pid}").json()
    assert restored["name"] == before["name"] and licence_of(restored) == licence_of(before)


def test_a_practitioner_is_added_through_the_form(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    token = fhir_token(admin, "demo-admin")
    assert "新增医务人员" in admin.get("/portal/admin/practitioners/new").text
    fields = {
        "csrf": csrf(admin),
        "name": "新来医生",
        "gender": "female",
        "licence": "LIC-FORM-NEW-7",
        "active": "true",
    }
    made = admin.post("/portal/admin/practitioners/new", data=fields, follow_redirects=False)
    assert made.status_code == 303, made.text
    pid = made.headers["location"].split("/practitioners/", 1)[1].split("/", 1)[0]
    res = fhir_get(admin, token, f"Practitioner/{pid}").json()
    assert (
        res["name"][0]["text"] == "新来医生"
        and licence_of(res) == "LIC-FORM-NEW-7"
        and res["gender"] == "female"
    )
    again = admin.post("/portal/admin/practitioners/new", data=fields)
    assert again.status_code == 409 and "已被其他人员使用" in again.text


def test_stale_forms_taken_licences_and_bad_fields_are_refused(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    token = fhir_token(admin, "demo-admin")
    one_id, other_id = listed(admin)[:2]
    one, other = (fhir_get(admin, token, f"Practitioner/{p}").json() for p in (one_id, other_id))
    url = f"/portal/admin/practitioners/{one_id}/edit"
    stale = admin.post(url, data=form_of(one, admin, version="999", name="旧表单"))
    assert stale.status_code == 409 and "已被他人修改" in stale.text and 'id="form-error"' in stale.text
    taken = admin.post(url, data=form_of(one, admin, licence=licence_of(other)))
    assert taken.status_code == 409 and "已被其他人员使用" in taken.text
    bad = admin.post(url, data=form_of(one, admin, birth_date="3 May 1980"))
    assert bad.status_code == 400 and 'aria-invalid="true"' in bad.text
    assert fhir_get(admin, token, f"Practitioner/{one_id}").json()["meta"] == one["meta"]


def test_bad_ids_are_not_found(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    for bad in ("no-such-practitioner", "bad$id", "x" * 80):
        assert admin.get(f"/portal/admin/practitioners/{bad}/edit").status_code == 404
        posted = admin.post(
            f"/portal/admin/practitioners/{bad}/edit",
            data={"csrf": csrf(admin), "name": "某人", "licence": "LIC-X-1", "active": "true"},
        )
        assert posted.status_code == 404


def test_csrf_is_needed_and_other_roles_are_refused(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    pid = listed(admin)[0]
    url = f"/portal/admin/practitioners/{pid}/edit"
    forged = admin.post(url, data={"csrf": "forged", "name": "x", "licence": "LIC-X-2"})
    assert forged.status_code == 403
    assert admin.post(url, data={"name": "x", "licence": "LIC-X-2"}).status_code == 403
    assert (
        admin.post("/portal/admin/practitioners/new", data={"name": "x", "licence": "L9"}).status_code == 403
    )
    for role in ("clinician", "resident"):
        other = as_user(portal_app, own_account(portal_app, role))
        assert other.get(url).status_code == 403
        assert other.get("/portal/admin/practitioners/new").status_code == 403
        assert (
            other.post(url, data={"csrf": csrf(other), "name": "x", "licence": "LIC-X-3"}).status_code == 403
        )
