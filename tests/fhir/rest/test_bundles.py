"""Batch and transaction Bundles posted to the service base (docs/fhir-api.md, "Batch and transaction")."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .conftest import (
    BASE,
    ID_SYSTEM,
    FhirClient,
    assert_error,
    binary_patch,
    body_of,
    diagnostics,
    expressions,
    ids,
    observation,
    patient,
)


def urn() -> str:
    """A fresh ``urn:uuid:`` full URL."""
    return f"urn:uuid:{uuid.uuid4()}"


def entry(method: str, url: str, resource: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A Bundle entry; ``full_url`` and request fields such as ``ifNoneExist`` go in ``extra``."""
    out: dict[str, Any] = {"request": {"method": method, "url": url}}
    if "full_url" in extra:
        out["fullUrl"] = extra.pop("full_url")
    out["request"].update(extra)
    if resource is not None:
        out["resource"] = resource
    return out


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    """A Bundle of type ``kind``."""
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post_bundle(fhir: FhirClient, body: dict[str, Any], **kw: Any) -> tuple[int, dict[str, Any]]:
    """POST a Bundle to the base; returns status and the parsed answer."""
    resp = fhir.post("", body, **kw)
    return resp.status, dict(body_of(resp))


def count(fhir: FhirClient, rtype: str, query: str = "") -> int:
    """How many current resources of a type match ``query``."""
    total = fhir.search(rtype, f"{query}&_summary=count" if query else "_summary=count")["total"]
    return int(total)


def statuses(answer: dict[str, Any]) -> list[str]:
    """The response status codes (first three digits) of a response Bundle."""
    return [e["response"]["status"].split()[0] for e in answer["entry"]]


def location_id(answer_entry: dict[str, Any]) -> str:
    """The ``Type/id`` of a response entry's location."""
    loc = answer_entry["response"]["location"]
    rtype, rid = loc.split("/")[:2]
    return f"{rtype}/{rid}"


# -- transaction --------------------------------------------------------------------------------------
class TestTransaction:
    def test_urn_uuid_references_are_rewritten(self, fhir: FhirClient) -> None:
        p_url, e_url = urn(), urn()
        encounter = {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": p_url},
        }
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                entry(
                    "POST", "Observation", observation(p_url, encounter={"reference": e_url}), full_url=urn()
                ),
                entry("POST", "Patient", patient(), full_url=p_url),
                entry("POST", "Encounter", encounter, full_url=e_url),
            ),
        )
        assert status == 200, answer
        assert answer["type"] == "transaction-response"
        assert statuses(answer) == ["201", "201", "201"]
        obs_ref, pat_ref, enc_ref = (location_id(e) for e in answer["entry"])
        assert obs_ref.startswith("Observation/")
        assert pat_ref.startswith("Patient/")
        assert enc_ref.startswith("Encounter/")
        for e in answer["entry"]:
            assert e["response"]["etag"] == 'W/"1"'
            assert e["response"]["location"].endswith("/_history/1")
            assert e["fullUrl"] == f"{BASE}/{location_id(e)}"
            assert "lastModified" in e["response"]
        obs = fhir.read(*obs_ref.split("/"))
        assert obs["subject"]["reference"] == pat_ref
        assert obs["encounter"]["reference"] == enc_ref
        assert fhir.read(*enc_ref.split("/"))["subject"]["reference"] == pat_ref
        # the resource in the response is the stored one, with its references rewritten
        assert answer["entry"][0]["resource"]["subject"]["reference"] == pat_ref
        # and a search by reference finds it
        assert ids(fhir.search("Observation", f"subject={pat_ref}")) == [obs_ref]

    def test_if_none_exist_resolves_to_the_existing_resource(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001011234"))
        p_url = urn()
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Patient",
                    patient(family="重复", id_number="110101199001011234"),
                    full_url=p_url,
                    ifNoneExist=f"identifier={ID_SYSTEM}|110101199001011234",
                ),
                entry("POST", "Observation", observation(p_url), full_url=urn()),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["200", "201"]
        assert answer["entry"][0]["resource"]["id"] == existing["id"]
        obs = fhir.read(*location_id(answer["entry"][1]).split("/"))
        assert obs["subject"]["reference"] == f"Patient/{existing['id']}"
        assert count(fhir, "Patient") == 1
        assert fhir.read("Patient", existing["id"])["name"][0]["family"] == "王"

    def test_if_none_exist_without_match_creates(self, fhir: FhirClient) -> None:
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Patient",
                    patient(id_number="110101199001011234"),
                    full_url=urn(),
                    ifNoneExist=f"identifier={ID_SYSTEM}|110101199001011234",
                ),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["201"]
        assert count(fhir, "Patient") == 1

    def test_if_none_exist_with_several_matches_fails(self, fhir: FhirClient) -> None:
        fhir.create(patient(id_number="110101199001011234"))
        fhir.create(patient(id_number="110101199001011234"))
        resp = fhir.post(
            "",
            bundle(
                "transaction",
                entry("POST", "Organization", {"resourceType": "Organization", "name": "卫生院"}),
                entry(
                    "POST",
                    "Patient",
                    patient(id_number="110101199001011234"),
                    ifNoneExist=f"identifier={ID_SYSTEM}|110101199001011234",
                ),
            ),
        )
        outcome = assert_error(resp, 412, "RHIP-FHIR-0006")
        assert "Bundle.entry[1]" in diagnostics(outcome)
        assert count(fhir, "Patient") == 2
        assert count(fhir, "Organization") == 0

    def test_conditional_reference_is_resolved(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001011234"))
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Observation",
                    observation(f"Patient?identifier={ID_SYSTEM}|110101199001011234"),
                    full_url=urn(),
                ),
            ),
        )
        assert status == 200, answer
        obs = fhir.read(*location_id(answer["entry"][0]).split("/"))
        assert obs["subject"]["reference"] == f"Patient/{existing['id']}"

    def test_conditional_reference_without_match_fails(self, fhir: FhirClient) -> None:
        resp = fhir.post(
            "",
            bundle(
                "transaction",
                entry("POST", "Patient", patient()),
                entry("POST", "Observation", observation(f"Patient?identifier={ID_SYSTEM}|nobody")),
            ),
        )
        assert 400 <= resp.status < 500
        outcome = body_of(resp)
        assert outcome["resourceType"] == "OperationOutcome"
        assert "Bundle.entry[1]" in diagnostics(outcome)
        assert count(fhir, "Patient") == 0
        assert count(fhir, "Observation") == 0

    def test_conditional_reference_with_several_matches_fails(self, fhir: FhirClient) -> None:
        fhir.create(patient(id_number="110101199001011234"))
        fhir.create(patient(id_number="110101199001011234"))
        resp = fhir.post(
            "",
            bundle(
                "transaction",
                entry(
                    "POST", "Observation", observation(f"Patient?identifier={ID_SYSTEM}|110101199001011234")
                ),
            ),
        )
        outcome = assert_error(resp, 412, "RHIP-FHIR-0006")
        assert "Bundle.entry[0]" in diagnostics(outcome)
        assert count(fhir, "Observation") == 0

    def test_unknown_urn_uuid_reference_fails(self, fhir: FhirClient) -> None:
        resp = fhir.post("", bundle("transaction", entry("POST", "Observation", observation(urn()))))
        outcome = assert_error(resp, 400, "RHIP-FHIR-0001")
        assert "Bundle.entry[0]" in diagnostics(outcome)
        assert count(fhir, "Observation") == 0

    def test_processing_order_delete_post_put_get(self, fhir: FhirClient) -> None:
        old = fhir.create(patient(family="旧", id_number="110101199001010001"))
        keep = fhir.create(patient(family="留", id_number="110101199001010002"))
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                # in the order a client wrote them, the reverse of the order they must run in
                entry("GET", f"Patient?identifier={ID_SYSTEM}|110101199001010003"),
                entry("GET", f"Patient/{old['id']}/_history"),
                entry("PUT", f"Patient/{keep['id']}", {**keep, "gender": "female"}),
                entry(
                    "POST", "Patient", patient(family="新", id_number="110101199001010003"), full_url=urn()
                ),
                entry("DELETE", f"Patient/{old['id']}"),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["200", "200", "200", "201", "204"]
        found = answer["entry"][0]["resource"]
        assert found["resourceType"] == "Bundle"
        new_id = location_id(answer["entry"][3])
        assert ids(found) == [new_id]  # the GET ran after the POST
        history = answer["entry"][1]["resource"]
        assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]  # after the DELETE
        assert answer["entry"][2]["resource"]["gender"] == "female"
        assert_error(fhir.get(f"Patient/{old['id']}"), 410, "RHIP-FHIR-0003")

    def test_if_none_exist_is_evaluated_after_the_deletes(self, fhir: FhirClient) -> None:
        # DELETE runs before POST, so the conditional create no longer finds the deleted resource.
        old = fhir.create(patient(id_number="110101199001011234"))
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                entry(
                    "POST",
                    "Patient",
                    patient(family="新", id_number="110101199001011234"),
                    full_url=urn(),
                    ifNoneExist=f"identifier={ID_SYSTEM}|110101199001011234",
                ),
                entry("DELETE", f"Patient/{old['id']}"),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["201", "204"]
        assert count(fhir, "Patient", f"identifier={ID_SYSTEM}|110101199001011234") == 1

    def test_one_invalid_entry_fails_everything(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient())
        resp = fhir.post(
            "",
            bundle(
                "transaction",
                entry("POST", "Patient", patient(family="甲"), full_url=urn()),
                entry("PUT", f"Patient/{existing['id']}", {**existing, "gender": "female"}),
                entry("DELETE", "Patient/whatever"),
                entry("POST", "Observation", observation("Patient/x", shoeSize=44)),
            ),
        )
        outcome = assert_error(resp, 422, "RHIP-FHIR-0004")
        assert "Bundle.entry[3]" in diagnostics(outcome)
        assert "Observation.shoeSize" in expressions(outcome)
        assert count(fhir, "Patient") == 1
        assert count(fhir, "Observation") == 0
        assert fhir.read("Patient", existing["id"])["meta"]["versionId"] == "1"

    def test_failing_read_fails_everything(self, fhir: FhirClient) -> None:
        resp = fhir.post(
            "",
            bundle(
                "transaction",
                entry("POST", "Patient", patient()),
                entry("GET", "Patient/nobody"),
            ),
        )
        outcome = assert_error(resp, 404, "RHIP-FHIR-0002")
        assert "Bundle.entry[1]" in diagnostics(outcome)
        assert count(fhir, "Patient") == 0

    def test_unknown_resource_type_names_the_entry(self, fhir: FhirClient) -> None:
        resp = fhir.post(
            "",
            bundle(
                "transaction",
                entry("POST", "Patient", patient()),
                entry("POST", "Patientt", {"resourceType": "Patientt"}),
            ),
        )
        assert 400 <= resp.status < 500
        outcome = body_of(resp)
        assert "Bundle.entry[1]" in diagnostics(outcome) + " ".join(expressions(outcome))
        assert count(fhir, "Patient") == 0

    def test_same_resource_twice_is_400(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient())
        rid = existing["id"]
        for second in (
            entry("PUT", f"Patient/{rid}", {**existing, "gender": "other"}),
            entry("DELETE", f"Patient/{rid}"),
            entry("PATCH", f"Patient/{rid}", binary_patch([{"op": "remove", "path": "/gender"}])),
        ):
            resp = fhir.post(
                "",
                bundle(
                    "transaction", entry("PUT", f"Patient/{rid}", {**existing, "gender": "female"}), second
                ),
            )
            assert_error(resp, 400, "RHIP-FHIR-0001")
        assert fhir.read("Patient", rid)["meta"]["versionId"] == "1"

    def test_same_resource_twice_through_conditional_updates_is_400(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001011234"))
        criteria = f"Patient?identifier={ID_SYSTEM}|110101199001011234"
        resp = fhir.post(
            "",
            bundle(
                "transaction",
                entry("PUT", criteria, patient(id_number="110101199001011234", gender="female")),
                entry("PUT", criteria, patient(id_number="110101199001011234", gender="other")),
            ),
        )
        assert_error(resp, 400, "RHIP-FHIR-0001")
        assert fhir.read("Patient", existing["id"])["meta"]["versionId"] == "1"

    def test_same_resource_twice_through_a_conditional_delete_is_400(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001015678"))
        rid = existing["id"]
        criteria = f"Patient?identifier={ID_SYSTEM}|110101199001015678"
        for first, second in (
            (entry("DELETE", criteria), entry("PUT", f"Patient/{rid}", {**existing, "gender": "female"})),
            (entry("DELETE", criteria), entry("DELETE", f"Patient/{rid}")),
            (
                entry("DELETE", criteria),
                entry("PATCH", f"Patient/{rid}", binary_patch([{"op": "remove", "path": "/gender"}])),
            ),
        ):
            resp = fhir.post("", bundle("transaction", first, second))
            outcome = assert_error(resp, 400, "RHIP-FHIR-0001")
            assert f"Patient/{rid} is changed twice" in diagnostics(outcome)
        assert fhir.read("Patient", rid)["meta"]["versionId"] == "1"

    def test_conditional_update_without_match_never_overwrites_the_body_id(self, fhir: FhirClient) -> None:
        other = fhir.create(patient(family="钱"))
        body = {**patient(id_number="110101199001019999"), "id": other["id"]}
        resp = fhir.post(
            "",
            bundle("transaction", entry("PUT", f"Patient?identifier={ID_SYSTEM}|110101199001019999", body)),
        )
        assert_error(resp, 409, "RHIP-FHIR-0007")
        assert fhir.read("Patient", other["id"])["name"][0]["family"] == "钱"

    def test_conditional_update_without_match_creates_with_the_body_id(self, fhir: FhirClient) -> None:
        chosen = f"chosen-{uuid.uuid4().hex[:12]}"
        body = {**patient(id_number="110101199001018888"), "id": chosen}
        status, answer = post_bundle(
            fhir,
            bundle("transaction", entry("PUT", f"Patient?identifier={ID_SYSTEM}|110101199001018888", body)),
        )
        assert status == 200, answer
        assert statuses(answer) == ["201"]
        assert location_id(answer["entry"][0]) == f"Patient/{chosen}"

    def test_conditional_update_whose_body_names_another_resource_is_400(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001017777"))
        body = {**patient(id_number="110101199001017777"), "id": "someone-else"}
        resp = fhir.post(
            "",
            bundle("transaction", entry("PUT", f"Patient?identifier={ID_SYSTEM}|110101199001017777", body)),
        )
        assert_error(resp, 400, "RHIP-FHIR-0001")
        assert fhir.read("Patient", existing["id"])["meta"]["versionId"] == "1"

    def test_duplicate_full_url_is_400(self, fhir: FhirClient) -> None:
        same = urn()
        resp = fhir.post(
            "",
            bundle(
                "transaction",
                entry("POST", "Patient", patient(), full_url=same),
                entry("POST", "Patient", patient(family="李"), full_url=same),
            ),
        )
        outcome = assert_error(resp, 400, "RHIP-FHIR-0001")
        assert "Bundle.entry[1].fullUrl" in expressions(outcome)
        assert count(fhir, "Patient") == 0

    def test_patch_entry_with_a_binary(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient())
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                entry(
                    "PATCH",
                    f"Patient/{existing['id']}",
                    binary_patch([{"op": "replace", "path": "/gender", "value": "female"}]),
                ),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["200"]
        assert answer["entry"][0]["response"]["etag"] == 'W/"2"'
        assert answer["entry"][0]["response"]["location"] == f"Patient/{existing['id']}/_history/2"
        assert fhir.read("Patient", existing["id"])["gender"] == "female"

    def test_conditional_patch_entry(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001011234"))
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                entry(
                    "PATCH",
                    f"Patient?identifier={ID_SYSTEM}|110101199001011234",
                    binary_patch([{"op": "replace", "path": "/gender", "value": "female"}]),
                ),
            ),
        )
        assert status == 200, answer
        assert fhir.read("Patient", existing["id"])["gender"] == "female"

    @pytest.mark.parametrize(
        ("resource", "status"),
        [
            (None, 400),
            (patient(), 400),
            ({"resourceType": "Binary", "contentType": "application/json-patch+json"}, 400),
            ({"resourceType": "Binary", "contentType": "application/json-patch+json", "data": "%%%"}, 400),
        ],
    )
    def test_bad_patch_entries(self, fhir: FhirClient, resource: dict[str, Any] | None, status: int) -> None:
        existing = fhir.create(patient())
        resp = fhir.post("", bundle("transaction", entry("PATCH", f"Patient/{existing['id']}", resource)))
        outcome = assert_error(resp, status, "RHIP-FHIR-0001")
        assert "Bundle.entry[0]" in diagnostics(outcome)
        assert fhir.read("Patient", existing["id"])["meta"]["versionId"] == "1"

    def test_patch_entry_that_cannot_be_applied_is_422(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient())
        resp = fhir.post(
            "",
            bundle(
                "transaction",
                entry(
                    "PATCH", f"Patient/{existing['id']}", binary_patch([{"op": "remove", "path": "/telecom"}])
                ),
            ),
        )
        assert_error(resp, 422, "RHIP-FHIR-0015")

    def test_response_entries_follow_the_request_order(self, fhir: FhirClient) -> None:
        a = fhir.create(patient(family="甲"))
        b = fhir.create(patient(family="乙"))
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                entry("GET", f"Patient/{a['id']}"),
                entry("PUT", "Patient/client-chosen", {**patient(family="丙"), "id": "client-chosen"}),
                entry("DELETE", f"Patient/{b['id']}"),
                entry("POST", "Organization", {"resourceType": "Organization", "name": "乡镇卫生院"}),
                entry("PUT", f"Patient/{a['id']}", {**a, "gender": "female"}),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["200", "201", "204", "201", "200"]
        got, created, deleted, org, updated = answer["entry"]
        assert "location" not in got["response"]  # a read
        assert got["resource"]["id"] == a["id"]
        assert got["resource"]["meta"]["versionId"] == "2"  # reads run after the writes
        assert created["response"]["location"] == "Patient/client-chosen/_history/1"
        assert created["response"]["etag"] == 'W/"1"'
        assert deleted["response"]["etag"] == 'W/"2"'
        assert "resource" not in deleted
        assert org["response"]["location"].startswith("Organization/")
        assert updated["response"]["etag"] == 'W/"2"'
        assert updated["response"]["location"] == f"Patient/{a['id']}/_history/2"

    def test_prefer_minimal(self, fhir: FhirClient) -> None:
        status, answer = post_bundle(
            fhir,
            bundle("transaction", entry("POST", "Patient", patient(), full_url=urn())),
            headers={"Prefer": "return=minimal"},
        )
        assert status == 200, answer
        assert "resource" not in answer["entry"][0]
        assert answer["entry"][0]["response"]["location"].startswith("Patient/")

    def test_conditional_update_entries(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001010001"))
        p_url = urn()
        status, answer = post_bundle(
            fhir,
            bundle(
                "transaction",
                entry(
                    "PUT",
                    f"Patient?identifier={ID_SYSTEM}|110101199001010001",
                    patient(id_number="110101199001010001", gender="female"),
                ),
                entry(
                    "PUT",
                    f"Patient?identifier={ID_SYSTEM}|110101199001010002",
                    patient(id_number="110101199001010002"),
                    full_url=p_url,
                ),
                entry("POST", "Observation", observation(p_url)),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["200", "201", "201"]
        assert location_id(answer["entry"][0]) == f"Patient/{existing['id']}"
        assert fhir.read("Patient", existing["id"])["gender"] == "female"
        new_patient = location_id(answer["entry"][1])
        obs = fhir.read(*location_id(answer["entry"][2]).split("/"))
        assert obs["subject"]["reference"] == new_patient

    def test_head_entry(self, fhir: FhirClient) -> None:
        # HEAD is one of the methods a Bundle entry may carry (Bundle.entry.request.method).
        existing = fhir.create(patient())
        status, answer = post_bundle(fhir, bundle("transaction", entry("HEAD", f"Patient/{existing['id']}")))
        assert status == 200, answer
        assert statuses(answer) == ["200"]
        assert "resource" not in answer["entry"][0]

    @pytest.mark.parametrize(
        "bad_entry",
        [
            {"resource": {"resourceType": "Patient"}},  # no request
            {"request": {"method": "FETCH", "url": "Patient"}},
            {"request": {"method": "POST", "url": "Patient"}},  # no resource
            {"request": {"method": "GET", "url": "http://elsewhere.example/fhir/Patient/1"}},
            "not an object",
        ],
    )
    def test_malformed_entries_are_400(self, fhir: FhirClient, bad_entry: Any) -> None:
        resp = fhir.post("", bundle("transaction", entry("POST", "Patient", patient()), bad_entry))
        outcome = assert_error(resp, 400, "RHIP-FHIR-0001")
        assert any(e.startswith("Bundle.entry[1]") for e in expressions(outcome)), outcome
        assert count(fhir, "Patient") == 0

    def test_absolute_urls_on_this_server_are_accepted(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient())
        status, answer = post_bundle(
            fhir, bundle("transaction", entry("GET", f"{BASE}/Patient/{existing['id']}"))
        )
        assert status == 200, answer
        assert answer["entry"][0]["resource"]["id"] == existing["id"]

    def test_empty_transaction(self, fhir: FhirClient) -> None:
        status, answer = post_bundle(fhir, bundle("transaction"))
        assert status == 200
        assert answer["type"] == "transaction-response"
        assert answer.get("entry", []) == []


# -- batch --------------------------------------------------------------------------------------------
class TestBatch:
    def test_entries_are_independent(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient())
        status, answer = post_bundle(
            fhir,
            bundle(
                "batch",
                entry("POST", "Patient", patient(family="好")),
                entry("POST", "Patient", patient(family="坏", nickname="x")),
                entry("GET", "Patient/nobody"),
                entry("PUT", f"Patient/{existing['id']}", {**existing, "gender": "female"}),
                entry("DELETE", "Patientt/1"),
                entry("GET", f"Patient?_id={existing['id']}"),
            ),
        )
        assert status == 200, answer
        assert answer["type"] == "batch-response"
        assert statuses(answer) == ["201", "422", "404", "200", "404", "200"]
        bad = answer["entry"][1]["response"]["outcome"]
        assert bad["resourceType"] == "OperationOutcome"
        assert "Patient.nickname" in expressions(bad)
        assert answer["entry"][2]["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert "resource" not in answer["entry"][1]
        assert count(fhir, "Patient", "name=好") == 1
        assert count(fhir, "Patient", "name=坏") == 0
        assert fhir.read("Patient", existing["id"])["gender"] == "female"
        assert answer["entry"][5]["resource"]["resourceType"] == "Bundle"

    def test_urn_uuid_references_between_entries_are_refused(self, fhir: FhirClient) -> None:
        p_url = urn()
        status, answer = post_bundle(
            fhir,
            bundle(
                "batch",
                entry("POST", "Patient", patient(), full_url=p_url),
                entry("POST", "Observation", observation(p_url)),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["201", "400"]
        outcome = answer["entry"][1]["response"]["outcome"]
        assert "urn:uuid" in diagnostics(outcome)
        assert count(fhir, "Observation") == 0
        assert count(fhir, "Patient") == 1

    def test_prefer_reaches_every_entry(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient())
        status, answer = post_bundle(
            fhir,
            bundle(
                "batch",
                entry("POST", "Patient", patient()),
                entry("PUT", f"Patient/{existing['id']}", {**existing, "gender": "female"}),
            ),
            headers={"Prefer": "return=minimal"},
        )
        assert status == 200, answer
        assert statuses(answer) == ["201", "200"]
        assert all("resource" not in e for e in answer["entry"])

    def test_conditional_create_in_a_batch(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001011234"))
        status, answer = post_bundle(
            fhir,
            bundle(
                "batch",
                entry(
                    "POST",
                    "Patient",
                    patient(id_number="110101199001011234"),
                    ifNoneExist=f"identifier={ID_SYSTEM}|110101199001011234",
                ),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["200"]
        assert answer["entry"][0]["resource"]["id"] == existing["id"]

    def test_conditional_update_in_a_batch(self, fhir: FhirClient) -> None:
        status, answer = post_bundle(
            fhir,
            bundle(
                "batch",
                entry(
                    "PUT",
                    f"Patient?identifier={ID_SYSTEM}|110101199001011234",
                    patient(id_number="110101199001011234"),
                ),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["201"]
        assert count(fhir, "Patient", f"identifier={ID_SYSTEM}|110101199001011234") == 1

    def test_malformed_entries_fail_alone(self, fhir: FhirClient) -> None:
        status, answer = post_bundle(
            fhir,
            bundle(
                "batch",
                {"resource": patient()},
                entry("POST", "Patient", patient()),
                "nonsense",
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["400", "201", "400"]
        assert count(fhir, "Patient") == 1

    def test_patch_entry_in_a_batch(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient())
        status, answer = post_bundle(
            fhir,
            bundle(
                "batch",
                entry(
                    "PATCH",
                    f"Patient/{existing['id']}",
                    binary_patch([{"op": "replace", "path": "/gender", "value": "other"}]),
                ),
                entry(
                    "PATCH", f"Patient/{existing['id']}", binary_patch([{"op": "remove", "path": "/telecom"}])
                ),
            ),
        )
        assert status == 200, answer
        assert statuses(answer) == ["200", "422"]
        assert fhir.read("Patient", existing["id"])["gender"] == "other"


# -- the Bundle itself --------------------------------------------------------------------------------
class TestBundleItself:
    @pytest.mark.parametrize(
        "kind", ["collection", "document", "searchset", "history", None, "transaction-response"]
    )
    def test_wrong_bundle_type_is_400(self, fhir: FhirClient, kind: str | None) -> None:
        body: dict[str, Any] = {"resourceType": "Bundle", "entry": [entry("POST", "Patient", patient())]}
        if kind is not None:
            body["type"] = kind
        outcome = assert_error(fhir.post("", body), 400, "RHIP-FHIR-0001")
        assert "Bundle.type" in expressions(outcome)
        assert count(fhir, "Patient") == 0

    def test_other_resource_at_the_base_is_400(self, fhir: FhirClient) -> None:
        outcome = assert_error(fhir.post("", patient()), 400, "RHIP-FHIR-0001")
        assert "resourceType" in expressions(outcome)

    def test_entry_must_be_an_array(self, fhir: FhirClient) -> None:
        body = {"resourceType": "Bundle", "type": "transaction", "entry": {"request": {}}}
        assert_error(fhir.post("", body), 400, "RHIP-FHIR-0001")

    def test_bundle_body_errors(self, fhir: FhirClient) -> None:
        assert_error(fhir.post("", b"{not json"), 400, "RHIP-FHIR-0001")
        assert_error(fhir.post("", bundle("batch"), content_type="text/plain"), 415, "RHIP-FHIR-0008")

    def test_too_many_entries(self, small_bundle_fhir: FhirClient) -> None:
        fhir = small_bundle_fhir
        three = [entry("POST", "Patient", patient()) for _ in range(3)]
        for kind in ("transaction", "batch"):
            assert fhir.post("", bundle(kind, *three)).status == 200
            resp = fhir.post("", bundle(kind, *three, entry("POST", "Patient", patient())))
            assert resp.status == 400
            # docs/fhir-api.md: "RHIP-FHIR-0014 | 400 | a request beyond configured limits"
            assert_error(resp, 400, "RHIP-FHIR-0014")
        assert count(fhir, "Patient") == 6
