"""The EMPI's FHIR operations and the pinyin search parameter (rhip.empi.fhir_api), through a real
FhirService on the test database: Patients POSTed to the store are linked by the EMPI service listening to
the store's events, then each operation is invoked as a client would."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.core.errors import InvalidRequest, NotAcceptable
from rhip.db.migrate import upgrade
from rhip.empi import operation_definitions as defs
from rhip.empi.fhir_api import local_id, parts_of, register
from rhip.empi.service import EmpiService
from rhip.empi.survivorship import MASTER_SYSTEM
from rhip.fhir.events import ResourceCreated, ResourceDeleted, ResourceUpdated
from rhip.fhir.rest.extensions import Extensions
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.operation_input import operation_input

BASE = "http://rhip.test/fhir"
ID_CARD = "urn:oid:2.16.156.10011.1.3"  # 居民身份证
# The GB 11643 example number. Its sequence digit is even (a woman's); with gender male the engine keeps
# it as a doubtful ID number, which still links the two records (same number, name and birth date).
ID_NUMBER = "11010519491231002X"
MRN_A, MRN_B, MRN_C = "urn:rhip:mrn:A", "urn:rhip:mrn:B", "urn:rhip:mrn:C"


def resident(mrn_system: str, mrn: str, *, id_number: bool = True, shanghai: bool = False) -> dict[str, Any]:
    """张伟, born 1949-12-31, as an institution registers him (in Beijing, or in Shanghai)."""
    identifiers = [{"system": mrn_system, "value": mrn}]
    if id_number:
        identifiers.append({"system": ID_CARD, "value": ID_NUMBER})
    if shanghai:
        phone, address = "13911112222", {"text": "上海市浦东新区世纪大道2号", "district": "浦东新区"}
    else:
        phone, address = "13800138000", {"text": "北京市朝阳区建国路1号", "district": "朝阳区"}
    return {
        "resourceType": "Patient",
        "identifier": identifiers,
        "name": [{"text": "张伟", "family": "张", "given": ["伟"]}],
        "gender": "male",
        "birthDate": "1949-12-31",
        "telecom": [{"system": "phone", "value": phone}],
        "address": [address],
    }


def params(*pairs: tuple[str, Any]) -> dict[str, Any]:
    """A Parameters body: strings as valueString, dicts with resourceType as resources."""
    out = []
    for name, value in pairs:
        if isinstance(value, dict) and "resourceType" in value:
            out.append({"name": name, "resource": value})
        elif isinstance(value, dict):
            out.append({"name": name, **value})
        else:
            out.append({"name": name, "valueString": value})
    return {"resourceType": "Parameters", "parameter": out}


def body_of(resp: FhirResponse) -> Any:
    """The parsed JSON body."""
    assert resp.body is not None
    return orjson.loads(resp.body)


def error(resp: FhirResponse, status: int, code: str) -> dict[str, Any]:
    """The response is an OperationOutcome with ``status`` and the stable ``code``."""
    assert resp.status == status, (resp.status, resp.body)
    outcome = dict(body_of(resp))
    assert outcome["resourceType"] == "OperationOutcome"
    assert code in [i.get("details", {}).get("text") for i in outcome["issue"]], outcome
    return outcome


def named(parameters: Mapping[str, Any] | list[Any], name: str) -> list[dict[str, Any]]:
    """The parameters (or parts) of a name."""
    items = parameters["parameter"] if isinstance(parameters, Mapping) else parameters
    return [p for p in items if p["name"] == name]


def value(parameters: Mapping[str, Any] | list[Any], name: str) -> Any:
    """The value of the one parameter (or part) of a name."""
    (found,) = named(parameters, name)
    return next(v for k, v in found.items() if k.startswith("value"))


@dataclass
class Empi:
    """A platform whose EMPI links Patients as they are stored, and a client of its FHIR API."""

    platform: Platform
    service: EmpiService

    def request(
        self, method: str, path: str, body: Any = None, query: str = "", headers: Mapping[str, str] = {}
    ) -> FhirResponse:
        """One request; no request may end in a 5xx."""
        raw = orjson.dumps(body) if body is not None else b""
        head = {"content-type": "application/fhir+json"} if raw else {}
        head.update({k.lower(): v for k, v in headers.items()})
        pairs = parse_qsl(query, keep_blank_values=True)
        resp = self.platform.fhir.handle(FhirRequest(method, path, pairs, head, raw, BASE))
        assert resp.status < 500, (method, path, resp.status, resp.body)
        return resp

    def get(self, path: str, query: str = "", **kw: Any) -> FhirResponse:
        """GET."""
        return self.request("GET", path, None, query, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> FhirResponse:
        """POST."""
        return self.request("POST", path, body, **kw)

    def ok(self, resp: FhirResponse) -> dict[str, Any]:
        """The body of a 200."""
        assert resp.status == 200, (resp.status, resp.body)
        return dict(body_of(resp))

    def create(self, resource: dict[str, Any]) -> str:
        """POST a Patient; its id."""
        resp = self.post("Patient", resource)
        assert resp.status == 201, resp.body
        return str(body_of(resp)["id"])

    def master_of(self, patient_id: str) -> str:
        """The master id of a source Patient, by $empi-query-links."""
        links = self.ok(self.get("Patient/$empi-query-links", f"patient={patient_id}"))
        return str(value(named(links, "link")[0]["part"], "master"))


@pytest.fixture
def empi(settings: Settings) -> Iterator[Empi]:
    """A platform with the EMPI wired by hand (as the brief of rhip.empi.fhir_api describes)."""
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    extensions = Extensions()
    plat = build_platform(settings, extensions=extensions, empi=False)
    service = EmpiService(plat.db, plat.repository, events=plat.events)
    for event in (ResourceCreated, ResourceUpdated, ResourceDeleted):
        plat.events.subscribe(event, service.on_event)
    register(extensions, service)
    try:
        yield Empi(plat, service)
    finally:
        plat.close()


@dataclass
class Person:
    """张伟 registered at A and B (one master), and maybe a probable third record from C."""

    a: str
    b: str
    master: str
    c: str | None = None


def two_institutions(empi: Empi, *, third: bool = False) -> Person:
    """The same person registered at two institutions, and optionally the probable record of C."""
    a = empi.create(resident(MRN_A, "A1"))
    b = empi.create(resident(MRN_B, "B1"))
    master = empi.master_of(a)
    person = Person(a, b, master)
    if third:
        person.c = empi.create(resident(MRN_C, "C1", id_number=False, shanghai=True))
    return person


class TestLinksAndMasters:
    def test_two_records_of_one_person_share_a_master(self, empi: Empi) -> None:
        p = two_institutions(empi)
        assert empi.master_of(p.b) == p.master
        links = named(empi.ok(empi.get("Patient/$empi-query-links", f"master={p.master}")), "link")
        parts = {value(lk["part"], "patient")["reference"]: lk["part"] for lk in links}
        assert set(parts) == {f"Patient/{p.a}", f"Patient/{p.b}"}
        for part in parts.values():
            assert value(part, "state") == "match" and value(part, "origin") == "auto"
            assert value(part, "updated").endswith("Z") or "+" in value(part, "updated")
        # The first record of a person has no match probability; the one linked to it has.
        assert not named(parts[f"Patient/{p.a}"], "probability")
        assert value(parts[f"Patient/{p.b}"], "probability") >= 0.99

    def test_query_links_needs_one_of_patient_and_master(self, empi: Empi) -> None:
        p = two_institutions(empi)
        error(empi.get("Patient/$empi-query-links"), 400, "RHIP-EMPI-0015")
        both = f"patient={p.a}&master={p.master}"
        error(empi.get("Patient/$empi-query-links", both), 400, "RHIP-EMPI-0015")
        error(empi.get("Patient/$empi-query-links", "patient=nobody"), 404, "RHIP-EMPI-0001")
        posted = empi.post(
            "Patient/$empi-query-links",
            params(("patient", {"valueReference": {"reference": f"Patient/{p.b}"}})),
        )
        assert value(named(empi.ok(posted), "link")[0]["part"], "master") == p.master

    def test_empi_master_by_source_or_by_master_id(self, empi: Empi) -> None:
        p = two_institutions(empi)
        by_type = empi.get("Patient/$empi-master", f"patient=Patient/{p.a}")
        golden = empi.ok(by_type)
        assert golden["id"] == p.master and golden["resourceType"] == "Patient"
        assert {"system": "urn:rhip:empi", "code": "master"}.items() <= golden["meta"]["tag"][0].items()
        assert by_type.headers["ETag"] == f'W/"{golden["meta"]["versionId"]}"'
        assert {lk["other"]["reference"] for lk in golden["link"]} == {f"Patient/{p.a}", f"Patient/{p.b}"}
        assert empi.ok(empi.get(f"Patient/{p.b}/$empi-master"))["id"] == p.master
        assert empi.ok(empi.get(f"Patient/{p.master}/$empi-master"))["id"] == p.master
        error(empi.get("Patient/nobody/$empi-master"), 404, "RHIP-EMPI-0002")
        error(empi.get("Patient/$empi-master"), 400, "RHIP-FHIR-0001")
        error(empi.get(f"Patient/{p.a}/$empi-master", f"patient={p.b}"), 400, "RHIP-FHIR-0001")
        error(empi.get("Patient/$empi-master", "patient=Observation/1"), 400, "RHIP-FHIR-0001")


class TestMatch:
    def test_match_finds_the_master_with_grade_certain(self, empi: Empi) -> None:
        p = two_institutions(empi)
        query = resident("urn:rhip:mrn:Z", "Z9")
        bundle = empi.ok(
            empi.post("Patient/$match", params(("resource", query), ("count", {"valueInteger": 5})))
        )
        assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset"
        first = bundle["entry"][0]
        assert first["resource"]["id"] == p.master
        assert first["search"]["mode"] == "match" and first["search"]["score"] >= 0.99
        assert first["search"]["extension"] == [{"url": defs.MATCH_GRADE_URL, "valueCode": "certain"}]
        (explanation,) = first["extension"]
        assert explanation["url"] == defs.EXPLANATION_URL
        levels = {e["url"]: e["valueString"] for e in explanation["extension"]}
        assert levels["name"] == "exact" and levels["birth_date"] == "exact"
        # The query itself was not stored, nor linked.
        assert empi.ok(empi.get("Patient", "identifier=urn:rhip:mrn:Z|Z9")).get("total") == 0

    def test_only_certain_matches_and_count(self, empi: Empi) -> None:
        p = two_institutions(empi, third=True)
        near = resident("urn:rhip:mrn:Z", "Z9")
        every = empi.ok(empi.post("Patient/$match", params(("resource", near))))
        assert len(every["entry"]) == 2  # A and B's master, and C's (possible or probable)
        certain = params(("resource", near), ("onlyCertainMatches", {"valueBoolean": True}))
        only = empi.ok(empi.post("Patient/$match", certain))
        assert [e["resource"]["id"] for e in only["entry"]] == [p.master]
        one = empi.ok(empi.post("Patient/$match", params(("resource", near), ("count", {"valueInteger": 1}))))
        assert len(one["entry"]) == 1

    def test_bad_bodies_are_400(self, empi: Empi) -> None:
        error(empi.post("Patient/$match", resident(MRN_A, "A1")), 400, "RHIP-FHIR-0001")  # not Parameters
        error(empi.post("Patient/$match", params(("count", "3"))), 400, "RHIP-FHIR-0001")  # no resource
        observation = {"resourceType": "Observation", "status": "final"}
        error(empi.post("Patient/$match", params(("resource", observation))), 400, "RHIP-EMPI-0013")
        error(
            empi.post("Patient/$match", params(("resource", resident(MRN_A, "1")), ("count", "x"))),
            400,
            "RHIP-FHIR-0001",
        )
        error(
            empi.post("Patient/$match", params(("resource", resident(MRN_A, "1")), ("bogus", "1"))),
            400,
            "RHIP-FHIR-0001",
        )
        assert empi.get("Patient/$match").status == 405


class TestPix:
    def test_pix_answers_the_other_identifiers_and_every_source_patient(self, empi: Empi) -> None:
        p = two_institutions(empi)
        found = empi.ok(empi.get("Patient/$ihe-pix", f"sourceIdentifier={MRN_A}|A1"))
        idents = [
            (i["valueIdentifier"]["system"], i["valueIdentifier"]["value"])
            for i in named(found, "targetIdentifier")
        ]
        # PIXm: the sourceIdentifier itself is not answered.
        assert set(idents) == {(MRN_B, "B1"), (ID_CARD, ID_NUMBER), (MASTER_SYSTEM, p.master)}
        assert len(idents) == len(set(idents))
        targets = {t["valueReference"]["reference"] for t in named(found, "targetId")}
        assert targets == {f"Patient/{p.a}", f"Patient/{p.b}"}

    def test_target_system_and_post(self, empi: Empi) -> None:
        p = two_institutions(empi)
        only_b = empi.ok(empi.get("Patient/$ihe-pix", f"sourceIdentifier={MRN_A}|A1&targetSystem={MRN_B}"))
        assert [i["valueIdentifier"] for i in named(only_b, "targetIdentifier")] == [
            {"system": MRN_B, "value": "B1"}
        ]
        nobody = empi.ok(
            empi.get("Patient/$ihe-pix", f"sourceIdentifier={MRN_A}|A1&targetSystem=urn:unknown")
        )
        assert named(nobody, "targetIdentifier") == []
        body = params(
            ("sourceIdentifier", {"valueIdentifier": {"system": MRN_B, "value": "B1"}}),
            ("targetSystem", MRN_A),
            ("_format", "application/fhir+json"),
        )
        posted = empi.ok(empi.post("Patient/$ihe-pix", body))
        assert [i["valueIdentifier"]["value"] for i in named(posted, "targetIdentifier")] == ["A1"]
        by_master = empi.ok(empi.get("Patient/$ihe-pix", f"sourceIdentifier={MASTER_SYSTEM}|{p.master}"))
        assert {(i["valueIdentifier"]["system"]) for i in named(by_master, "targetIdentifier")} >= {
            MRN_A,
            MRN_B,
        }
        assert len(named(by_master, "targetId")) == 2

    def test_unknown_identifier_is_404_not_found(self, empi: Empi) -> None:
        two_institutions(empi)
        outcome = error(
            empi.get("Patient/$ihe-pix", f"sourceIdentifier={MRN_A}|nobody"), 404, "RHIP-FHIR-0002"
        )
        assert outcome["issue"][0]["code"] == "not-found"
        assert outcome["issue"][0]["diagnostics"] == "sourceIdentifier Patient Identifier not found"
        error(empi.get("Patient/$ihe-pix", f"sourceIdentifier={MASTER_SYSTEM}|nobody"), 404, "RHIP-FHIR-0002")
        error(empi.get("Patient/$ihe-pix", "sourceIdentifier=A1"), 400, "RHIP-FHIR-0001")
        error(empi.get("Patient/$ihe-pix"), 400, "RHIP-FHIR-0001")
        xml = params(("sourceIdentifier", f"{MRN_A}|A1"), ("_format", "application/fhir+xml"))
        error(empi.post("Patient/$ihe-pix", xml), 406, "RHIP-FHIR-0009")


class TestSearch:
    def test_masters_by_pinyin_and_by_identifier(self, empi: Empi) -> None:
        p = two_institutions(empi)
        by_pinyin = empi.ok(empi.get("Patient/$empi-masters", "pinyin=zhangwei"))
        assert [e["resource"]["id"] for e in by_pinyin["entry"]] == [p.master]
        assert all(e["search"]["mode"] == "match" for e in by_pinyin["entry"])
        by_id = empi.ok(empi.post("Patient/$empi-masters", params(("identifier", f"{MRN_B}|B1"))))
        assert [e["resource"]["id"] for e in by_id["entry"]] == [p.master]
        none = empi.ok(empi.get("Patient/$empi-masters", "pinyin=zhangwei&birthdate=1950-01-01"))
        assert none["entry"] == []
        assert (
            empi.ok(empi.get("Patient/$empi-masters", "name=张伟&gender=male"))["entry"][0]["resource"]["id"]
            == p.master
        )

    def test_masters_paging(self, empi: Empi) -> None:
        p = two_institutions(empi, third=True)
        first = empi.ok(empi.get("Patient/$empi-masters", "pinyin=zhangwei&_count=1"))
        nxt = next(lk["url"] for lk in first["link"] if lk["relation"] == "next")
        parts = urlsplit(nxt)
        assert parts.path.endswith("/Patient/$empi-masters")
        second = empi.ok(empi.get("Patient/$empi-masters", parts.query))
        ids = [e["resource"]["id"] for e in first["entry"] + second["entry"]]
        assert len(ids) == 2 and p.master in ids and len(set(ids)) == 2
        assert p.c is not None and empi.master_of(p.c) in ids

    def test_masters_errors(self, empi: Empi) -> None:
        error(empi.get("Patient/$empi-masters", "gender=male"), 400, "RHIP-EMPI-0014")
        error(empi.get("Patient/$empi-masters", "pinyin=zhangwei&birthdate=1949"), 400, "RHIP-FHIR-0001")
        error(empi.get("Patient/$empi-masters", "identifier=B1"), 400, "RHIP-FHIR-0001")
        error(empi.get("Patient/$empi-masters", "pinyin=zhangwei&_count=-1"), 400, "RHIP-FHIR-0001")
        error(empi.get("Patient/$empi-masters", "pinyin=a&pinyin=b"), 400, "RHIP-FHIR-0001")

    def test_pinyin_search_parameter_finds_source_patients(self, empi: Empi) -> None:
        p = two_institutions(empi, third=True)
        bundle = empi.ok(empi.get("Patient", "pinyin=zhangwei"))
        assert {e["resource"]["id"] for e in bundle["entry"]} == {p.a, p.b, p.c}
        spaced = empi.ok(empi.get("Patient", "pinyin:exact=Zhang Wei&identifier=urn:rhip:mrn:B|B1"))
        assert [e["resource"]["id"] for e in spaced["entry"]] == [p.b]
        assert empi.ok(empi.get("Patient", "pinyin=lisi"))["total"] == 0
        error(empi.get("Patient", "pinyin:contains=zhang"), 400, "RHIP-FHIR-0001")


class TestManualDecisions:
    def test_unlink_then_link(self, empi: Empi) -> None:
        p = two_institutions(empi, third=True)
        actor = {"X-Rhip-Actor": "dr.li"}
        unlinked = empi.ok(empi.post("Patient/$empi-unlink", params(("patient", p.b)), headers=actor))
        own = value(unlinked, "master")
        assert value(unlinked, "patient") == p.b and value(unlinked, "previous") == p.master
        assert own != p.master and empi.master_of(p.b) == own
        links = named(empi.ok(empi.get("Patient/$empi-query-links", f"patient={p.b}")), "link")
        assert value(links[0]["part"], "origin") == "manual"
        # Linking B back by hand withdraws the "B is not A" decision the unlink recorded.
        back = params(("patient", p.b), ("master", p.master), ("actor", "dr.li"))
        relinked = empi.ok(empi.post("Patient/$empi-link", back))
        assert value(relinked, "master") == p.master and empi.master_of(p.b) == p.master
        assert p.c is not None
        linked = empi.ok(
            empi.post(
                "Patient/$empi-link",
                params(("patient", f"Patient/{p.c}"), ("master", p.master), ("actor", "dr.li")),
            )
        )
        assert value(linked, "master") == p.master and value(linked, "previous") != p.master
        assert empi.master_of(p.c) == p.master

    def test_merge_and_unmerge(self, empi: Empi) -> None:
        p = two_institutions(empi, third=True)
        assert p.c is not None
        other = empi.master_of(p.c)
        merged = empi.ok(
            empi.post(
                "Patient/$empi-merge", params(("from", other), ("into", p.master), ("actor", "dr.wang"))
            )
        )
        assert value(merged, "from") == other and value(merged, "into") == p.master
        assert [m["valueString"] for m in named(merged, "moved")] == [p.c]
        assert empi.master_of(p.c) == p.master
        error(empi.get(f"Patient/{other}/$empi-master"), 410, "RHIP-EMPI-0003")
        restored = empi.ok(
            empi.post("Patient/$empi-unmerge", params(("master", other), ("actor", "dr.wang")))
        )
        assert value(restored, "master") == other and value(restored, "from") == p.master
        assert [m["valueString"] for m in named(restored, "restored")] == [p.c]
        assert empi.master_of(p.c) == other
        assert empi.ok(empi.get(f"Patient/{other}/$empi-master"))["id"] == other

    def test_errors(self, empi: Empi) -> None:
        p = two_institutions(empi)
        no_actor = params(("patient", p.b), ("master", p.master))
        error(empi.post("Patient/$empi-link", no_actor), 400, "RHIP-EMPI-0004")
        unknown = params(("patient", p.b), ("master", "no-such-master"), ("actor", "dr.li"))
        error(empi.post("Patient/$empi-link", unknown), 404, "RHIP-EMPI-0002")
        stranger = params(("patient", "nobody"), ("master", p.master), ("actor", "dr.li"))
        error(empi.post("Patient/$empi-link", stranger), 404, "RHIP-EMPI-0001")
        error(
            empi.post("Patient/$empi-link", params(("master", p.master), ("actor", "x"))),
            400,
            "RHIP-FHIR-0001",
        )
        itself = params(("from", p.master), ("into", p.master), ("actor", "dr.li"))
        error(empi.post("Patient/$empi-merge", itself), 400, "RHIP-EMPI-0007")
        error(
            empi.post("Patient/$empi-unmerge", params(("master", p.master), ("actor", "x"))),
            400,
            "RHIP-EMPI-0008",
        )
        assert empi.get("Patient/$empi-link", f"patient={p.b}").status == 405
        error(empi.post(f"Patient/{p.b}/$empi-link", no_actor), 400, "RHIP-FHIR-0001")  # type level only
        # An actor given twice is refused rather than one of them chosen.
        twice = params(("patient", p.b), ("actor", "a"), ("actor", "b"))
        error(empi.post("Patient/$empi-unlink", twice), 400, "RHIP-FHIR-0001")


class TestReviewQueue:
    def test_list_show_and_separate(self, empi: Empi) -> None:
        p = two_institutions(empi, third=True)
        queue = empi.ok(empi.get("Patient/$empi-review-list"))
        assert value(queue, "total") == 1
        (item,) = named(queue, "item")
        review_id = value(item["part"], "id")
        assert value(item["part"], "patient") == p.c and value(item["part"], "master") == p.master
        assert value(item["part"], "status") == "open" and not named(item["part"], "actor")

        shown = empi.ok(empi.get("Patient/$empi-review-show", f"id={review_id}"))
        assert value(shown, "id") == review_id and value(shown, "master") == p.master
        record = named(shown, "record")[0]["part"]
        assert value(record, "name") == "张伟" and value(record, "birth_date") == "1949-12-31"
        candidates = named(shown, "candidate")
        assert {value(c["part"], "patient") for c in candidates} == {p.a, p.b}
        for candidate in candidates:
            assert value(named(candidate["part"], "levels")[0]["part"], "name") == "exact"
            assert 0 < value(candidate["part"], "probability") < 1
            assert value(named(candidate["part"], "record")[0]["part"], "id_number") == ID_NUMBER

        decide = params(("id", {"valueInteger": review_id}), ("decision", {"valueCode": "separate"}))
        decided = empi.ok(
            empi.post("Patient/$empi-review-decide", decide, headers={"X-Rhip-Actor": "dr.zhao"})
        )
        assert value(decided, "patient") == p.c and value(decided, "separated_from") == p.master
        assert value(empi.ok(empi.get("Patient/$empi-review-list")), "total") == 0
        every = empi.ok(empi.get("Patient/$empi-review-list", "status=all"))
        (done,) = named(every, "item")
        assert value(done["part"], "status") == "separate" and value(done["part"], "actor") == "dr.zhao"
        again = empi.post("Patient/$empi-review-decide", decide, headers={"X-Rhip-Actor": "dr.zhao"})
        error(again, 409, "RHIP-EMPI-0011")

    def test_decide_link(self, empi: Empi) -> None:
        p = two_institutions(empi, third=True)
        (item,) = named(empi.ok(empi.get("Patient/$empi-review-list")), "item")
        review_id = value(item["part"], "id")
        body = params(("id", str(review_id)), ("decision", "link"), ("actor", "dr.zhao"))
        decided = empi.ok(empi.post("Patient/$empi-review-decide", body))
        assert value(decided, "master") == p.master
        assert p.c is not None and empi.master_of(p.c) == p.master

    def test_review_errors(self, empi: Empi) -> None:
        two_institutions(empi, third=True)
        error(empi.get("Patient/$empi-review-list", "status=maybe"), 400, "RHIP-FHIR-0001")
        error(empi.get("Patient/$empi-review-show"), 400, "RHIP-FHIR-0001")
        error(empi.get("Patient/$empi-review-show", "id=x"), 400, "RHIP-FHIR-0001")
        missing = empi.get("Patient/$empi-review-show", "id=999")
        assert 400 <= missing.status < 500 and "RHIP-EMPI-0010" in missing.body.decode()  # type: ignore[union-attr]
        bad = params(("id", "999"), ("decision", "link"), ("actor", "x"))
        error(empi.post("Patient/$empi-review-decide", bad), 404, "RHIP-EMPI-0010")
        (item,) = named(empi.ok(empi.get("Patient/$empi-review-list")), "item")
        maybe = params(("id", str(value(item["part"], "id"))), ("decision", "maybe"), ("actor", "x"))
        error(empi.post("Patient/$empi-review-decide", maybe), 400, "RHIP-EMPI-0012")


class TestDefinitions:
    def test_every_operation_definition_is_served(self, empi: Empi) -> None:
        for definition in defs.ALL:
            served = empi.ok(empi.get(f"OperationDefinition/{definition['id']}"))
            assert served == definition
            assert served["url"] == f"https://rhip.dev/fhir/OperationDefinition/{definition['id']}"
            assert served["resource"] == ["Patient"] and served["status"] == "active"
        listed = empi.ok(empi.get("OperationDefinition", "code=ihe-pix"))
        assert [e["resource"]["base"] for e in listed["entry"]] == [defs.PIXM_PIX]
        assert empi.ok(empi.get("OperationDefinition/Patient-match"))["base"] == defs.PATIENT_MATCH

    def test_definitions_are_valid(self, empi: Empi) -> None:
        def check(parameter: dict[str, Any]) -> None:
            assert {"name", "use", "min", "max", "documentation"} <= parameter.keys(), parameter
            assert "type" in parameter or "part" in parameter, parameter  # opd-1
            assert "searchType" not in parameter or parameter["type"] == "string", parameter  # opd-2
            for part in parameter.get("part", []):
                check(part)

        for definition in defs.ALL:
            assert empi.platform.validator.validate(definition) == []
            assert definition["affectsState"] == (
                definition["code"]
                in {"empi-link", "empi-unlink", "empi-merge", "empi-unmerge", "empi-review-decide"}
            )
            for parameter in definition["parameter"]:
                check(parameter)

    def test_capability_statement_lists_operations_and_pinyin(self, empi: Empi) -> None:
        statement = empi.ok(empi.get("metadata"))
        (patient,) = [r for r in statement["rest"][0]["resource"] if r["type"] == "Patient"]
        operations = {o["name"]: o["definition"] for o in patient["operation"]}
        for definition in defs.ALL:
            assert operations[definition["code"]] == definition["url"]
        pinyin = [s for s in patient["searchParam"] if s["name"] == "pinyin"]
        assert pinyin and pinyin[0]["definition"] == defs.PINYIN_URL

    def test_bootstrap_registers_the_operations(self, settings: Settings) -> None:
        db = database(settings)
        upgrade(db.engine)
        db.dispose()
        plat = build_platform(settings)
        try:
            resp = plat.fhir.handle(FhirRequest("GET", "OperationDefinition/Patient-ihe-pix", base_url=BASE))
            assert resp.status == 200
        finally:
            plat.close()


class TestHelpers:
    def test_parts_of(self) -> None:
        parts = parts_of(
            {
                "s": "x",
                "n": 3,
                "big": 2**40,
                "f": 0.5,
                "b": True,
                "none": None,
                "l": ["a", "b"],
                "d": {"k": "v", "e": None},
                "empty": {"e": None},
            }
        )
        assert parts == [
            {"name": "s", "valueString": "x"},
            {"name": "n", "valueInteger": 3},
            {"name": "big", "valueDecimal": 2**40},
            {"name": "f", "valueDecimal": 0.5},
            {"name": "b", "valueBoolean": True},
            {"name": "l", "valueString": "a"},
            {"name": "l", "valueString": "b"},
            {"name": "d", "part": [{"name": "k", "valueString": "v"}]},
        ]

    @pytest.mark.parametrize(
        ("given", "expected"),
        [("abc", "abc"), ("Patient/abc", "abc"), (f"{BASE}/Patient/abc", "abc"), (" abc ", "abc")],
    )
    def test_local_id(self, given: str, expected: str) -> None:
        assert local_id(given, "patient") == expected

    @pytest.mark.parametrize("given", ["Observation/abc", "a b", "", "Patient/abc/_history/1"])
    def test_local_id_refuses(self, given: str) -> None:
        with pytest.raises(InvalidRequest):
            local_id(given, "patient")

    def test_operation_input_reads_query_and_body(self) -> None:
        body = params(
            ("patient", {"valueReference": {"reference": "Patient/p1"}}),
            ("id", {"valueInteger": 7}),
            ("flag", {"valueBoolean": False}),
            ("ident", {"valueIdentifier": {"value": "v"}}),
        )
        req = FhirRequest(
            "POST",
            "Patient/$x",
            [("master", "m1"), ("_pretty", "true")],
            {"content-type": "application/fhir+json"},
            orjson.dumps(body),
        )
        inp = operation_input(req, "x", {"patient", "master", "id", "flag", "ident"})
        assert inp.one("patient") == "Patient/p1" and inp.one("master") == "m1"
        assert inp.integer("id", 0, 1, 5) == 5 and inp.boolean("flag") is False and inp.one("ident") == "v"
        coding = params(("patient", {"valueCoding": {"code": "x"}}))
        req = FhirRequest(
            "POST", "Patient/$x", [], {"content-type": "application/fhir+json"}, orjson.dumps(coding)
        )
        with pytest.raises(InvalidRequest, match="Coding"):
            operation_input(req, "x", {"patient"})
        xml = orjson.dumps(params(("_format", "xml")))
        req = FhirRequest("POST", "Patient/$x", [], {"content-type": "application/fhir+json"}, xml)
        with pytest.raises(NotAcceptable):
            operation_input(req, "x", {"patient"})
