"""Operations and search parameters contributed by capabilities (rhip.fhir.rest.extensions), through a real
FhirService on the test database: routing, errors, OperationDefinitions, the CapabilityStatement, search
rewriting with paging, and operations inside Bundles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from rhip.bootstrap.container import build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.core.errors import InvalidRequest
from rhip.db.migrate import upgrade
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest.extensions import (
    MAX_RESOLVED_IDS,
    Extensions,
    OperationSpec,
    SearchParamExtension,
)
from rhip.fhir.rest.messages import FhirRequest, FhirResponse

from .conftest import FhirClient, assert_error, body_of, diagnostics, ids, next_link, patient

OD = "http://rhip.test/fhir/OperationDefinition"


def definition(
    op_id: str, code: str, *, system: bool = False, type_: bool = False, instance: bool = False
) -> dict[str, Any]:
    """A minimal OperationDefinition."""
    return {
        "resourceType": "OperationDefinition",
        "id": op_id,
        "url": f"{OD}/{op_id}",
        "name": code.title().replace("-", ""),
        "status": "active",
        "kind": "operation",
        "code": code,
        "system": system,
        "type": type_,
        "instance": instance,
        "parameter": [{"name": "return", "use": "out", "min": 1, "max": "1", "type": "string"}],
    }


def echo(repo: FhirRepository, req: FhirRequest, rid: str | None) -> FhirResponse:
    """A fake operation: says where and how it was invoked; on an instance, reads it through ``repo``."""
    if any(k == "fail" for k, _ in req.query):
        raise InvalidRequest("asked to fail")
    params = [
        {"name": "method", "valueString": req.method},
        {"name": "path", "valueString": req.path},
        {"name": "id", "valueString": rid or "-"},
    ]
    if req.body:
        params.append({"name": "body", "valueString": orjson.loads(req.body)["resourceType"]})
    if rid is not None:
        family = repo.read("Patient", rid).resource()["name"][0]["family"]
        params.append({"name": "family", "valueString": family})
    return FhirResponse(200, orjson.dumps({"resourceType": "Parameters", "parameter": params}))


class NicknameIndex:
    """A fake capability-side index: nickname -> Patient ids."""

    def __init__(self) -> None:
        self.ids: dict[str, list[str]] = {}
        self.calls: list[tuple[str, list[str]]] = []

    def resolve(self, modifier: str, values: list[str]) -> list[str] | None:
        """The ids of every nickname in ``values``; None for 'everyone' (too many)."""
        self.calls.append((modifier, values))
        if modifier not in ("", "exact"):
            raise InvalidRequest(
                f"nickname does not support :{modifier}", expression=[f"nickname:{modifier}"]
            )
        if "everyone" in values:
            return None
        if "huge" in values:
            return [f"x{i}" for i in range(MAX_RESOLVED_IDS + 1)]
        return [i for v in values for i in self.ids.get(v, [])]


def parameters(resp: FhirResponse) -> dict[str, str]:
    """The valueString parameters of a Parameters answer."""
    assert resp.status == 200, (resp.status, resp.body)
    return {p["name"]: p["valueString"] for p in body_of(resp)["parameter"]}


def extensions(index: NicknameIndex) -> Extensions:
    """Echo at type and instance level (GET, POST), instance only, type only, system level (POST only)."""
    ext = Extensions()
    both = definition("Patient-echo", "echo", type_=True, instance=True)
    ext.add_operation(OperationSpec("echo", "Patient", True, True, ("GET", "POST"), echo, both))
    only_i = definition("Patient-inst", "inst", instance=True)
    ext.add_operation(OperationSpec("inst", "Patient", False, True, ("POST",), echo, only_i))
    only_t = definition("Patient-typ", "typ", type_=True)
    ext.add_operation(OperationSpec("typ", "Patient", True, False, ("GET",), echo, only_t))
    ping = definition("ping", "ping", system=True)
    ext.add_operation(OperationSpec("ping", None, False, False, ("POST",), echo, ping))
    ext.add_search_param(
        SearchParamExtension(
            "Patient", "nickname", "string", "A nickname the fake index knows", f"{OD}/nick", index.resolve
        )
    )
    return ext


@pytest.fixture
def index() -> NicknameIndex:
    """The fake index behind the nickname parameter."""
    return NicknameIndex()


@pytest.fixture
def ext_fhir(settings: Settings, index: NicknameIndex) -> Iterator[FhirClient]:
    """A client of a platform wired with the fake extensions."""
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(
        settings,
        extensions=extensions(index),
        empi=False,
        exchange=False,
        signatures=False,
        terminology=False,
    )
    try:
        yield FhirClient(plat)
    finally:
        plat.close()


PARAMS = {"resourceType": "Parameters", "parameter": [{"name": "x", "valueString": "y"}]}


class TestRegistry:
    def test_duplicates_and_builtins_are_refused(self, index: NicknameIndex) -> None:
        ext = extensions(index)
        again = definition("Patient-echo", "echo", type_=True)
        with pytest.raises(ValueError, match="twice"):
            ext.add_operation(OperationSpec("echo", "Patient", True, False, ("GET",), echo, again))
        with pytest.raises(ValueError, match="built in"):
            ext.add_operation(
                OperationSpec(
                    "validate", "Patient", True, False, ("POST",), echo, definition("v", "validate")
                )
            )
        other = definition("Patient-echo", "other", type_=True)  # same id, another definition
        with pytest.raises(ValueError, match="different OperationDefinitions"):
            ext.add_operation(OperationSpec("other", "Patient", True, False, ("GET",), echo, other))
        nick = next(iter(ext.search_params.values()))
        with pytest.raises(ValueError, match="twice"):
            ext.add_search_param(nick)

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (("$x", "Patient", True, False, ("GET",)), "without"),
            (("x", None, True, False, ("GET",)), "system-level"),
            (("x", "Patient", False, False, ("GET",)), "type or the instance"),
            (("x", "Patient", True, False, ("PUT",)), "GET and/or POST"),
        ],
    )
    def test_inconsistent_specs_are_refused(self, args: tuple[Any, ...], message: str) -> None:
        with pytest.raises(ValueError, match=message):
            OperationSpec(*args, echo, definition("x", "x"))

    def test_definition_must_match(self) -> None:
        with pytest.raises(ValueError, match="code"):
            OperationSpec("x", "Patient", True, False, ("GET",), echo, definition("x", "y"))
        with pytest.raises(ValueError, match="no url"):
            OperationSpec("x", "Patient", True, False, ("GET",), echo, {**definition("x", "x"), "url": ""})

    def test_rewrite_intersects_and_keeps_the_clients_parameters_for_links(
        self, index: NicknameIndex
    ) -> None:
        index.ids = {"wang": ["a", "b,c"], "li": ["b,c", "d"]}
        ext = extensions(index)
        rewritten = ext.rewrite_search(
            "Patient", [("gender", "male"), ("nickname", "wang"), ("nickname", "li")]
        )
        assert rewritten is not None
        assert rewritten.ids == ("b,c",)
        assert rewritten.params == [("gender", "male"), ("_id", "b\\,c")]
        assert rewritten.link_params([("gender", "male"), ("_id", "b\\,c")]) == [
            ("gender", "male"),
            ("nickname", "wang"),
            ("nickname", "li"),
        ]
        assert ext.rewrite_search("Patient", [("gender", "male")]) is None
        assert ext.rewrite_search("Observation", [("nickname", "wang")]) is None


class TestOperations:
    def test_type_level_get_and_post(self, ext_fhir: FhirClient) -> None:
        got = parameters(ext_fhir.get("Patient/$echo", "a=1"))
        assert got == {"method": "GET", "path": "Patient/$echo", "id": "-"}
        posted = parameters(ext_fhir.post("Patient/$echo", PARAMS))
        assert posted["method"] == "POST" and posted["body"] == "Parameters" and posted["id"] == "-"

    def test_instance_level_gets_the_id_and_the_repository(self, ext_fhir: FhirClient) -> None:
        pid = ext_fhir.create(patient("张", "三"))["id"]
        got = parameters(ext_fhir.post(f"Patient/{pid}/$inst", PARAMS))
        assert got["id"] == pid and got["family"] == "张"
        assert parameters(ext_fhir.get(f"Patient/{pid}/$echo"))["id"] == pid

    def test_handler_errors_become_operation_outcomes(self, ext_fhir: FhirClient) -> None:
        assert_error(ext_fhir.get("Patient/$echo", "fail=1"), 400, "RHIP-FHIR-0001")
        assert_error(ext_fhir.get("Patient/nobody/$echo"), 404, "RHIP-FHIR-0002")

    def test_system_level(self, ext_fhir: FhirClient) -> None:
        got = parameters(ext_fhir.post("$ping", PARAMS))
        assert got["path"] == "$ping" and got["id"] == "-"

    def test_method_not_allowed(self, ext_fhir: FhirClient) -> None:
        out = assert_error(ext_fhir.get("$ping"), 405, "RHIP-FHIR-0011")
        assert "POST" in diagnostics(out)
        assert_error(ext_fhir.post("Patient/$typ", PARAMS), 405, "RHIP-FHIR-0011")
        assert_error(ext_fhir.delete("Patient/$echo"), 405, "RHIP-FHIR-0011")

    @pytest.mark.parametrize(
        ("method", "path", "where"),
        [
            ("GET", "Patient/$inst", "/Patient/[id]/$inst"),
            ("GET", "Patient/p1/$typ", "/Patient/$typ"),
            ("POST", "Patient/$ping", "/$ping"),
            ("GET", "$echo", "/Patient/$echo or /Patient/[id]/$echo"),
            ("GET", "Observation/$echo", "/Patient/$echo"),
        ],
    )
    def test_operation_at_another_level_says_where(
        self, ext_fhir: FhirClient, method: str, path: str, where: str
    ) -> None:
        resp = ext_fhir.request(method, path, PARAMS if method == "POST" else None)
        out = assert_error(resp, 400, "RHIP-FHIR-0001")
        assert where in diagnostics(out)

    @pytest.mark.parametrize("path", ["$nope", "Patient/$nope", "Patient/p1/$nope"])
    def test_unknown_operation_is_not_supported(self, ext_fhir: FhirClient, path: str) -> None:
        assert_error(ext_fhir.get(path), 400, "RHIP-FHIR-0013")

    def test_builtin_operations_still_work(self, ext_fhir: FhirClient) -> None:
        pid = ext_fhir.create(patient())["id"]
        assert ext_fhir.post("Patient/$validate", patient()).status == 200
        everything = body_of(ext_fhir.get(f"Patient/{pid}/$everything"))
        assert ids(everything) == [f"Patient/{pid}"]


class TestOperationDefinitions:
    def test_read_from_the_registry(self, ext_fhir: FhirClient) -> None:
        got = ext_fhir.read("OperationDefinition", "Patient-echo")
        assert got["url"] == f"{OD}/Patient-echo" and got["code"] == "echo"

    def test_registered_ids_are_read_only(self, ext_fhir: FhirClient) -> None:
        assert_error(
            ext_fhir.put("OperationDefinition/ping", definition("ping", "ping")), 405, "RHIP-FHIR-0011"
        )
        assert_error(ext_fhir.delete("OperationDefinition/ping"), 405, "RHIP-FHIR-0011")

    def test_stored_definitions_stay_readable_by_id(self, ext_fhir: FhirClient) -> None:
        stored = ext_fhir.create(definition("ignored", "local", system=True))
        assert ext_fhir.read("OperationDefinition", stored["id"])["code"] == "local"
        assert_error(ext_fhir.get("OperationDefinition/missing"), 404, "RHIP-FHIR-0002")

    def test_search_lists_the_registered_definitions(self, ext_fhir: FhirClient) -> None:
        ext_fhir.create(definition("ignored", "local", system=True))
        listed = ext_fhir.search("OperationDefinition")
        assert listed["type"] == "searchset" and listed["total"] == 4
        assert sorted(ids(listed)) == [
            "OperationDefinition/Patient-echo",
            "OperationDefinition/Patient-inst",
            "OperationDefinition/Patient-typ",
            "OperationDefinition/ping",
        ]
        assert ids(ext_fhir.search("OperationDefinition", "code=ping,typ")) == [
            "OperationDefinition/Patient-typ",
            "OperationDefinition/ping",
        ]
        assert ids(ext_fhir.search("OperationDefinition", f"url={OD}/ping")) == ["OperationDefinition/ping"]
        counted = ext_fhir.search("OperationDefinition", "_summary=count")
        assert counted["total"] == 4 and "entry" not in counted

    def test_search_reports_unsupported_parameters(self, ext_fhir: FhirClient) -> None:
        lenient = ext_fhir.search("OperationDefinition", "status=active")
        assert lenient["total"] == 4
        assert any(e["search"]["mode"] == "outcome" for e in lenient["entry"])
        strict = ext_fhir.get("OperationDefinition", "status=active", headers={"Prefer": "handling=strict"})
        assert_error(strict, 400, "RHIP-FHIR-0012")


class TestCapabilityStatement:
    def test_lists_operations_and_search_parameters(self, ext_fhir: FhirClient) -> None:
        statement = body_of(ext_fhir.get("metadata"))
        rest = statement["rest"][0]
        assert rest["operation"] == [{"name": "ping", "definition": f"{OD}/ping"}]
        patient_entry = next(r for r in rest["resource"] if r["type"] == "Patient")
        names = [o["name"] for o in patient_entry["operation"]]
        assert names == ["everything", "validate", "echo", "inst", "typ"]
        nick = [p for p in patient_entry["searchParam"] if p["name"] == "nickname"]
        assert nick == [
            {
                "name": "nickname",
                "definition": f"{OD}/nick",
                "type": "string",
                "documentation": "A nickname the fake index knows",
            }
        ]
        observation = next(r for r in rest["resource"] if r["type"] == "Observation")
        assert [o["name"] for o in observation["operation"]] == ["validate"]
        assert "nickname" not in {p["name"] for p in observation["searchParam"]}

    def test_built_in_operations_come_first(self, fhir: FhirClient) -> None:
        rest = body_of(fhir.get("metadata"))["rest"][0]
        assert "operation" not in rest
        patient_entry = next(r for r in rest["resource"] if r["type"] == "Patient")
        names = [o["name"] for o in patient_entry["operation"]]
        assert names[:2] == ["everything", "validate"]
        assert "match" in names  # the default platform wires the EMPI


@pytest.fixture
def people(ext_fhir: FhirClient, index: NicknameIndex) -> dict[str, str]:
    """Four patients, three nicknamed: wang -> a, b; li -> b, c."""
    made = {
        k: ext_fhir.create(patient(family=k, gender="female" if k == "c" else "male"))["id"] for k in "abcd"
    }
    index.ids = {"wang": [made["a"], made["b"]], "li": [made["b"], made["c"]]}
    return made


class TestSearch:
    def test_resolves_to_the_ids(self, ext_fhir: FhirClient, people: dict[str, str]) -> None:
        found = ext_fhir.search("Patient", "nickname=wang")
        assert sorted(ids(found)) == sorted(f"Patient/{people[k]}" for k in "ab")
        assert found["total"] == 2

    def test_values_are_ored_and_repeats_anded(
        self, ext_fhir: FhirClient, people: dict[str, str], index: NicknameIndex
    ) -> None:
        both = ext_fhir.search("Patient", "nickname=wang,li")
        assert sorted(ids(both)) == sorted(f"Patient/{people[k]}" for k in "abc")
        assert index.calls[-1] == ("", ["wang", "li"])
        assert ids(ext_fhir.search("Patient", "nickname=wang&nickname=li")) == [f"Patient/{people['b']}"]

    def test_intersects_with_id_and_other_parameters(
        self, ext_fhir: FhirClient, people: dict[str, str]
    ) -> None:
        found = ext_fhir.search("Patient", f"nickname=wang&_id={people['b']},{people['d']}")
        assert ids(found) == [f"Patient/{people['b']}"]
        assert ids(ext_fhir.search("Patient", "nickname=li&gender=female")) == [f"Patient/{people['c']}"]

    def test_modifier_is_passed_to_the_resolver(
        self, ext_fhir: FhirClient, people: dict[str, str], index: NicknameIndex
    ) -> None:
        assert len(ids(ext_fhir.search("Patient", "nickname:exact=li"))) == 2
        assert index.calls[-1] == ("exact", ["li"])
        assert_error(ext_fhir.get("Patient", "nickname:contains=li"), 400, "RHIP-FHIR-0001")

    @pytest.mark.parametrize(
        "query", ["nickname=zhao", "nickname=wang&_id=nobody", "nickname=wang&nickname=zhao&gender=male"]
    )
    def test_no_match_is_an_empty_searchset(
        self, ext_fhir: FhirClient, people: dict[str, str], query: str
    ) -> None:
        found = ext_fhir.search("Patient", query)
        assert found["type"] == "searchset" and found["total"] == 0 and "entry" not in found

    def test_no_match_still_validates_the_other_parameters(self, ext_fhir: FhirClient) -> None:
        assert_error(ext_fhir.get("Patient", "nickname=zhao&birthdate=notadate"), 400, "RHIP-FHIR-0001")

    @pytest.mark.parametrize("value", ["everyone", "huge"])
    def test_too_many_matches_is_a_400(self, ext_fhir: FhirClient, value: str) -> None:
        out = assert_error(ext_fhir.get("Patient", f"nickname={value}"), 400, "RHIP-FHIR-0014")
        assert "too many" in diagnostics(out) and "add criteria" in diagnostics(out)

    def test_empty_value_is_a_400(self, ext_fhir: FhirClient) -> None:
        assert_error(ext_fhir.get("Patient", "nickname=wang,"), 400, "RHIP-FHIR-0001")

    def test_post_search(self, ext_fhir: FhirClient, people: dict[str, str]) -> None:
        resp = ext_fhir.post(
            "Patient/_search", b"nickname=li", content_type="application/x-www-form-urlencoded"
        )
        assert resp.status == 200
        assert sorted(ids(body_of(resp))) == sorted(f"Patient/{people[k]}" for k in "bc")

    @pytest.mark.parametrize("sort", [None, "-family"])
    def test_paging_links_repeat_the_parameter(
        self, ext_fhir: FhirClient, index: NicknameIndex, sort: str | None
    ) -> None:
        made = [ext_fhir.create(patient(family=f"f{i}"))["id"] for i in range(5)]
        ext_fhir.create(patient(family="other"))
        index.ids = {"zhang": made}
        query = "nickname=zhang&_count=2" + (f"&_sort={sort}" if sort else "")
        pages = list(ext_fhir.pages("Patient", query))
        assert len(pages) == 3
        seen = [i for page in pages for i in ids(page)]
        assert sorted(seen) == sorted(f"Patient/{m}" for m in made)
        link = dict(parse_qsl(urlsplit(next_link(pages[0]) or "").query))
        assert link["nickname"] == "zhang" and "_id" not in link
        previous = next(lk["url"] for lk in pages[1]["link"] if lk["relation"] == "previous")
        assert ids(ext_fhir.follow(previous)) == ids(pages[0])


def entry(method: str, url: str, resource: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Bundle entry."""
    out: dict[str, Any] = {"request": {"method": method, "url": url}}
    if resource is not None:
        out["resource"] = resource
    return out


class TestBundles:
    def test_operations_and_extended_search_in_a_batch(
        self, ext_fhir: FhirClient, people: dict[str, str]
    ) -> None:
        batch = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                entry("GET", "Patient/$echo?a=1"),
                entry("POST", "Patient/$echo", PARAMS),
                entry("POST", f"Patient/{people['a']}/$inst", PARAMS),
                entry("POST", "$ping", PARAMS),
                entry("GET", "$ping"),
                entry("GET", "Patient?nickname=li"),
                entry("GET", "Patient/$echo?fail=1"),
            ],
        }
        resp = ext_fhir.post("", batch)
        assert resp.status == 200
        answer = body_of(resp)
        statuses = [e["response"]["status"].split()[0] for e in answer["entry"]]
        assert statuses == ["200", "200", "200", "200", "405", "200", "400"]
        results = [e.get("resource") for e in answer["entry"]]
        assert results[1]["parameter"][0] == {"name": "method", "valueString": "POST"}
        assert {"name": "family", "valueString": "a"} in results[2]["parameter"]
        assert results[3]["parameter"][1] == {"name": "path", "valueString": "$ping"}
        assert sorted(ids(results[5])) == sorted(f"Patient/{people[k]}" for k in "bc")

    def test_operation_in_a_transaction_sees_its_unit_of_work(self, ext_fhir: FhirClient) -> None:
        transaction = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                entry("GET", "Patient/t1/$echo"),  # GETs run last (transaction order): after the PUT
                entry("PUT", "Patient/t1", {**patient(family="赵"), "id": "t1"}),
            ],
        }
        resp = ext_fhir.post("", transaction)
        assert resp.status == 200, resp.body
        answer = body_of(resp)
        assert [e["response"]["status"].split()[0] for e in answer["entry"]] == ["200", "201"]
        assert {"name": "family", "valueString": "赵"} in answer["entry"][0]["resource"]["parameter"]
