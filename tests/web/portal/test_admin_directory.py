"""机构与人员: the institutions and practitioners directory — list, search, paging, edit, CSV import/export."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from typing import Any

import httpx
from starlette.testclient import TestClient

from .conftest import password_of, sign_in

INSTITUTION_CODE = "urn:oid:2.16.156.10011.1.5"
Clients = Callable[[str | None], TestClient]
# Sign-ins are throttled per address and per account (10 at once, then 10 a minute): these tests sign
# each demo account in once, each client from an address of its own.
_ADDRESSES = itertools.count(1)
_BASE: dict[int, TestClient] = {}
_SIGNED: dict[tuple[int, str], TestClient] = {}
_TOKENS: dict[tuple[int, str], str] = {}


def fresh_client(portal_app: Clients) -> TestClient:
    """A visitor (not signed in) of the portal's application, from an address of its own."""
    if id(portal_app) not in _BASE:
        _BASE[id(portal_app)] = portal_app(None)
    base = _BASE[id(portal_app)]
    n = next(_ADDRESSES)
    return TestClient(base.app, client=(f"10.77.{n // 200}.{n % 200 + 1}", 50000))


def as_user(portal_app: Clients, username: str) -> TestClient:
    """A client signed in as ``username`` (one per account and application)."""
    key = (id(portal_app), username)
    if key not in _SIGNED:
        client = fresh_client(portal_app)
        landed = sign_in(client, username)
        assert landed.status_code == 200 and landed.history, f"{username} could not sign in"
        _SIGNED[key] = client
    return _SIGNED[key]


# Accounts of these tests' own, one per role, bound as the demo account of that role is (made through the
# accounts page): the demo accounts' sign-ins are left to the other tests (they are throttled too).
OWN = {
    "clinician": (
        "h3-clinician",
        "demo-doctor",
        r"机构 (?P<institution>\S+) \(Organization/(?P<organization>[^)]+)\)",
    ),
    "public-health": ("h3-officer", "demo-cdc", r"辖区 (?P<district>\d+)"),
    "resident": ("h3-citizen", "demo-resident", r"Patient (?P<patients>[A-Za-z0-9.-]+)"),
    "statistician": ("h3-counter", "demo-stats", r""),
}


def user_row(page: str, username: str) -> str:
    """The row of ``username`` in the users table of the accounts page."""
    match = re.search(rf'<tr data-username="{re.escape(username)}">(.*?)</tr>', page, re.S)
    assert match is not None, f"no row of {username}"
    return match.group(1)


def own_account(portal_app: Clients, role: str) -> str:
    """The username of these tests' own account of ``role`` (made once through the accounts page)."""
    username, like, binding = OWN[role]
    key = (id(portal_app), f"made:{username}")
    if key not in _SIGNED:
        admin = as_user(portal_app, "demo-admin")
        row = user_row(admin.get("/portal/admin/accounts").text, like)
        found = re.search(binding, row)
        assert found is not None, row
        form = {"csrf": csrf(admin), "username": username, "role": role, "password": password_of(username)}
        made = admin.post("/portal/admin/accounts/users", data={**form, **found.groupdict()})
        assert made.status_code == 200, made.text
        _SIGNED[key] = admin
    return username


def csrf(client: TestClient) -> str:
    """The client's CSRF token (its cookie)."""
    return client.cookies.get("rhip_csrf") or ""


def fhir_token(client: TestClient, username: str) -> str:
    """An access token of ``username`` from the token endpoint (password grant; one per account)."""
    key = (id(client.app), username)
    if key in _TOKENS:
        return _TOKENS[key]
    response = client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password_of(username)},
    )
    assert response.status_code == 200, response.text
    _TOKENS[key] = str(response.json()["access_token"])
    return _TOKENS[key]


def fhir_get(client: TestClient, token: str, path: str, **params: str) -> httpx.Response:
    """A FHIR read or search through the API, with a bearer token."""
    response: httpx.Response = client.get(
        f"/fhir/{path}", params=params, headers={"authorization": f"Bearer {token}"}
    )
    return response


def codes_on(page: str) -> list[str]:
    """The institution links of a list page."""
    return re.findall(r'<a class="institution" href="/portal/admin/institutions/([^"]+)"', page)


def test_institutions_are_listed_searched_and_paged(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    page = admin.get("/portal/admin/institutions")
    assert page.status_code == 200
    assert '<table id="institutions">' in page.text and 'id="import-csv"' in page.text
    first = codes_on(page.text)
    assert len(first) == 20
    found = admin.get("/portal/admin/institutions", params={"q": "人民医院"})
    rows = re.findall(r'<a class="institution" href="[^"]+">([^<]+)</a>', found.text)
    assert rows and all("人民医院" in r for r in rows)
    # The next page holds other institutions.
    link = re.search(r'<a rel="next" class="next" href="([^"]+)"', page.text)
    assert link is not None
    second = admin.get(link.group(1).replace("&amp;", "&"))
    assert second.status_code == 200
    assert codes_on(second.text) and not set(codes_on(second.text)) & set(first)


def test_practitioners_are_listed(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    page = admin.get("/portal/admin/institutions", params={"list": "practitioners"})
    assert page.status_code == 200 and '<table id="practitioners">' in page.text
    assert page.text.count("<tr>") > 5


def test_an_institution_is_edited_and_read_back_through_fhir(
    portal_app: Callable[[str | None], TestClient],
) -> None:
    admin = as_user(portal_app, "demo-admin")
    token = fhir_token(admin, "demo-admin")
    org_id = codes_on(admin.get("/portal/admin/institutions", params={"q": "卫生院"}).text)[0]
    before = fhir_get(admin, token, f"Organization/{org_id}").json()
    form = admin.get(f"/portal/admin/institutions/{org_id}")
    assert form.status_code == 200 and 'id="institution-form"' in form.text
    assert f'value="{before["name"]}"' in form.text
    code = next(i["value"] for i in before["identifier"] if i["system"] == INSTITUTION_CODE)
    fields = {
        "csrf": csrf(admin),
        "name": before["name"] + "（新址）",
        "code": code,
        "uscc": next(i["value"] for i in before["identifier"] if i["system"] == "urn:rhip:sid:uscc"),
        "licence": "",
        "kind": "thc",
        "division": "510703001",
        "address": "新区健康路 1 号",
        "active": "true",
    }
    saved = admin.post(f"/portal/admin/institutions/{org_id}", data=fields, follow_redirects=False)
    assert saved.status_code == 303
    after = fhir_get(admin, token, f"Organization/{org_id}").json()
    assert after["name"] == fields["name"]
    assert after["address"][0]["text"] == "新区健康路 1 号"
    assert {"url": "urn:rhip:ext:division", "valueCode": "510703001"} in after["address"][0]["extension"]
    assert not any(i["system"] == "urn:rhip:sid:medical-institution-licence" for i in after["identifier"])
    # What the form does not hold is kept: telephone, the supervising institution, the city.
    assert after.get("telecom") == before.get("telecom") and after.get("partOf") == before.get("partOf")
    assert after["address"][0]["city"] == before["address"][0]["city"]
    assert int(after["meta"]["versionId"]) == int(before["meta"]["versionId"]) + 1
    shown = admin.get(f"/portal/admin/institutions/{org_id}?saved=1")
    assert 'id="saved"' in shown.text and "新区健康路 1 号" in shown.text


def test_an_institution_is_added_through_the_form(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    token = fhir_token(admin, "demo-admin")
    form = admin.get("/portal/admin/institutions/new")
    assert form.status_code == 200 and "新增机构" in form.text
    fields = {
        "csrf": csrf(admin),
        "name": "测试村卫生室",
        "code": "TEST9100",
        "kind": "village",
        "active": "true",
    }
    made = admin.post("/portal/admin/institutions/new", data=fields, follow_redirects=False)
    assert (
        made.status_code == 303
        and made.headers["location"] == "/portal/admin/institutions/org-TEST9100?saved=1"
    )
    org = fhir_get(admin, token, "Organization/org-TEST9100").json()
    assert org["name"] == "测试村卫生室" and org["type"][1]["coding"][0]["code"] == "village"
    again = admin.post("/portal/admin/institutions/new", data=fields)
    assert again.status_code == 409 and "已被其他机构使用" in again.text


def test_a_bad_edit_is_refused_next_to_the_form(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    org_id = codes_on(admin.get("/portal/admin/institutions").text)[0]
    bad = admin.post(
        f"/portal/admin/institutions/{org_id}",
        data={"csrf": csrf(admin), "name": "某机构", "code": "bad code!", "uscc": "", "active": "true"},
    )
    assert bad.status_code == 400 and 'id="form-error"' in bad.text and 'aria-invalid="true"' in bad.text
    orgs = codes_on(admin.get("/portal/admin/institutions").text)
    token = fhir_token(admin, "demo-admin")
    one, other = (fhir_get(admin, token, f"Organization/{o}").json() for o in orgs[:2])
    code_of = {
        o["id"]: next(i["value"] for i in o["identifier"] if i["system"] == INSTITUTION_CODE)
        for o in (one, other)
    }
    form = {"csrf": csrf(admin), "name": one["name"], "code": code_of[one["id"]], "active": "true"}
    stale = admin.post(f"/portal/admin/institutions/{one['id']}", data={**form, "version": "999"})
    assert stale.status_code == 409 and "已被他人修改" in stale.text
    taken = admin.post(f"/portal/admin/institutions/{one['id']}", data={**form, "code": code_of[other["id"]]})
    assert taken.status_code == 409 and "已被其他机构使用" in taken.text
    assert fhir_get(admin, token, f"Organization/{one['id']}").json()["meta"] == one["meta"]
    missing = admin.post(
        "/portal/admin/institutions/no-such-org",
        data={"csrf": csrf(admin), "name": "某机构", "code": "X1", "active": "true"},
    )
    assert missing.status_code == 404


def _import(admin: TestClient, data: bytes, kind: str = "organizations") -> httpx.Response:
    response: httpx.Response = admin.post(
        "/portal/admin/institutions/import",
        data={"csrf": csrf(admin), "kind": kind},
        files={"file": ("directory.csv", data, "text/csv")},
    )
    return response


def _results(page: str) -> list[tuple[str, str]]:
    table = page.split('<table id="import-results">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr class="(\w+)"><td>(\d+)</td>', table)


def test_a_csv_import_creates_updates_and_refuses_row_by_row(
    portal_app: Callable[[str | None], TestClient],
) -> None:
    admin = as_user(portal_app, "demo-admin")
    token = fhir_token(admin, "demo-admin")
    org_id = codes_on(admin.get("/portal/admin/institutions", params={"q": "卫生室"}).text)[0]
    existing = fhir_get(admin, token, f"Organization/{org_id}").json()
    code = next(i["value"] for i in existing["identifier"] if i["system"] == INSTITUTION_CODE)
    text = (
        "code,name,uscc,kind,division,address,active\n"
        "TEST9001,测试社区卫生服务中心,,chc,510703,测试路 9 号,true\n"
        f"{code},{existing['name']}（更名）,,village,,,是\n"
        "TEST9002,,,chc,,,true\n"
    )
    page = _import(admin, b"\xef\xbb\xbf" + text.encode())  # with a byte-order mark
    assert page.status_code == 200
    assert _results(page.text) == [("created", "2"), ("updated", "3"), ("refused", "4")]
    assert "名称必填" in page.text
    created = fhir_get(admin, token, "Organization", identifier=f"{INSTITUTION_CODE}|TEST9001").json()
    assert created["total"] == 1 if "total" in created else len(created["entry"]) == 1
    resource: dict[str, Any] = created["entry"][0]["resource"]
    assert resource["id"] == "org-TEST9001" and resource["name"] == "测试社区卫生服务中心"
    updated = fhir_get(admin, token, f"Organization/{org_id}").json()
    assert updated["name"] == existing["name"] + "（更名）" and updated.get("telecom") == existing.get(
        "telecom"
    )
    refused = fhir_get(admin, token, "Organization", identifier=f"{INSTITUTION_CODE}|TEST9002").json()
    assert not refused.get("entry")
    # Imported again, the new row is now an update.
    again = _import(admin, text.encode())
    assert _results(again.text)[0] == ("updated", "2")


def test_a_practitioners_csv_is_imported(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    token = fhir_token(admin, "demo-admin")
    org_id = codes_on(admin.get("/portal/admin/institutions", params={"q": "人民医院"}).text)[0]
    org = fhir_get(admin, token, f"Organization/{org_id}").json()
    code = next(i["value"] for i in org["identifier"] if i["system"] == INSTITUTION_CODE)
    text = (
        "licence,name,family,given,gender,birth_date,institution_code,staff_no,title,department,active\n"
        "LIC-T-0001,王测试,王,测试,female,1980-02-03,,,主治医师,,true\n"
        "LIC-T-0002,李测试,李,测试,female,1980-13-40,,,,,true\n"
        "LIC-T-0003,赵测试,赵,测试,male,,NO-SUCH-ORG,77,,,true\n"
        f"LIC-T-0004,钱测试,钱,测试,male,1975-05-05,{code},T77,主任医师,心血管内科,true\n"
    )
    page = _import(admin, text.encode(), "practitioners")
    assert _results(page.text) == [("created", "2"), ("refused", "3"), ("refused", "4"), ("created", "5")]
    line3 = re.search(r'<tr class="refused"><td>3</td>.*?</tr>', page.text, re.S)
    # A date of the right form but no real day: the FHIR service's validation refuses it (its outcome).
    assert line3 is not None and "not a valid date" in line3.group(0)
    assert "找不到该机构代码" in page.text
    found = fhir_get(
        admin, token, "Practitioner", identifier="urn:rhip:sid:practitioner-licence|LIC-T-0001"
    ).json()
    assert found["entry"][0]["resource"]["name"][0]["text"] == "王测试"
    bound = fhir_get(
        admin, token, "Practitioner", identifier="urn:rhip:sid:practitioner-licence|LIC-T-0004"
    ).json()["entry"][0]["resource"]
    staff = next(i for i in bound["identifier"] if i["system"] == "urn:oid:2.16.156.10011.1.4")
    assert staff == {
        "system": "urn:oid:2.16.156.10011.1.4",
        "value": "T77",
        "assigner": {"reference": f"Organization/{org_id}"},
    }
    roles = fhir_get(admin, token, "PractitionerRole", practitioner=f"Practitioner/{bound['id']}").json()[
        "entry"
    ]
    assert roles[0]["resource"]["organization"]["reference"] == f"Organization/{org_id}"
    assert roles[0]["resource"]["specialty"] == [{"text": "心血管内科"}]
    listed = admin.get("/portal/admin/institutions", params={"list": "practitioners", "q": "LIC-T-0004"})
    assert "钱测试" in listed.text and "心血管内科" in listed.text and org_id in listed.text


def test_places_and_services_are_imported_too(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    token = fhir_token(admin, "demo-admin")
    org_id = codes_on(admin.get("/portal/admin/institutions", params={"q": "卫生院"}).text)[0]
    org = fhir_get(admin, token, f"Organization/{org_id}").json()
    code = next(i["value"] for i in org["identifier"] if i["system"] == INSTITUTION_CODE)
    page = admin.get("/portal/admin/institutions").text
    assert 'value="locations"' in page and "institution_code,code,name,type,partof" in page
    places = f"institution_code,code,name,partof,status\n{code},PT1,测试楼,,\n{code},PT2,测试诊室,PT1,\n{code},PT3,x,PT9,\n"
    result = _import(admin, places.encode(), "locations")
    assert _results(result.text) == [("created", "2"), ("created", "3"), ("refused", "4")]
    assert "该机构没有此编码的场所" in result.text
    services = f"institution_code,code,name,category,location\n{code},SV1,测试接种,18,PT2\n"
    assert _results(_import(admin, services.encode(), "services").text) == [("created", "2")]
    found = fhir_get(
        admin, token, "HealthcareService", organization=f"Organization/{org_id}", pinyin="csjz"
    ).json()
    assert [e["resource"]["location"][0]["reference"] for e in found["entry"]] == [f"Location/loc-{code}-PT2"]


def test_bad_files_get_a_message_not_a_500(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    gbk = "code,name\nX1,测试医院\n".encode("gbk")
    assert "不是 UTF-8" in _import(admin, gbk).text
    missing = _import(admin, b"name,address\nA,B\n")
    assert missing.status_code == 400 and "缺少必需的列：code" in missing.text
    assert "没有数据行" in _import(admin, b"").text
    assert "文件过大" in _import(admin, b"code,name\n" + b"X1,a\n" * 250_000).text
    assert "行数过多" in _import(admin, b"code,name\n" + b"X1,a\n" * 2_500).text
    nofile = admin.post("/portal/admin/institutions/import", data={"csrf": csrf(admin), "kind": "x"})
    assert nofile.status_code == 400 and "请选择" in nofile.text


def test_the_list_is_exported_as_csv(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    response = admin.get("/portal/admin/institutions/export.csv", params={"q": "人民医院"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    lines = text.strip().splitlines()
    assert lines[0] == "code,name,uscc,licence,kind,division,address,active,parent"
    assert len(lines) > 1 and all("人民医院" in line for line in lines[1:])


def test_csrf_is_needed_and_other_roles_are_refused(portal_app: Callable[[str | None], TestClient]) -> None:
    admin = as_user(portal_app, "demo-admin")
    org_id = codes_on(admin.get("/portal/admin/institutions").text)[0]
    forged = admin.post(
        f"/portal/admin/institutions/{org_id}", data={"csrf": "forged", "name": "x", "code": "X1"}
    )
    assert forged.status_code == 403
    no_token = admin.post(
        "/portal/admin/institutions/import",
        data={"kind": "organizations"},
        files={"file": ("a.csv", b"code,name\nX9,a\n", "text/csv")},
    )
    assert no_token.status_code == 403
    for role in ("clinician", "resident"):
        other = as_user(portal_app, own_account(portal_app, role))
        assert other.get("/portal/admin/institutions").status_code == 403
        assert other.get(f"/portal/admin/institutions/{org_id}").status_code == 403
        assert other.get("/portal/admin/institutions/export.csv").status_code == 403
