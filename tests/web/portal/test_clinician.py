"""The clinician workbench: finding a resident, the cross-institution record, documents, break-the-glass,
who may use it, and the audit of its reads."""

from __future__ import annotations

import html
import json
import re
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from rhip.bootstrap.container import build_platform, database
from rhip.empi import queries as empi_queries
from rhip.empi.normalize.chinese import pinyin_of
from rhip.security.audit import queries as audit_queries
from rhip.security.context import acting_as
from rhip.security.masking import mask_id_number, mask_phone
from rhip.security.principal import platform_principal
from rhip.web.portal.record_shape import local_time

from .conftest import PortalSite, password_of

ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
INSTITUTION_CODE = "urn:oid:2.16.156.10011.1.5"


@dataclass
class Cast:
    """Residents of the region the tests use, found with the platform's own (unsecured) store."""

    cared: dict[str, Any]  # a resident with a visit at the demo doctor's institution
    stranger: dict[str, Any]  # a resident with no record at all tied to the doctor's institution
    # the cared resident's encounters, documents, lab tests and records (all institutions)
    counts: dict[str, int]
    records: list[str]  # every Patient id of the cared resident


def _name(patient: dict[str, Any]) -> str:
    return str((patient.get("name") or [{}])[0].get("text", ""))


def _id_number(patient: dict[str, Any]) -> str:
    return next((i["value"] for i in patient.get("identifier", []) if i["system"] == ID_SYSTEM), "")


@pytest.fixture(scope="module")
def cast(portal_site: PortalSite) -> Iterator[Cast]:
    """A resident the doctor's institution cares for (the demo resident when their name is an ordinary one;
    the region changes with the day) and one the institution never saw."""
    platform = build_platform(portal_site.settings())
    try:
        assert platform.store is not None and platform.parser is not None and platform.empi is not None
        store, parser, empi = platform.store, platform.parser, platform.empi
        code = portal_site.accounts["demo-doctor"].scope.removeprefix("institution ")

        def each(rtype: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
            page = store.search(parser.parse(rtype, [*params, ("_count", "1000")]))
            return [m.resource() for m in page.matches]

        with acting_as(platform_principal("test")):
            orgs = each("Organization", [("identifier", f"{INSTITUTION_CODE}|{code}")])
            refs = ",".join(f"Organization/{o['id']}" for o in orgs)
            touched = {
                str(e["subject"]["reference"]).removeprefix("Patient/")
                for e in each("Encounter", [("service-provider", refs)])
            } | {
                str(s["subject"]["reference"]).removeprefix("Patient/")
                for s in each("ServiceRequest", [("performer", refs)])
            }
            patients = each("Patient", [])
            number_of = {p["id"]: _id_number(p) or p["id"] for p in patients}
            touched_people = {number_of.get(p) for p in touched}
            org_ids = {o["id"] for o in orgs}
            by_id = {p["id"]: p for p in patients}

            def plain(pid: str) -> bool:
                """A resident with an ordinary name (not a newborn's placeholder such as 徐琳之女), an ID
                number and a phone, every record of whom the resident index holds under that name."""
                p = by_id.get(pid)
                if p is None or not _id_number(p) or not p.get("telecom"):
                    return False
                name = _name(p)
                if not re.fullmatch(r"[\u4e00-\u9fff]{2,3}", name) or name.endswith(("之子", "之女")):
                    return False
                golden = empi_queries.master_of(empi, pid)
                linked = [
                    str(x["other"]["reference"]).removeprefix("Patient/") for x in golden.get("link", [])
                ]
                return _name(golden) == name and all(
                    _name(by_id[r]) == name and _id_number(by_id[r]) == _id_number(p)
                    for r in linked
                    if r in by_id
                )

            ordered = [portal_site.resident_patient, *sorted(touched)]
            cared = by_id[next(pid for pid in ordered if plain(pid))]
            stranger = next(
                p
                for p in patients
                if number_of[p["id"]] not in touched_people
                and str((p.get("managingOrganization") or {}).get("reference", "")).removeprefix(
                    "Organization/"
                )
                not in org_ids
                and each("Encounter", [("patient", p["id"])])
            )
            records = [cared["id"]] + [
                str(link["other"]["reference"]).removeprefix("Patient/")
                for link in empi_queries.master_of(empi, cared["id"]).get("link", [])
            ]
            refs_of = ",".join(f"Patient/{r}" for r in dict.fromkeys(records))
            labs = each("Observation", [("patient", refs_of), ("category", "laboratory")])
            counts = {
                "records": len(set(records)),
                # one visit recorded twice (its message and its document) is one row of the timeline
                "encounters": len(
                    {
                        (
                            local_time(e["period"]["start"]),
                            e.get("serviceProvider", {}).get("reference"),
                            e.get("class", {}).get("code"),
                        )
                        for e in each("Encounter", [("patient", refs_of)])
                    }
                ),
                "documents": len(each("DocumentReference", [("patient", refs_of), ("status", "current")])),
                "tests": len({t["code"]["coding"][0]["code"] for t in labs if "valueQuantity" in t}),
            }
        yield Cast(cared, stranger, counts, list(dict.fromkeys(records)))
    finally:
        platform.close()


@pytest.fixture(scope="module")
def doctor(portal_app: Callable[[str | None], TestClient]) -> TestClient:
    """The demo clinician, signed in."""
    return portal_app("demo-doctor")


@pytest.fixture(scope="module")
def cdc(portal_app: Callable[[str | None], TestClient]) -> TestClient:
    """The demo public-health officer, signed in (sign-ins are throttled: one client per module)."""
    return portal_app("demo-cdc")


def audit_entries(site: PortalSite, patient: str, wait_for: Callable[[Any], bool]) -> list[Any]:
    """The audit log's entries about ``patient`` once one satisfies ``wait_for`` (the trail writes in the
    background), else what there is after a few seconds."""
    db = database(site.settings())
    try:
        deadline = time.monotonic() + 10
        while True:
            found = audit_queries.search(db, patient=patient, limit=500)
            if any(wait_for(r) for r in found) or time.monotonic() > deadline:
                return found
            time.sleep(0.2)
    finally:
        db.dispose()


def _result_links(html: str) -> list[str]:
    return re.findall(r'<a class="resident" href="/portal/clinician/patient/([^"]+)"', html)


# -- finding a resident ----------------------------------------------------------------------------------


def test_doctor_finds_a_resident_by_name(doctor: TestClient, cast: Cast) -> None:
    page = doctor.get("/portal/clinician", params={"q": _name(cast.cared)})
    assert page.status_code == 200
    assert 'id="resident-search"' in page.text and 'table id="residents"' in page.text
    assert _name(cast.cared) in page.text
    assert _result_links(page.text)


def test_doctor_finds_a_resident_by_pinyin(doctor: TestClient, cast: Cast) -> None:
    spoken = pinyin_of(_name(cast.cared))
    page = doctor.get("/portal/clinician", params={"q": spoken})
    assert page.status_code == 200
    assert "按拼音" in page.text
    assert _name(cast.cared) in page.text, spoken


def _results(page: str) -> str:
    found = re.search(r'<table id="residents">.*?</table>', page, re.S)
    assert found, "no table#residents"
    return found.group(0)


def test_doctor_finds_a_resident_by_id_number_and_sees_it_whole_on_the_record(
    doctor: TestClient, cast: Cast
) -> None:
    number = _id_number(cast.cared)
    page = doctor.get("/portal/clinician", params={"q": number})
    assert page.status_code == 200
    assert "按身份证号" in page.text
    assert _name(cast.cared) in page.text
    assert number not in _results(page.text) and mask_id_number(number) in _results(page.text)
    links = _result_links(page.text)
    assert len(links) == 1  # the person's records are one row
    assert links[0] == cast.cared["id"] or links[0] in page.text
    record = doctor.get(f"/portal/clinician/patient/{cast.cared['id']}")
    assert record.status_code == 200 and number in record.text  # clinicians see whole ID numbers there


def test_search_results_mask_id_numbers_and_phones(doctor: TestClient, cast: Cast) -> None:
    """A name finds residents the clinician may have no relationship with: their numbers stay masked."""
    number = _id_number(cast.cared)
    phone = next(t["value"] for t in cast.cared["telecom"] if t["system"] == "phone")
    for query in (_name(cast.cared), _name(cast.stranger)):
        table = _results(doctor.get("/portal/clinician", params={"q": query}).text)
        numbers = re.findall(r"\d{17}[\dX]", table)
        phones = re.findall(r"1\d{10}", table)
        assert not numbers and not phones, query
    table = _results(doctor.get("/portal/clinician", params={"q": _name(cast.cared)}).text)
    assert mask_id_number(number) in table and mask_phone(phone) in table


@pytest.mark.parametrize("query", ["张", " 张 ", "z"])
def test_a_search_needs_two_characters(doctor: TestClient, query: str) -> None:
    page = doctor.get("/portal/clinician", params={"q": query})
    assert page.status_code == 200
    assert 'id="query-too-short"' in page.text and "至少输入2个字符" in page.text
    assert 'id="residents"' not in page.text


def test_doctor_finds_a_resident_by_phone(doctor: TestClient, cast: Cast) -> None:
    phone = next(t["value"] for t in cast.cared["telecom"] if t["system"] == "phone")
    page = doctor.get("/portal/clinician", params={"q": phone})
    assert page.status_code == 200
    assert _name(cast.cared) in page.text


def test_an_unknown_name_finds_nobody(doctor: TestClient) -> None:
    page = doctor.get("/portal/clinician", params={"q": "查无此人某某"})
    assert page.status_code == 200
    assert "未找到符合条件的居民" in page.text
    assert "<table" not in page.text


# -- the record ------------------------------------------------------------------------------------------


def test_the_record_shows_the_summary_and_its_sections(doctor: TestClient, cast: Cast) -> None:
    pid = cast.cared["id"]
    page = doctor.get(f"/portal/clinician/patient/{pid}")
    assert page.status_code == 200
    assert f"<h1>{_name(cast.cared)}</h1>" in page.text
    assert 'id="summary"' in page.text
    assert "glass-form" not in page.text and 'class="notice"' not in page.text
    for name in ("vitals", "timeline", "labs", "documents", "holders"):
        assert f'id="{name}"' in page.text
        assert f'hx-get="/portal/clinician/patient/{pid}/section/{name}"' in page.text


def test_the_timeline_lists_encounters_with_institution_names(doctor: TestClient, cast: Cast) -> None:
    fragment = doctor.get(f"/portal/clinician/patient/{cast.cared['id']}/section/timeline")
    assert fragment.status_code == 200
    institutions = re.findall(r'<span class="institution">([^<]+)</span>', fragment.text)
    assert institutions and all(i and not i.startswith("org-") for i in institutions)


def test_the_sections_hold_the_regions_data(doctor: TestClient, cast: Cast) -> None:
    """Every institution's encounters, documents and lab tests of the person, and each record's holder."""
    base = f"/portal/clinician/patient/{cast.cared['id']}/section"
    timeline = doctor.get(f"{base}/timeline").text
    assert timeline.count('<span class="institution">') == cast.counts["encounters"] > 0
    holders = doctor.get(f"{base}/holders").text
    assert holders.count("<tr>") - 1 == cast.counts["records"] and "当前档案" in holders
    documents = doctor.get(f"{base}/documents").text
    assert documents.count('class="document"') == cast.counts["documents"]
    labs = doctor.get(f"{base}/labs").text
    assert labs.count("<tr>") - 1 == cast.counts["tests"] or (
        cast.counts["tests"] == 0 and "暂无检验结果" in labs
    )
    assert doctor.get(f"{base}/nothing").status_code == 404


def test_the_summary_lists_problems_and_medications(doctor: TestClient, portal_site: PortalSite) -> None:
    """A resident with a chronic problem: it is in the summary, with its ICD-10 code."""
    pid = _resident_with(
        doctor, portal_site, "Condition", [("clinical-status", "active")], None, '<ul class="problems">'
    )
    page = doctor.get(f"/portal/clinician/patient/{pid}").text
    assert re.search(r'<ul class="problems"><li>[^<]+<span class="muted">[A-Z]\d', page)


def test_labs_have_trend_charts(doctor: TestClient, portal_site: PortalSite) -> None:
    pid = _resident_with(
        doctor, portal_site, "Observation", [("category", "laboratory")], "labs", 'class="chart"'
    )
    page = doctor.get(f"/portal/clinician/patient/{pid}/section/labs").text
    figures = [json.loads(html.unescape(f)) for f in re.findall(r"data-figure='([^']+)'", page)]
    assert figures and all(len(f["data"][0]["y"]) > 1 for f in figures)


def test_the_record_in_english(doctor: TestClient, cast: Cast) -> None:
    doctor.cookies.set("rhip_lang", "en")
    try:
        page = doctor.get(f"/portal/clinician/patient/{cast.cared['id']}")
    finally:
        doctor.cookies.delete("rhip_lang")
    assert page.status_code == 200 and 'lang="en"' in page.text
    assert "Summary" in page.text and "Active problems" in page.text and "健康摘要" not in page.text


def test_vitals_draw_a_blood_pressure_chart(doctor: TestClient, portal_site: PortalSite) -> None:
    """Some resident in the doctor's care has blood-pressure readings, drawn as a plotly figure."""
    pid = _resident_with(doctor, portal_site, "Observation", [("code", "85354-9")], "vitals", 'class="chart"')
    page = doctor.get(f"/portal/clinician/patient/{pid}/section/vitals").text
    assert "收缩压" in page and "mmHg" in page
    figure = re.search(r"data-figure='([^']+)'", page)
    assert figure is not None
    drawn = json.loads(html.unescape(figure.group(1)))
    assert [t["type"] for t in drawn["data"]] == ["scatter", "scatter"]
    assert all(len(t["y"]) >= 1 for t in drawn["data"])


def test_a_document_renders_as_html(doctor: TestClient, portal_site: PortalSite) -> None:
    pid = _resident_with(doctor, portal_site, "DocumentReference", [], "documents", 'class="document"')
    listing = doctor.get(f"/portal/clinician/patient/{pid}/section/documents").text
    link = re.search(r'<a class="document" href="([^"]+)">([^<]+)</a>', listing)
    assert link is not None
    page = doctor.get(link.group(1))
    assert page.status_code == 200
    assert '<article class="cda">' in page.text
    assert link.group(2) in page.text
    # not the person's document: not found
    other = doctor.get(f"/portal/clinician/patient/{pid}/document/no-such-document")
    assert other.status_code == 404


def _resident_with(
    doctor: TestClient,
    site: PortalSite,
    rtype: str,
    params: list[tuple[str, str]],
    section: str | None,
    marker: str,
) -> str:
    """A resident having ``rtype?params`` whose record ``section`` shows ``marker`` to the doctor (the glass
    broken when the doctor's institution has no care relationship with them)."""
    platform = build_platform(site.settings())
    try:
        assert platform.store is not None and platform.parser is not None
        with acting_as(platform_principal("test")):
            found = platform.store.search(platform.parser.parse(rtype, [*params, ("_count", "500")]))
            owners = [m.resource().get("subject") or m.resource().get("patient") or {} for m in found.matches]
            patients = list(
                dict.fromkeys(str(o.get("reference", "")).removeprefix("Patient/") for o in owners)
            )
    finally:
        platform.close()
    for pid in patients[:20]:
        if doctor.get(f"/portal/clinician/patient/{pid}").status_code == 403:
            csrf = doctor.cookies.get("rhip_csrf") or ""
            opened = doctor.post(
                f"/portal/clinician/patient/{pid}/glass", data={"reason": "测试：急诊会诊调阅", "csrf": csrf}
            )
            assert opened.status_code == 200
        path = f"/portal/clinician/patient/{pid}" + (f"/section/{section}" if section else "")
        if marker in doctor.get(path).text:
            return pid
    pytest.fail(f"no resident with {rtype} shows {marker} in {section}")


def test_the_record_read_is_audited(doctor: TestClient, cast: Cast, portal_site: PortalSite) -> None:
    pid = cast.cared["id"]
    assert doctor.get(f"/portal/clinician/patient/{pid}").status_code == 200
    entries = audit_entries(portal_site, pid, lambda r: r.subject == "user:demo-doctor" and r.outcome == "0")
    mine = [r for r in entries if r.subject == "user:demo-doctor" and r.outcome == "0"]
    assert mine, "the doctor's reads of the record are in the audit log"
    assert any(r.action in ("R", "E") and r.purpose == "TREAT" for r in mine)


# -- break-the-glass -------------------------------------------------------------------------------------


def test_break_the_glass_opens_a_record_without_care_relationship(
    doctor: TestClient, cast: Cast, portal_site: PortalSite
) -> None:
    client = doctor
    pid = cast.stranger["id"]
    client.cookies.delete(f"rhip_glass_{pid}")  # another test may have broken the glass already
    refused = client.get(f"/portal/clinician/patient/{pid}")
    assert refused.status_code == 403
    assert 'id="glass-form"' in refused.text and 'id="glass-reason"' in refused.text
    assert 'id="glass-submit"' in refused.text
    assert 'id="summary"' not in refused.text
    csrf = client.cookies.get("rhip_csrf") or ""
    # without the CSRF token: refused
    forged = client.post(f"/portal/clinician/patient/{pid}/glass", data={"reason": "急诊抢救需要"})
    assert forged.status_code == 403 and "glass-form" not in forged.text
    # a reason too short: asked again
    short = client.post(f"/portal/clinician/patient/{pid}/glass", data={"reason": "急", "csrf": csrf})
    assert short.status_code == 400 and 'id="glass-form"' in short.text
    opened = client.post(
        f"/portal/clinician/patient/{pid}/glass",
        data={"reason": "急诊昏迷患者，需了解既往史", "csrf": csrf},
    )
    assert opened.status_code == 200, opened.text[:500]
    assert f"<h1>{_name(cast.stranger)}</h1>" in opened.text
    assert 'class="notice"' in opened.text and "急诊昏迷患者" in opened.text
    assert 'id="summary"' in opened.text
    # the fragments carry the glass too
    timeline = client.get(f"/portal/clinician/patient/{pid}/section/timeline")
    assert timeline.status_code == 200 and 'class="institution"' in timeline.text
    entries = audit_entries(portal_site, pid, lambda r: r.purpose == "ETREAT")
    glass = [r for r in entries if r.purpose == "ETREAT" and r.subject == "user:demo-doctor"]
    assert glass, "the break-the-glass reads are audited with purpose ETREAT"
    # the reason is the browser's for this patient only: without its cookie the record is closed again
    client.cookies.delete(f"rhip_glass_{pid}")
    assert client.get(f"/portal/clinician/patient/{pid}").status_code == 403
    plain = client.get(f"/portal/clinician/patient/{pid}/section/labs")
    assert plain.status_code == 403
    # a section loaded by htmx shows the refusal in place (htmx swaps only successful answers)
    fragment = client.get(f"/portal/clinician/patient/{pid}/section/labs", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and 'class="alert"' in fragment.text and "<html" not in fragment.text


def test_public_health_cannot_break_the_glass(cdc: TestClient, cast: Cast) -> None:
    assert cdc.get("/portal/clinician").status_code == 200
    csrf = cdc.cookies.get("rhip_csrf") or ""
    answer = cdc.post(
        f"/portal/clinician/patient/{cast.stranger['id']}/glass",
        data={"reason": "想看看这个人", "csrf": csrf},
    )
    assert answer.status_code == 403
    assert "只有医生可以紧急调阅" in answer.text


def test_nothing_of_a_record_shows_without_a_relationship(doctor: TestClient, cast: Cast) -> None:
    """Every section and the document page pass the record's door: the holders (institutions and MRNs) and
    the rest of a resident the doctor has no relationship with stay closed without the glass."""
    pid = cast.stranger["id"]
    doctor.cookies.delete(f"rhip_glass_{pid}")
    assert doctor.get(f"/portal/clinician/patient/{pid}").status_code == 403
    for name in ("vitals", "timeline", "labs", "documents", "holders"):
        plain = doctor.get(f"/portal/clinician/patient/{pid}/section/{name}")
        assert plain.status_code == 403, name
        fragment = doctor.get(
            f"/portal/clinician/patient/{pid}/section/{name}", headers={"HX-Request": "true"}
        )
        assert fragment.status_code == 200 and 'class="alert"' in fragment.text, name
        assert "<table" not in fragment.text and "<tr>" not in fragment.text, name
        assert "当前档案" not in fragment.text and 'class="institution"' not in fragment.text, name
    document = doctor.get(f"/portal/clinician/patient/{pid}/document/no-such-document")
    assert document.status_code == 403 and 'id="glass-form"' in document.text
    assert f'action="/portal/clinician/patient/{pid}/glass"' in document.text


@pytest.mark.parametrize("pid", ["a%20b", "a;b=c", "%E7%97%85%E4%BA%BA", "x" * 65])
def test_a_patient_id_that_is_not_a_fhir_id_is_not_found(doctor: TestClient, pid: str) -> None:
    csrf = doctor.cookies.get("rhip_csrf") or ""
    glass = doctor.post(
        f"/portal/clinician/patient/{pid}/glass", data={"reason": "急诊抢救需要", "csrf": csrf}
    )
    assert glass.status_code == 404
    for path in ("", "/section/holders", "/document/d1"):
        assert doctor.get(f"/portal/clinician/patient/{pid}{path}").status_code == 404, path
    ok = doctor.get("/portal/clinician/patient/p1/document/a%20b")
    assert ok.status_code == 404


def test_the_glass_belongs_to_its_session(
    doctor: TestClient, cast: Cast, portal_site: PortalSite, portal_app: Callable[[str | None], TestClient]
) -> None:
    """The seal's key is a file every worker reads; a glass cookie of an earlier session does not open the
    record in another."""
    key = Path(portal_site.env["RHIP_SECURITY__KEYS_DIR"]) / "portal-seal.key"
    pid = cast.stranger["id"]
    csrf = doctor.cookies.get("rhip_csrf") or ""
    opened = doctor.post(
        f"/portal/clinician/patient/{pid}/glass", data={"reason": "急诊抢救需要", "csrf": csrf}
    )
    assert opened.status_code == 200 and 'id="summary"' in opened.text
    assert len(key.read_bytes()) == 32 and stat.S_IMODE(key.stat().st_mode) == 0o600
    sealed = doctor.cookies.get(f"rhip_glass_{pid}")
    assert sealed
    later = portal_app("demo-doctor")  # the same account, another session
    later.cookies.set(f"rhip_glass_{pid}", sealed)
    refused = later.get(f"/portal/clinician/patient/{pid}")
    assert refused.status_code == 403 and 'id="glass-form"' in refused.text
    assert doctor.get(f"/portal/clinician/patient/{pid}").status_code == 200


# -- who may use the workbench ---------------------------------------------------------------------------


@pytest.mark.parametrize("username", ["demo-stats", "demo-resident"])
def test_others_are_refused_the_workbench(
    portal_app: Callable[[str | None], TestClient], cast: Cast, username: str
) -> None:
    client = portal_app(username)
    for path in ("/portal/clinician", f"/portal/clinician/patient/{cast.cared['id']}"):
        page = client.get(path, params={"q": "张"})
        assert page.status_code == 403
        assert "无权访问" in page.text
        assert 'id="residents"' not in page.text


def test_visitors_are_sent_to_sign_in(portal_app: Callable[[str | None], TestClient]) -> None:
    visitor = portal_app(None)
    answer = visitor.get("/portal/clinician", follow_redirects=False)
    assert answer.status_code == 303 and "/portal/signin" in answer.headers["location"]


def test_public_health_reads_records_of_its_district_without_the_glass(cdc: TestClient, cast: Cast) -> None:
    found = cdc.get("/portal/clinician", params={"q": _id_number(cast.cared)})
    assert found.status_code == 200 and _name(cast.cared) in found.text
    page = cdc.get(f"/portal/clinician/patient/{cast.cared['id']}")
    assert page.status_code == 200 and 'id="summary"' in page.text
    timeline = cdc.get(f"/portal/clinician/patient/{cast.cared['id']}/section/timeline")
    assert timeline.status_code == 200 and 'class="institution"' in timeline.text
    other = cdc.get(f"/portal/clinician/patient/{cast.stranger['id']}")
    assert other.status_code in (200, 403)
    assert "glass-form" not in other.text  # public health never breaks the glass


def test_a_residents_own_search_reaches_the_records_the_index_links(
    portal_site: PortalSite, portal_app: Callable[[str | None], TestClient]
) -> None:
    """record.person gives a resident bound to one record the Patients their own search reaches: that must
    be the resident index's links of the record (the security layer's scope), nothing grouped by ID number."""
    platform = build_platform(portal_site.settings())
    try:
        pid = portal_site.resident_patient
        with acting_as(platform_principal("test")):
            assert platform.empi is not None
            golden = empi_queries.master_of(platform.empi, pid)
        linked = {pid} | {
            str(link["other"]["reference"]).removeprefix("Patient/") for link in golden.get("link", [])
        }
    finally:
        platform.close()
    client = portal_app(None)
    issued = client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "demo-resident",
            "password": password_of("demo-resident"),
        },
    )
    assert issued.status_code == 200, issued.text
    headers = {"Authorization": f"Bearer {issued.json()['access_token']}", "Accept": "application/fhir+json"}
    found = client.get("/fhir/Patient", params={"_elements": "id", "_count": "100"}, headers=headers)
    assert found.status_code == 200, found.text
    ids = {
        e["resource"]["id"]
        for e in found.json().get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match"
    }
    assert ids == linked
