"""字典对照: an administrator uploads an institution's local dictionary as CSV and sees it registered."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from starlette.testclient import TestClient

from rhip.terminology.conceptmaps import parse_concept_map_csv
from rhip.web.portal.admin_dir_dictionaries import ownership_problem

from .test_admin_directory import as_user, csrf

Clients = Callable[[str | None], TestClient]
DICTIONARY = """# url: urn:rhip:cm:510722H01:sex
# name: 510722H01 性别字典
# version: 2026-11
# source: the HIS's dictionary export, 2026-11-20
# institution: 510722H01
# source_system: urn:rhip:cs:local:510722H01:sex
# target_system: urn:oid:2.16.156.10011.2.3.3.4
local_code,local_display,standard_code,standard_display,equivalence
M,男,1,男性,
F,女,2,女性,equal
"""


def upload(client: TestClient, data: bytes) -> httpx.Response:
    response: httpx.Response = client.post(
        "/portal/admin/dictionaries/upload",
        data={"csrf": csrf(client)},
        files={"file": ("dictionary.csv", data, "text/csv")},
    )
    return response


def test_an_uploaded_dictionary_is_registered_once_and_listed(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    page = admin.get("/portal/admin/dictionaries")
    assert page.status_code == 200 and 'id="upload-dictionary"' in page.text
    first = upload(admin, b"\xef\xbb\xbf" + DICTIONARY.encode())
    assert first.status_code == 200, first.text
    assert "已登记 urn:rhip:cm:510722H01:sex（版本 2026-11，2 条对照）" in first.text
    table = first.text.split('<table id="dictionaries">', 1)[1].split("</table>", 1)[0]
    assert "urn:rhip:cm:510722H01:sex" in table and "urn:rhip:cs:local:510722H01:sex" in table
    again = upload(admin, DICTIONARY.encode())
    assert "与已登记的相同，未作改动" in again.text


def test_refusals_say_why_and_store_nothing(portal_app: Clients) -> None:
    admin = as_user(portal_app, "demo-admin")
    wrong_target = upload(
        admin, DICTIONARY.replace("M,男,1,", "M,男,7,").replace(":sex\n", ":sex2\n", 1).encode()
    )
    assert wrong_target.status_code == 400
    assert re.search(r"字典未登记: .*&#39;M&#39; → &#39;7&#39;.*GB/T 2261\.1", wrong_target.text)
    assert "urn:rhip:cm:510722H01:sex2" not in wrong_target.text.split('<table id="dictionaries">', 1)[1]
    broken = upload(admin, b"local_code\nM\n")
    assert broken.status_code == 400 and "字典未登记" in broken.text and "url" in broken.text
    latin1 = upload(admin, DICTIONARY.replace("男", "x").encode("utf-16"))
    assert latin1.status_code == 400 and "不是 UTF-8" in latin1.text


def test_only_administrators_see_the_page(portal_app: Clients) -> None:
    doctor = as_user(portal_app, "demo-doctor")
    assert doctor.get("/portal/admin/dictionaries").status_code == 403


def test_an_institutions_administrator_uploads_its_own_dictionaries_only() -> None:
    cm = parse_concept_map_csv(DICTIONARY)
    assert ownership_problem(cm, None) == ""  # the region's administrator
    assert ownership_problem(cm, "510722H01") == ""
    assert ownership_problem(cm, "510703H01").startswith("institution: 510722H01")
    foreign = DICTIONARY.replace("local:510722H01:sex", "local:510722H011:sex")  # a longer code, same start
    other = parse_concept_map_csv(foreign)
    assert ownership_problem(other, "510722H01") == "source_system: urn:rhip:cs:local:510722H011:sex"
