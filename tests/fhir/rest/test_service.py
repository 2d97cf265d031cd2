"""The FHIR RESTful API of docs/fhir-api.md, in process: every interaction, header and error of the table.

Runs on SQLite and, with RHIP_TEST_DATABASE_URL, on PostgreSQL (the ``platform`` fixture).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

import pytest

from .conftest import (
    BASE,
    ID_SYSTEM,
    FhirClient,
    assert_error,
    body_of,
    diagnostics,
    expressions,
    ids,
    next_link,
    observation,
    patient,
    resources,
    rhip_codes,
)


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- read ---------------------------------------------------------------------------------------------
class TestRead:
    def test_read_has_etag_last_modified_and_content_location(self, fhir: FhirClient) -> None:
        created = fhir.create(patient())
        resp = fhir.get(f"Patient/{created['id']}")
        assert resp.status == 200
        got = body_of(resp)
        assert got == created
        assert resp.headers["ETag"] == 'W/"1"'
        assert resp.headers["Content-Location"] == f"{BASE}/Patient/{created['id']}/_history/1"
        modified = parsedate_to_datetime(resp.headers["Last-Modified"])
        assert modified == _instant(got["meta"]["lastUpdated"]).replace(microsecond=0)

    def test_if_none_match_current_version_gives_304(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        resp = fhir.get(f"Patient/{rid}", headers={"If-None-Match": 'W/"1"'})
        assert resp.status == 304
        assert not resp.body
        assert resp.headers["ETag"] == 'W/"1"'

    def test_if_none_match_other_version_gives_200(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        resp = fhir.get(f"Patient/{rid}", headers={"If-None-Match": 'W/"7"'})
        assert resp.status == 200
        assert body_of(resp)["id"] == rid

    def test_if_modified_since(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        last_modified = fhir.get(f"Patient/{rid}").headers["Last-Modified"]
        assert fhir.get(f"Patient/{rid}", headers={"If-Modified-Since": last_modified}).status == 304
        past = format_datetime(datetime(2001, 1, 1, tzinfo=UTC), usegmt=True)
        resp = fhir.get(f"Patient/{rid}", headers={"If-Modified-Since": past})
        assert resp.status == 200
        assert body_of(resp)["id"] == rid

    @pytest.mark.parametrize("since", ["Mon, 01 Jan 2001 08:00:00 +0800", "Mon, 01 Jan 2001 00:00:00 -0000"])
    def test_if_modified_since_with_numeric_zone(self, fhir: FhirClient, since: str) -> None:
        # RFC 5322 dates may carry a numeric zone ("+0800", "-0000") instead of "GMT".
        rid = fhir.create(patient())["id"]
        resp = fhir.get(f"Patient/{rid}", headers={"If-Modified-Since": since})
        assert resp.status == 200
        assert body_of(resp)["id"] == rid

    def test_head_is_a_read_without_body(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        resp = fhir.request("HEAD", f"Patient/{rid}")
        assert resp.status == 200
        assert not resp.body
        assert resp.headers["ETag"] == 'W/"1"'
        assert fhir.request("HEAD", "Patient/nobody").status == 404

    def test_unknown_id_is_404(self, fhir: FhirClient) -> None:
        assert_error(fhir.get("Patient/does-not-exist"), 404, "RHIP-FHIR-0002")

    def test_read_with_summary(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient(text={"status": "generated", "div": "<div>王伟</div>"}))["id"]
        got = body_of(fhir.get(f"Patient/{rid}", query="_summary=true"))
        assert "text" not in got
        assert got["name"][0]["family"] == "王"
        assert any(t.get("code") == "SUBSETTED" for t in got["meta"]["tag"])


class TestVread:
    def test_each_version_is_readable(self, fhir: FhirClient) -> None:
        first = fhir.create(patient(gender="male"))
        rid = first["id"]
        second = body_of(fhir.put(f"Patient/{rid}", {**first, "gender": "female"}))
        v1 = fhir.get(f"Patient/{rid}/_history/1")
        v2 = fhir.get(f"Patient/{rid}/_history/2")
        assert v1.status == v2.status == 200
        assert body_of(v1) == first
        assert body_of(v2) == second
        assert body_of(v1)["gender"] == "male"
        assert body_of(v2)["gender"] == "female"
        assert v1.headers["ETag"] == 'W/"1"'
        assert v2.headers["ETag"] == 'W/"2"'
        assert v1.headers["Content-Location"] == f"{BASE}/Patient/{rid}/_history/1"

    def test_unknown_versions_are_404(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        assert_error(fhir.get(f"Patient/{rid}/_history/2"), 404, "RHIP-FHIR-0002")
        assert_error(fhir.get(f"Patient/{rid}/_history/abc"), 404, "RHIP-FHIR-0002")
        assert_error(fhir.get("Patient/nobody/_history/1"), 404, "RHIP-FHIR-0002")

    def test_huge_version_number_is_404(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        assert_error(fhir.get(f"Patient/{rid}/_history/99999999999999999999999"), 404, "RHIP-FHIR-0002")

    def test_deletion_version_is_410(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        assert fhir.delete(f"Patient/{rid}").status == 204
        assert fhir.get(f"Patient/{rid}/_history/1").status == 200
        assert_error(fhir.get(f"Patient/{rid}/_history/2"), 410, "RHIP-FHIR-0003")


# -- create -------------------------------------------------------------------------------------------
class TestCreate:
    def test_create_answers_201_with_location_and_etag(self, fhir: FhirClient) -> None:
        resp = fhir.post("Patient", patient())
        assert resp.status == 201
        created = body_of(resp)
        rid = created["id"]
        assert resp.headers["Location"] == f"{BASE}/Patient/{rid}/_history/1"
        assert resp.headers["ETag"] == 'W/"1"'
        assert parsedate_to_datetime(resp.headers["Last-Modified"]) == _instant(
            created["meta"]["lastUpdated"]
        ).replace(microsecond=0)
        assert created["meta"]["versionId"] == "1"
        assert created["name"][0]["family"] == "王"
        assert uuid.UUID(rid).version == 7  # a time-ordered UUID
        assert fhir.read("Patient", rid) == created

    def test_id_in_body_is_ignored(self, fhir: FhirClient) -> None:
        created = fhir.create(patient(id="chosen-by-client"))
        assert created["id"] != "chosen-by-client"
        assert_error(fhir.get("Patient/chosen-by-client"), 404, "RHIP-FHIR-0002")

    def test_application_json_is_accepted(self, fhir: FhirClient) -> None:
        resp = fhir.post("Patient", patient(), content_type="application/json; charset=utf-8")
        assert resp.status == 201

    def test_chinese_text_round_trips(self, fhir: FhirClient) -> None:
        created = fhir.create(
            patient(family="欧阳", given="娜娜", address=[{"city": "杭州市", "text": "西湖区"}])
        )
        got = fhir.read("Patient", created["id"])
        assert got["name"][0]["family"] == "欧阳"
        assert got["address"][0]["city"] == "杭州市"
        assert "欧阳".encode() in (fhir.get(f"Patient/{created['id']}").body or b"")


class TestConditionalCreate:
    def test_no_match_creates(self, fhir: FhirClient) -> None:
        resp = fhir.post(
            "Patient",
            patient(id_number="110101199001011234"),
            headers={"If-None-Exist": f"identifier={ID_SYSTEM}|110101199001011234"},
        )
        assert resp.status == 201
        assert resp.headers["Location"].startswith(f"{BASE}/Patient/")

    def test_one_match_returns_it(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001011234"))
        resp = fhir.post(
            "Patient",
            patient(family="李", id_number="110101199001011234"),
            headers={"If-None-Exist": f"identifier={ID_SYSTEM}|110101199001011234"},
        )
        assert resp.status == 200
        assert body_of(resp)["id"] == existing["id"]
        assert body_of(resp)["name"][0]["family"] == "王"  # not the posted one
        bundle = fhir.search("Patient", [("identifier", f"{ID_SYSTEM}|110101199001011234")])
        assert bundle["total"] == 1

    def test_several_matches_is_412(self, fhir: FhirClient) -> None:
        fhir.create(patient(id_number="110101199001011234"))
        fhir.create(patient(id_number="110101199001011234"))
        resp = fhir.post(
            "Patient",
            patient(id_number="110101199001011234"),
            headers={"If-None-Exist": f"identifier={ID_SYSTEM}|110101199001011234"},
        )
        assert_error(resp, 412, "RHIP-FHIR-0006")
        assert fhir.search("Patient", "_summary=count")["total"] == 2

    def test_unknown_criteria_parameter_is_refused(self, fhir: FhirClient) -> None:
        resp = fhir.post("Patient", patient(), headers={"If-None-Exist": "no-such-param=1"})
        assert resp.status == 400
        assert fhir.search("Patient", "_summary=count")["total"] == 0


# -- update -------------------------------------------------------------------------------------------
class TestUpdate:
    def test_update_makes_a_new_version(self, fhir: FhirClient) -> None:
        created = fhir.create(patient())
        rid = created["id"]
        resp = fhir.put(f"Patient/{rid}", {**created, "gender": "female"})
        assert resp.status == 200
        updated = body_of(resp)
        assert updated["meta"]["versionId"] == "2"
        assert updated["gender"] == "female"
        assert resp.headers["ETag"] == 'W/"2"'
        assert resp.headers["Location"] == f"{BASE}/Patient/{rid}/_history/2"
        assert "Last-Modified" in resp.headers
        assert fhir.read("Patient", rid)["gender"] == "female"

    def test_update_as_create(self, fhir: FhirClient) -> None:
        resp = fhir.put("Patient/resident-001", {**patient(), "id": "resident-001"})
        assert resp.status == 201
        assert resp.headers["Location"] == f"{BASE}/Patient/resident-001/_history/1"
        assert fhir.read("Patient", "resident-001")["meta"]["versionId"] == "1"

    def test_id_mismatch_is_400(self, fhir: FhirClient) -> None:
        created = fhir.create(patient())
        outcome = assert_error(
            fhir.put(f"Patient/{created['id']}", {**created, "id": "another"}), 400, "RHIP-FHIR-0001"
        )
        assert "Patient.id" in expressions(outcome)
        assert fhir.read("Patient", created["id"])["meta"]["versionId"] == "1"

    def test_missing_id_is_400(self, fhir: FhirClient) -> None:
        created = fhir.create(patient())
        outcome = assert_error(fhir.put(f"Patient/{created['id']}", patient()), 400, "RHIP-FHIR-0001")
        assert "Patient.id" in expressions(outcome)

    def test_wrong_resource_type_is_400(self, fhir: FhirClient) -> None:
        resp = fhir.put("Patient/x1", {"resourceType": "Organization", "id": "x1", "name": "卫生院"})
        outcome = assert_error(resp, 400, "RHIP-FHIR-0001")
        assert "resourceType" in expressions(outcome)
        assert_error(fhir.get("Patient/x1"), 404, "RHIP-FHIR-0002")

    def test_invalid_id_is_refused(self, fhir: FhirClient) -> None:
        bad = "not_valid!"
        resp = fhir.put(f"Patient/{bad}", {**patient(), "id": bad})
        assert resp.status in (400, 422), resp.status
        assert set(rhip_codes(body_of(resp))) <= {"RHIP-FHIR-0001", "RHIP-FHIR-0004"}
        assert_error(fhir.get(f"Patient/{bad}"), 404, "RHIP-FHIR-0002")

    def test_if_match(self, fhir: FhirClient) -> None:
        created = fhir.create(patient())
        rid = created["id"]
        ok = fhir.put(f"Patient/{rid}", {**created, "gender": "female"}, headers={"If-Match": 'W/"1"'})
        assert ok.status == 200
        stale = fhir.put(f"Patient/{rid}", {**created, "gender": "other"}, headers={"If-Match": 'W/"1"'})
        assert_error(stale, 412, "RHIP-FHIR-0005")
        assert fhir.read("Patient", rid)["gender"] == "female"

    def test_if_match_on_a_missing_resource_is_412(self, fhir: FhirClient) -> None:
        resp = fhir.put("Patient/absent", {**patient(), "id": "absent"}, headers={"If-Match": 'W/"1"'})
        assert_error(resp, 412, "RHIP-FHIR-0005")

    def test_malformed_if_match_is_400(self, fhir: FhirClient) -> None:
        created = fhir.create(patient())
        resp = fhir.put(f"Patient/{created['id']}", created, headers={"If-Match": "version one"})
        assert_error(resp, 400, "RHIP-FHIR-0001")

    def test_update_of_a_deleted_resource_recreates_it(self, fhir: FhirClient) -> None:
        created = fhir.create(patient())
        rid = created["id"]
        fhir.delete(f"Patient/{rid}")
        resp = fhir.put(f"Patient/{rid}", created)
        assert resp.status == 201
        assert body_of(resp)["meta"]["versionId"] == "3"
        assert fhir.read("Patient", rid)["id"] == rid


class TestConditionalUpdate:
    def test_no_match_creates(self, fhir: FhirClient) -> None:
        criteria = f"identifier={ID_SYSTEM}|110101199001011234"
        resp = fhir.put("Patient", patient(id_number="110101199001011234"), query=criteria)
        assert resp.status == 201
        assert fhir.search("Patient", criteria)["total"] == 1

    def test_one_match_is_updated(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001011234"))
        criteria = f"identifier={ID_SYSTEM}|110101199001011234"
        resp = fhir.put("Patient", patient(family="刘", id_number="110101199001011234"), query=criteria)
        assert resp.status == 200
        updated = body_of(resp)
        assert updated["id"] == existing["id"]
        assert updated["meta"]["versionId"] == "2"
        assert fhir.read("Patient", existing["id"])["name"][0]["family"] == "刘"
        assert fhir.search("Patient", criteria)["total"] == 1

    def test_several_matches_is_412(self, fhir: FhirClient) -> None:
        fhir.create(patient(id_number="110101199001011234"))
        fhir.create(patient(id_number="110101199001011234"))
        resp = fhir.put(
            "Patient",
            patient(id_number="110101199001011234"),
            query=f"identifier={ID_SYSTEM}|110101199001011234",
        )
        assert_error(resp, 412, "RHIP-FHIR-0006")

    def test_body_id_other_than_the_match_is_400(self, fhir: FhirClient) -> None:
        existing = fhir.create(patient(id_number="110101199001011234"))
        resp = fhir.put(
            "Patient",
            {**patient(id_number="110101199001011234"), "id": "someone-else"},
            query=f"identifier={ID_SYSTEM}|110101199001011234",
        )
        assert_error(resp, 400, "RHIP-FHIR-0001")
        assert fhir.read("Patient", existing["id"])["meta"]["versionId"] == "1"

    def test_no_match_with_the_id_of_an_existing_resource_is_not_reported_as_created(
        self, fhir: FhirClient
    ) -> None:
        # The criteria select nothing, the body names an existing resource: either an update of it (200)
        # or a refusal (409, as R5 specifies) — but never "201 Created" for a resource at version 2.
        other = fhir.create(patient(family="张", id_number="110101199001011234"))
        resp = fhir.put(
            "Patient",
            {**patient(id_number="110101199001019999"), "id": other["id"]},
            query=f"identifier={ID_SYSTEM}|110101199001019999",
        )
        assert resp.status in (200, 409), (resp.status, resp.body)

    def test_without_criteria_is_400(self, fhir: FhirClient) -> None:
        assert_error(fhir.put("Patient", patient()), 400, "RHIP-FHIR-0001")


# -- delete -------------------------------------------------------------------------------------------
class TestDelete:
    def test_delete_then_read_is_410(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        resp = fhir.delete(f"Patient/{rid}")
        assert resp.status == 204
        assert not resp.body
        assert resp.headers.get("ETag") == 'W/"2"'
        outcome = assert_error(fhir.get(f"Patient/{rid}"), 410, "RHIP-FHIR-0003")
        assert outcome["issue"][0]["code"] == "deleted"
        assert fhir.search("Patient", f"_id={rid}").get("total") == 0

    def test_history_is_kept(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        fhir.delete(f"Patient/{rid}")
        history = fhir.search(f"Patient/{rid}/_history")
        assert [e["request"]["method"] for e in history["entry"]] == ["DELETE", "POST"]
        assert "resource" not in history["entry"][0]
        assert history["entry"][0]["response"]["status"].startswith("204")

    def test_delete_is_idempotent(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        assert fhir.delete(f"Patient/{rid}").status == 204
        assert fhir.delete(f"Patient/{rid}").status == 204
        assert fhir.delete("Patient/never-existed").status == 204
        assert len(fhir.search(f"Patient/{rid}/_history")["entry"]) == 2

    def test_prefer_operation_outcome(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        resp = fhir.delete(f"Patient/{rid}", headers={"Prefer": "return=OperationOutcome"})
        assert resp.status == 200
        outcome = body_of(resp)
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["severity"] == "information"
        assert_error(fhir.get(f"Patient/{rid}"), 410, "RHIP-FHIR-0003")

    def test_unknown_type_is_404(self, fhir: FhirClient) -> None:
        assert_error(fhir.delete("Patientt/1"), 404, "RHIP-FHIR-0002")


class TestConditionalDelete:
    def test_one_match_is_deleted(self, fhir: FhirClient) -> None:
        keep = fhir.create(patient(id_number="110101199001010001"))
        gone = fhir.create(patient(id_number="110101199001010002"))
        resp = fhir.delete("Patient", query=f"identifier={ID_SYSTEM}|110101199001010002")
        assert resp.status == 204
        assert_error(fhir.get(f"Patient/{gone['id']}"), 410, "RHIP-FHIR-0003")
        assert fhir.read("Patient", keep["id"])["id"] == keep["id"]

    def test_no_match_is_204(self, fhir: FhirClient) -> None:
        keep = fhir.create(patient(id_number="110101199001010001"))
        assert fhir.delete("Patient", query=f"identifier={ID_SYSTEM}|nobody").status == 204
        assert fhir.read("Patient", keep["id"])["id"] == keep["id"]

    def test_several_matches_is_412(self, fhir: FhirClient) -> None:
        a = fhir.create(patient(id_number="110101199001010001"))
        b = fhir.create(patient(id_number="110101199001010001"))
        resp = fhir.delete("Patient", query=f"identifier={ID_SYSTEM}|110101199001010001")
        assert_error(resp, 412, "RHIP-FHIR-0006")
        fhir.read("Patient", a["id"])
        fhir.read("Patient", b["id"])

    def test_without_criteria_is_400(self, fhir: FhirClient) -> None:
        fhir.create(patient())
        assert_error(fhir.delete("Patient"), 400, "RHIP-FHIR-0001")
        assert fhir.search("Patient", "_summary=count")["total"] == 1


# -- patch --------------------------------------------------------------------------------------------
class TestPatch:
    def test_json_patch_is_applied(self, fhir: FhirClient) -> None:
        created = fhir.create(patient())
        rid = created["id"]
        resp = fhir.patch(
            f"Patient/{rid}",
            [
                {"op": "replace", "path": "/gender", "value": "female"},
                {"op": "add", "path": "/name/0/given/-", "value": "芳"},
                {"op": "test", "path": "/birthDate", "value": "1980-05-17"},
            ],
        )
        assert resp.status == 200
        patched = body_of(resp)
        assert patched["gender"] == "female"
        assert patched["name"][0]["given"] == ["伟", "芳"]
        assert patched["meta"]["versionId"] == "2"
        assert resp.headers["ETag"] == 'W/"2"'
        assert fhir.read("Patient", rid) == patched

    @pytest.mark.parametrize(
        "operations",
        [
            [{"op": "remove", "path": "/telecom"}],  # nothing there
            [{"op": "frobnicate", "path": "/gender"}],
            [{"op": "test", "path": "/gender", "value": "female"}],  # test fails
            [{"op": "replace", "path": "/gender"}],  # no value
            ["not an operation"],
        ],
    )
    def test_patch_that_cannot_be_applied_is_422(self, fhir: FhirClient, operations: list[Any]) -> None:
        rid = fhir.create(patient())["id"]
        assert_error(fhir.patch(f"Patient/{rid}", operations), 422, "RHIP-FHIR-0015")
        assert fhir.read("Patient", rid)["meta"]["versionId"] == "1"

    @pytest.mark.parametrize(
        "operations",
        [
            [{"op": "replace", "path": "/id", "value": "another"}],
            [{"op": "remove", "path": "/id"}],
            [{"op": "replace", "path": "/resourceType", "value": "Practitioner"}],
        ],
    )
    def test_patch_changing_id_or_type_is_422(self, fhir: FhirClient, operations: list[Any]) -> None:
        rid = fhir.create(patient())["id"]
        assert_error(fhir.patch(f"Patient/{rid}", operations), 422, "RHIP-FHIR-0015")
        assert fhir.read("Patient", rid)["meta"]["versionId"] == "1"

    def test_patch_making_the_resource_invalid_is_422(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        resp = fhir.patch(f"Patient/{rid}", [{"op": "add", "path": "/favouriteColour", "value": "红"}])
        outcome = assert_error(resp, 422, "RHIP-FHIR-0004")
        assert "Patient.favouriteColour" in expressions(outcome)

    def test_if_match(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        op = [{"op": "replace", "path": "/gender", "value": "female"}]
        assert fhir.patch(f"Patient/{rid}", op, headers={"If-Match": 'W/"1"'}).status == 200
        assert_error(fhir.patch(f"Patient/{rid}", op, headers={"If-Match": 'W/"1"'}), 412, "RHIP-FHIR-0005")

    def test_wrong_content_type_is_415(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        op = [{"op": "replace", "path": "/gender", "value": "female"}]
        assert_error(
            fhir.patch(f"Patient/{rid}", op, content_type="application/fhir+json"), 415, "RHIP-FHIR-0008"
        )

    def test_patch_must_be_an_array(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        assert_error(fhir.patch(f"Patient/{rid}", {"op": "remove", "path": "/gender"}), 400, "RHIP-FHIR-0001")

    def test_patch_of_missing_resource_is_404(self, fhir: FhirClient) -> None:
        op = [{"op": "replace", "path": "/gender", "value": "female"}]
        assert_error(fhir.patch("Patient/nobody", op), 404, "RHIP-FHIR-0002")

    def test_conditional_patch(self, fhir: FhirClient) -> None:
        target = fhir.create(patient(id_number="110101199001010001"))
        fhir.create(patient(id_number="110101199001010002"))
        fhir.create(patient(id_number="110101199001010002"))
        op = [{"op": "replace", "path": "/gender", "value": "female"}]
        one = fhir.patch("Patient", op, query=f"identifier={ID_SYSTEM}|110101199001010001")
        assert one.status == 200
        assert body_of(one)["id"] == target["id"]
        assert fhir.read("Patient", target["id"])["gender"] == "female"
        none = fhir.patch("Patient", op, query=f"identifier={ID_SYSTEM}|nobody")
        assert_error(none, 404, "RHIP-FHIR-0002")
        several = fhir.patch("Patient", op, query=f"identifier={ID_SYSTEM}|110101199001010002")
        assert_error(several, 412, "RHIP-FHIR-0006")


# -- Prefer -------------------------------------------------------------------------------------------
class TestPrefer:
    def test_return_minimal(self, fhir: FhirClient) -> None:
        resp = fhir.post("Patient", patient(), headers={"Prefer": "return=minimal"})
        assert resp.status == 201
        assert not resp.body
        location = resp.headers["Location"]
        rid = location.removeprefix(f"{BASE}/Patient/").split("/")[0]
        stored = fhir.read("Patient", rid)
        upd = fhir.put(f"Patient/{rid}", stored, headers={"Prefer": "return=minimal"})
        assert upd.status == 200
        assert not upd.body
        assert upd.headers["ETag"] == 'W/"2"'
        op = [{"op": "replace", "path": "/gender", "value": "female"}]
        patched = fhir.patch(f"Patient/{rid}", op, headers={"Prefer": "return=minimal"})
        assert patched.status == 200
        assert not patched.body

    def test_return_representation(self, fhir: FhirClient) -> None:
        resp = fhir.post("Patient", patient(), headers={"Prefer": "return=representation"})
        assert resp.status == 201
        assert body_of(resp)["resourceType"] == "Patient"

    def test_return_operation_outcome(self, fhir: FhirClient) -> None:
        resp = fhir.post("Patient", patient(), headers={"Prefer": "return=OperationOutcome"})
        assert resp.status == 201
        outcome = body_of(resp)
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["severity"] == "information"
        assert resp.headers["Location"].startswith(f"{BASE}/Patient/")


# -- history ------------------------------------------------------------------------------------------
class TestHistory:
    def _three_versions(self, fhir: FhirClient) -> str:
        created = fhir.create(patient())
        rid = created["id"]
        fhir.put(f"Patient/{rid}", {**created, "gender": "female"})
        fhir.delete(f"Patient/{rid}")
        return str(rid)

    def test_instance_history_newest_first(self, fhir: FhirClient) -> None:
        rid = self._three_versions(fhir)
        fhir.create(patient(family="赵"))
        history = fhir.search(f"Patient/{rid}/_history")
        assert history["type"] == "history"
        assert history["total"] == 3
        entries = history["entry"]
        assert [e["request"]["method"] for e in entries] == ["DELETE", "PUT", "POST"]
        assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
        assert entries[1]["resource"]["gender"] == "female"
        assert entries[2]["resource"]["meta"]["versionId"] == "1"
        assert all(e["fullUrl"] == f"{BASE}/Patient/{rid}" for e in entries)

    def test_type_history(self, fhir: FhirClient) -> None:
        pat = fhir.create(patient())
        fhir.create(observation(f"Patient/{pat['id']}"))
        fhir.put(f"Patient/{pat['id']}", {**pat, "gender": "female"})
        type_history = fhir.search("Patient/_history")
        assert [e["fullUrl"] for e in type_history["entry"]] == [f"{BASE}/Patient/{pat['id']}"] * 2
        assert [e["response"]["etag"] for e in type_history["entry"]] == ['W/"2"', 'W/"1"']
        assert type_history["total"] == 2

    def test_system_history(self, fhir: FhirClient) -> None:
        pat = fhir.create(patient())
        obs = fhir.create(observation(f"Patient/{pat['id']}"))
        fhir.put(f"Patient/{pat['id']}", {**pat, "gender": "female"})
        system = fhir.search("_history")
        urls = [e["fullUrl"] for e in system["entry"]]
        assert urls == [
            f"{BASE}/Patient/{pat['id']}",
            f"{BASE}/Observation/{obs['id']}",
            f"{BASE}/Patient/{pat['id']}",
        ]
        assert [e["request"]["method"] for e in system["entry"]] == ["PUT", "POST", "POST"]

    def test_since(self, fhir: FhirClient) -> None:
        first = fhir.create(patient(family="赵"))
        time.sleep(0.01)  # versions carry millisecond timestamps: let the next one be later
        second = fhir.create(patient(family="钱"))
        since = second["meta"]["lastUpdated"]
        for path in ("_history", "Patient/_history"):
            bundle = fhir.search(path, [("_since", since)])
            urls = [e["fullUrl"] for e in bundle["entry"]]
            assert urls == [f"{BASE}/Patient/{second['id']}"]
        assert fhir.search(f"Patient/{first['id']}/_history", [("_since", since)]).get("entry", []) == []
        assert len(fhir.search("_history", [("_since", "2001-01-01T00:00:00Z")])["entry"]) == 2
        assert fhir.search("_history", [("_since", "2999-01-01T00:00:00Z")]).get("entry", []) == []

    def test_at(self, fhir: FhirClient) -> None:
        first = fhir.create(patient(family="赵"))
        time.sleep(0.01)
        fhir.create(patient(family="钱"))
        bundle = fhir.search("Patient/_history", [("_at", first["meta"]["lastUpdated"])])
        assert [e["fullUrl"] for e in bundle["entry"]] == [f"{BASE}/Patient/{first['id']}"]

    def test_at_a_period_gives_every_version_current_during_it(self, fhir: FhirClient) -> None:
        created = fhir.create(patient(family="孙"))
        time.sleep(0.01)
        fhir.put(f"Patient/{created['id']}", {**created, "gender": "female"})
        path = f"Patient/{created['id']}/_history"
        first_instant = created["meta"]["lastUpdated"]
        assert [
            e["resource"]["meta"]["versionId"] for e in fhir.search(path, [("_at", first_instant)])["entry"]
        ] == ["1"]
        year = first_instant[:4]  # a period: both versions were current at some point of this year
        assert [e["resource"]["meta"]["versionId"] for e in fhir.search(path, [("_at", year)])["entry"]] == [
            "2",
            "1",
        ]

    @pytest.mark.parametrize("path", ["_history", "Patient/_history", "instance"])
    def test_count_and_paging(self, fhir: FhirClient, path: str) -> None:
        created = fhir.create(patient())
        rid = created["id"]
        for gender in ("female", "other", "unknown", "male"):
            fhir.put(f"Patient/{rid}", {**created, "gender": gender})
        if path == "instance":
            path = f"Patient/{rid}/_history"
        pages = list(fhir.pages(path, "_count=2"))
        assert [len(p["entry"]) for p in pages] == [2, 2, 1]
        versions = [e["resource"]["meta"]["versionId"] for p in pages for e in p["entry"]]
        assert versions == ["5", "4", "3", "2", "1"]
        nxt = next_link(pages[0])
        assert nxt is not None
        assert nxt.startswith(f"{BASE}/{path}?")
        assert "_count=2" in nxt
        self_link = next(lk["url"] for lk in pages[0]["link"] if lk["relation"] == "self")
        assert self_link == f"{BASE}/{path}?_count=2"

    def test_count_zero_does_not_claim_an_empty_history(self, fhir: FhirClient) -> None:
        fhir.create(patient())
        fhir.create(patient())
        bundle = fhir.search("Patient/_history", "_count=0")
        assert bundle.get("total") in (None, 2), bundle

    def test_bad_parameters_are_400(self, fhir: FhirClient) -> None:
        assert_error(fhir.get("_history", "_since=yesterday"), 400, "RHIP-FHIR-0001")
        assert_error(fhir.get("_history", "_count=many"), 400, "RHIP-FHIR-0001")
        assert_error(fhir.get("_history", "name=王"), 400, "RHIP-FHIR-0001")
        assert_error(fhir.get("_history", "_page=garbage"), 400, "RHIP-FHIR-0001")

    def test_history_of_unknown_resource_is_404(self, fhir: FhirClient) -> None:
        assert_error(fhir.get("Patient/nobody/_history"), 404, "RHIP-FHIR-0002")
        assert_error(fhir.get("Patientt/_history"), 404, "RHIP-FHIR-0002")


# -- search, compartments, $everything ---------------------------------------------------------------------
class TestSearch:
    def test_type_search(self, fhir: FhirClient) -> None:
        wang = fhir.create(patient(family="王"))
        fhir.create(patient(family="李"))
        bundle = fhir.search("Patient", "name=王")
        assert bundle["type"] == "searchset"
        assert ids(bundle) == [f"Patient/{wang['id']}"]
        assert bundle["total"] == 1
        assert bundle["entry"][0]["fullUrl"] == f"{BASE}/Patient/{wang['id']}"
        self_link = next(lk["url"] for lk in bundle["link"] if lk["relation"] == "self")
        assert self_link.startswith(f"{BASE}/Patient?")

    def test_post_search(self, fhir: FhirClient) -> None:
        wang = fhir.create(patient(family="王"))
        fhir.create(patient(family="李"))
        resp = fhir.post(
            "Patient/_search", b"name=%E7%8E%8B", content_type="application/x-www-form-urlencoded"
        )
        assert resp.status == 200
        assert ids(body_of(resp)) == [f"Patient/{wang['id']}"]
        wrong = fhir.post("Patient/_search", b"name=x", content_type="text/plain")
        assert_error(wrong, 415, "RHIP-FHIR-0008")

    def test_search_paging(self, fhir: FhirClient) -> None:
        made = {f"Patient/{fhir.create(patient(family='周'))['id']}" for _ in range(5)}
        pages = list(fhir.pages("Patient", "name=周&_count=2"))
        assert [len(resources(p)) for p in pages] == [2, 2, 1]
        seen = [i for p in pages for i in ids(p)]
        assert len(seen) == len(set(seen)) == 5
        assert set(seen) == made

    def test_unknown_parameter_lenient_and_strict(self, fhir: FhirClient) -> None:
        fhir.create(patient())
        lenient = fhir.search("Patient", "shoe-size=42")
        assert len(resources(lenient)) == 1
        outcome = resources(lenient, "outcome")
        assert len(outcome) == 1
        assert "shoe-size" in diagnostics(outcome[0])
        strict = fhir.get("Patient", "shoe-size=42", headers={"Prefer": "handling=strict"})
        assert_error(strict, 400, "RHIP-FHIR-0012")

    def test_known_parameter_used_wrongly_is_400(self, fhir: FhirClient) -> None:
        outcome = assert_error(fhir.get("Patient", "birthdate=soon"), 400, "RHIP-FHIR-0001")
        assert "birthdate" in expressions(outcome) or "birthdate" in diagnostics(outcome)

    def test_terminology_modifiers_are_not_supported(self, fhir: FhirClient) -> None:
        resp = fhir.get("Observation", "code:in=http://example.org/vs")
        outcome = assert_error(resp, 400, "RHIP-FHIR-0013")
        assert outcome["issue"][0]["code"] == "not-supported"


class TestCompartment:
    def test_patient_compartment_search(self, fhir: FhirClient) -> None:
        mine = fhir.create(patient(family="王"))
        other = fhir.create(patient(family="李"))
        obs1 = fhir.create(observation(f"Patient/{mine['id']}", 130))
        obs2 = fhir.create(observation(f"Patient/{mine['id']}", 150, code="8462-4"))
        fhir.create(observation(f"Patient/{other['id']}", 110))
        bundle = fhir.search(f"Patient/{mine['id']}/Observation")
        assert sorted(ids(bundle)) == sorted([f"Observation/{obs1['id']}", f"Observation/{obs2['id']}"])
        filtered = fhir.search(f"Patient/{mine['id']}/Observation", "code=http://loinc.org|8462-4")
        assert ids(filtered) == [f"Observation/{obs2['id']}"]
        self_link = next(lk["url"] for lk in bundle["link"] if lk["relation"] == "self")
        assert self_link.startswith(f"{BASE}/Patient/{mine['id']}/Observation")

    def test_type_outside_the_compartment_is_400(self, fhir: FhirClient) -> None:
        mine = fhir.create(patient())
        assert_error(fhir.get(f"Patient/{mine['id']}/Organization"), 400, "RHIP-FHIR-0001")

    def test_only_patient_compartments(self, fhir: FhirClient) -> None:
        assert_error(fhir.get("Organization/1/Patient"), 400, "RHIP-FHIR-0013")
        assert_error(fhir.get("Nonsense/1/Patient"), 404, "RHIP-FHIR-0002")

    def test_compartment_search_is_get_only(self, fhir: FhirClient) -> None:
        mine = fhir.create(patient())
        resp = fhir.post(f"Patient/{mine['id']}/Observation", observation(f"Patient/{mine['id']}"))
        assert_error(resp, 405, "RHIP-FHIR-0011")


class TestEverything:
    def _record(self, fhir: FhirClient) -> tuple[dict[str, Any], set[str], str]:
        org = fhir.create({"resourceType": "Organization", "name": "西湖区卫生院"})
        pract = fhir.create({"resourceType": "Practitioner", "name": [{"family": "孙", "given": ["思邈"]}]})
        pat = fhir.create(patient(managingOrganization={"reference": f"Organization/{org['id']}"}))
        enc = fhir.create(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": f"Patient/{pat['id']}"},
                "serviceProvider": {"reference": f"Organization/{org['id']}"},
            }
        )
        cond = fhir.create(
            {
                "resourceType": "Condition",
                "code": {
                    "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}],
                    "text": "高血压",
                },
                "subject": {"reference": f"Patient/{pat['id']}"},
            }
        )
        obs = [
            fhir.create(
                observation(
                    f"Patient/{pat['id']}",
                    120 + i,
                    performer=[{"reference": f"Practitioner/{pract['id']}"}],
                    encounter={"reference": f"Encounter/{enc['id']}"},
                )
            )
            for i in range(3)
        ]
        other = fhir.create(patient(family="李"))
        fhir.create(observation(f"Patient/{other['id']}"))
        members = {f"Patient/{pat['id']}", f"Encounter/{enc['id']}", f"Condition/{cond['id']}"}
        members |= {f"Observation/{o['id']}" for o in obs}
        return pat, members, f"Organization/{org['id']}|Practitioner/{pract['id']}"

    def test_everything_returns_the_compartment_and_what_it_references(self, fhir: FhirClient) -> None:
        pat, members, refs = self._record(fhir)
        bundle = fhir.search(f"Patient/{pat['id']}/$everything")
        assert bundle["type"] == "searchset"
        assert set(ids(bundle)) == members
        assert set(ids(bundle, mode="include")) == set(refs.split("|"))

    def test_everything_paging(self, fhir: FhirClient) -> None:
        pat, members, _ = self._record(fhir)
        pages = list(fhir.pages(f"Patient/{pat['id']}/$everything", "_count=2"))
        assert len(pages) >= 2
        seen = [i for p in pages for i in ids(p)]
        assert len(seen) == len(set(seen))
        assert set(seen) == members

    def test_everything_type_and_since(self, fhir: FhirClient) -> None:
        pat, members, _ = self._record(fhir)
        only_obs = fhir.search(f"Patient/{pat['id']}/$everything", "_type=Observation")
        assert set(ids(only_obs)) == {m for m in members if m.startswith("Observation/")}
        future = fhir.search(f"Patient/{pat['id']}/$everything", "_since=2999-01-01T00:00:00Z")
        assert ids(future) == []

    def test_everything_errors(self, fhir: FhirClient) -> None:
        assert_error(fhir.get("Patient/nobody/$everything"), 404, "RHIP-FHIR-0002")
        pat = fhir.create(patient())
        assert_error(fhir.post(f"Patient/{pat['id']}/$everything", {}), 405, "RHIP-FHIR-0011")
        assert_error(fhir.get(f"Patient/{pat['id']}/$everything", "bogus=1"), 400, "RHIP-FHIR-0001")


# -- $validate ----------------------------------------------------------------------------------------
class TestValidate:
    def test_valid_resource_gives_an_information_issue(self, fhir: FhirClient) -> None:
        resp = fhir.post("Patient/$validate", patient())
        assert resp.status == 200
        outcome = body_of(resp)
        assert outcome["resourceType"] == "OperationOutcome"
        assert [i["severity"] for i in outcome["issue"]] == ["information"]
        assert fhir.search("Patient", "_summary=count")["total"] == 0  # nothing stored

    def test_invalid_resource_gives_error_issues_with_expression(self, fhir: FhirClient) -> None:
        bad = patient(gender="男", shoeSize=42)
        resp = fhir.post("Patient/$validate", bad)
        assert resp.status == 200
        outcome = body_of(resp)
        errors = [i for i in outcome["issue"] if i["severity"] == "error"]
        assert len(errors) >= 2
        found = expressions(outcome)
        assert "Patient.shoeSize" in found
        assert "Patient.gender" in found

    def test_parameters_form(self, fhir: FhirClient) -> None:
        good = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient()}]}
        outcome = body_of(fhir.post("Patient/$validate", good))
        assert [i["severity"] for i in outcome["issue"]] == ["information"]
        bad = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "mode", "valueCode": "create"},
                {"name": "resource", "resource": patient(x=1)},
            ],
        }
        outcome = body_of(fhir.post("Patient/$validate", bad))
        assert "error" in [i["severity"] for i in outcome["issue"]]
        assert "Patient.x" in expressions(outcome)

    def test_parameters_without_resource_is_400(self, fhir: FhirClient) -> None:
        body = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "create"}]}
        assert_error(fhir.post("Patient/$validate", body), 400, "RHIP-FHIR-0001")

    @pytest.mark.parametrize("parameter", [5, None, "resource"])
    def test_malformed_parameters_are_400(self, fhir: FhirClient, parameter: Any) -> None:
        body = {"resourceType": "Parameters", "parameter": parameter}
        assert_error(fhir.post("Patient/$validate", body), 400, "RHIP-FHIR-0001")

    def test_profile_parameter_is_not_supported(self, fhir: FhirClient) -> None:
        body = {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "resource", "resource": patient()},
                {"name": "profile", "valueUri": "http://example.org/StructureDefinition/cn-patient"},
            ],
        }
        assert_error(fhir.post("Patient/$validate", body), 400, "RHIP-FHIR-0013")

    def test_wrong_type_for_the_endpoint(self, fhir: FhirClient) -> None:
        resp = fhir.post("Observation/$validate", patient())
        assert resp.status == 200
        assert "error" in [i["severity"] for i in body_of(resp)["issue"]]

    def test_instance_level(self, fhir: FhirClient) -> None:
        stored = fhir.create(patient())
        ok = body_of(fhir.post(f"Patient/{stored['id']}/$validate", stored))
        assert [i["severity"] for i in ok["issue"]] == ["information"]
        mismatch = body_of(fhir.post(f"Patient/{stored['id']}/$validate", {**stored, "id": "other"}))
        assert "error" in [i["severity"] for i in mismatch["issue"]]

    def test_validate_is_post_only(self, fhir: FhirClient) -> None:
        assert_error(fhir.get("Patient/$validate"), 405, "RHIP-FHIR-0011")

    def test_unknown_operation(self, fhir: FhirClient) -> None:
        assert_error(fhir.post("Patient/$frobnicate", patient()), 400, "RHIP-FHIR-0013")
        assert_error(fhir.post("$frobnicate", patient()), 400, "RHIP-FHIR-0013")


# -- metadata -----------------------------------------------------------------------------------------
class TestMetadata:
    def test_capability_statement(self, fhir: FhirClient) -> None:
        resp = fhir.get("metadata")
        assert resp.status == 200
        cs = body_of(resp)
        assert cs["resourceType"] == "CapabilityStatement"
        assert cs["fhirVersion"] == "4.0.1"
        assert cs["kind"] == "instance"
        assert cs["implementation"]["url"] == BASE
        assert "application/fhir+json" in cs["format"]
        rest = cs["rest"][0]
        assert rest["mode"] == "server"
        assert {i["code"] for i in rest["interaction"]} >= {"transaction", "batch", "history-system"}
        by_type = {r["type"]: r for r in rest["resource"]}
        pat = by_type["Patient"]
        assert {i["code"] for i in pat["interaction"]} >= {
            "read",
            "vread",
            "update",
            "patch",
            "delete",
            "history-instance",
            "history-type",
            "create",
            "search-type",
        }
        params = {p["name"]: p["type"] for p in pat["searchParam"]}
        assert params["name"] == "string"
        assert params["identifier"] == "token"
        assert params["birthdate"] == "date"
        assert params["organization"] == "reference"
        assert "everything" in {o["name"] for o in pat["operation"]}
        assert pat["conditionalCreate"] is True
        assert "Observation" in by_type
        assert "code-value-quantity" in {p["name"] for p in by_type["Observation"]["searchParam"]}

    def test_metadata_is_get_only(self, fhir: FhirClient) -> None:
        assert_error(fhir.request("DELETE", "metadata"), 405, "RHIP-FHIR-0011")


# -- the errors of the table ----------------------------------------------------------------------------
class TestErrors:
    def test_malformed_json_is_400(self, fhir: FhirClient) -> None:
        assert_error(fhir.post("Patient", b'{"resourceType": "Patient", '), 400, "RHIP-FHIR-0001")
        assert_error(fhir.post("Patient", b"\xff\xfe not utf-8"), 400, "RHIP-FHIR-0001")

    def test_empty_body_is_400(self, fhir: FhirClient) -> None:
        assert_error(
            fhir.request("POST", "Patient", b"", headers={"content-type": "application/fhir+json"}),
            400,
            "RHIP-FHIR-0001",
        )

    @pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "application/fhir+xml", None])
    def test_wrong_content_type_is_415(self, fhir: FhirClient, content_type: str | None) -> None:
        resp = fhir.post("Patient", patient(), content_type=content_type)
        assert_error(resp, 415, "RHIP-FHIR-0008")

    def test_wrong_resource_type_is_400(self, fhir: FhirClient) -> None:
        outcome = assert_error(fhir.post("Patient", {"resourceType": "Organization"}), 400, "RHIP-FHIR-0001")
        assert "resourceType" in expressions(outcome)

    def test_missing_resource_type_is_400(self, fhir: FhirClient) -> None:
        outcome = assert_error(fhir.post("Patient", {"name": [{"family": "王"}]}), 400, "RHIP-FHIR-0001")
        assert "resourceType" in expressions(outcome)

    def test_unknown_element_is_422_with_expression(self, fhir: FhirClient) -> None:
        resp = fhir.post("Patient", patient(nickname="小王"))
        outcome = assert_error(resp, 422, "RHIP-FHIR-0004")
        assert "Patient.nickname" in expressions(outcome)

    def test_invalid_values_are_422(self, fhir: FhirClient) -> None:
        outcome = assert_error(fhir.post("Patient", patient(birthDate="1980-02-30")), 422, "RHIP-FHIR-0004")
        assert "Patient.birthDate" in expressions(outcome)
        outcome = assert_error(
            fhir.post("Patient", patient(name=[{"family": "王", "given": ["伟", 7]}])), 422, "RHIP-FHIR-0004"
        )
        assert "Patient.name[0].given[1]" in expressions(outcome)

    def test_control_characters_in_strings_are_422(self, fhir: FhirClient) -> None:
        # FHIR strings SHALL NOT contain characters below U+0020 other than tab, CR and LF.
        resp = fhir.post("Patient", b'{"resourceType":"Patient","name":[{"family":"\\u0000\\u0007"}]}')
        assert_error(resp, 422, "RHIP-FHIR-0004")

    @pytest.mark.parametrize("body", [b"[]", b'"Patient"', b"42", b"null"])
    def test_non_object_body_is_400(self, fhir: FhirClient, body: bytes) -> None:
        assert_error(fhir.post("Patient", body), 400, "RHIP-FHIR-0001")

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", "Patientt"),
            ("POST", "patient"),
            ("GET", "Patientt/1"),
            ("GET", "Resource"),
            ("GET", "Foo/_history"),
        ],
    )
    def test_unknown_resource_type_is_404(self, fhir: FhirClient, method: str, path: str) -> None:
        assert_error(
            fhir.request(method, path, patient() if method == "POST" else None), 404, "RHIP-FHIR-0002"
        )

    @pytest.mark.parametrize(
        "path", ["Patient/1/_history/1/extra", "Patient/1/_history/1/2/3", "Patient/1/$everything/more"]
    )
    def test_unknown_path_is_404(self, fhir: FhirClient, path: str) -> None:
        assert_error(fhir.get(path), 404, "RHIP-FHIR-0002")

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("DELETE", ""),
            ("PUT", ""),
            ("POST", "Patient/1"),
            ("POST", "metadata"),
            ("PUT", "_history"),
            ("DELETE", "Patient/1/_history"),
            ("PUT", "Patient/1/_history/1"),
            ("GET", "Patient/_search"),
            ("OPTIONS", "Patient"),
        ],
    )
    def test_method_not_allowed_is_405(self, fhir: FhirClient, method: str, path: str) -> None:
        assert_error(
            fhir.request(method, path, patient() if method != "GET" else None), 405, "RHIP-FHIR-0011"
        )

    @pytest.mark.parametrize(
        ("query", "accept"),
        [
            ("_format=xml", None),
            ("_format=application/fhir+xml", None),
            ("", "application/fhir+xml"),
            ("", "application/xml, text/xml"),
            ("", "text/html"),
        ],
    )
    def test_xml_is_not_acceptable(self, fhir: FhirClient, query: str, accept: str | None) -> None:
        headers = {"Accept": accept} if accept else {}
        pairs = [tuple(query.split("=", 1))] if query else []  # keep "+" as is (an escaped %2B in a URL)
        assert_error(fhir.get("metadata", pairs, headers=headers), 406, "RHIP-FHIR-0009")
        assert_error(fhir.post("Patient", patient(), query=pairs, headers=headers), 406, "RHIP-FHIR-0009")
        assert fhir.search("Patient", "_summary=count")["total"] == 0

    @pytest.mark.parametrize(
        ("query", "accept"),
        [
            ("_format=json", None),
            ("_format=application/fhir+json", None),
            ("", "application/fhir+json"),
            ("", "application/json"),
            ("", "application/fhir+xml;q=0.9, application/fhir+json"),
            ("", "*/*"),
        ],
    )
    def test_json_is_acceptable(self, fhir: FhirClient, query: str, accept: str | None) -> None:
        headers = {"Accept": accept} if accept else {}
        pairs = [tuple(query.split("=", 1))] if query else []  # keep "+" as is (an escaped %2B in a URL)
        assert fhir.get("metadata", pairs, headers=headers).status == 200

    def test_system_level_search_is_not_supported(self, fhir: FhirClient) -> None:
        outcome = assert_error(fhir.get("", "name=王"), 400, "RHIP-FHIR-0013")
        assert outcome["issue"][0]["code"] == "not-supported"
        assert_error(fhir.get(""), 400, "RHIP-FHIR-0013")

    def test_outcome_details_carry_the_code_system(self, fhir: FhirClient) -> None:
        outcome = assert_error(fhir.get("Patient/nobody"), 404, "RHIP-FHIR-0002")
        issue = outcome["issue"][0]
        assert issue["details"]["coding"] == [{"system": "urn:rhip:error-code", "code": "RHIP-FHIR-0002"}]
        assert issue["code"] == "not-found"
        assert rhip_codes(outcome) == ["RHIP-FHIR-0002"]

    @pytest.mark.parametrize(
        ("method", "path", "query"),
        [
            ("GET", "_history", "_page=99999999999999999999999"),
            ("GET", "Patient/_history", "_page=-99999999999999999999999"),
            ("GET", "Patient", "_page=k..99999999999999999999999.0"),
            ("GET", "Patient", "_page=k..1.99999999999999999999999"),
            ("GET", "Patient", "_page=c.nonsense.1.0"),
            ("GET", "Patient", "name=%00"),
            ("GET", "Patient", "_count=99999999999999999999999"),
            ("GET", "Patient", "_id=" + "x" * 3000),
            ("GET", "Patient", "birthdate=ge99999-01-01"),
            ("GET", "Observation", "value-quantity=gt1e400"),
            ("GET", "Patient", "_lastUpdated=2024-13-45"),
        ],
    )
    def test_no_request_is_a_server_error(self, fhir: FhirClient, method: str, path: str, query: str) -> None:
        fhir.create(patient())
        resp = fhir.request(method, path, query=query)  # the client asserts status < 500 and no exception
        assert resp.status in (200, 400, 404), resp.status

    def test_no_server_error_on_everything_paging_tokens(self, fhir: FhirClient) -> None:
        rid = fhir.create(patient())["id"]
        for token in ("k..99999999999999999999999.0", "k..1.99999999999999999999999", "nonsense"):
            resp = fhir.get(f"Patient/{rid}/$everything", [("_page", token)])
            assert resp.status in (200, 400), resp.status


# -- Binary as its native content ----------------------------------------------------------------------
class TestNativeBinary:
    CDA = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>门诊病历</title></ClinicalDocument>'
    ).encode()

    def _binary(self, fhir: FhirClient, content_type: str = "text/xml") -> dict[str, Any]:
        import base64

        return fhir.create(
            {
                "resourceType": "Binary",
                "contentType": content_type,
                "data": base64.b64encode(self.CDA).decode(),
            }
        )

    @pytest.mark.parametrize("accept", ["text/xml", "application/xml", "application/pdf, text/xml;q=0.9"])
    def test_a_non_fhir_accept_gets_the_bytes_as_stored(self, fhir: FhirClient, accept: str) -> None:
        created = self._binary(fhir)
        resp = fhir.get(f"Binary/{created['id']}", headers={"Accept": accept})
        assert resp.status == 200
        assert resp.body == self.CDA
        assert resp.content_type == "text/xml"
        assert resp.headers["ETag"] == 'W/"1"'
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Content-Security-Policy"].startswith("sandbox")

    @pytest.mark.parametrize("accept", [None, "application/fhir+json", "*/*", "text/xml, application/json"])
    def test_a_fhir_accept_gets_the_resource(self, fhir: FhirClient, accept: str | None) -> None:
        created = self._binary(fhir)
        headers = {"Accept": accept} if accept else {}
        resp = fhir.get(f"Binary/{created['id']}", headers=headers)
        assert resp.status == 200
        assert body_of(resp)["resourceType"] == "Binary"

    def test_other_types_and_missing_binaries_keep_their_answers(self, fhir: FhirClient) -> None:
        assert_error(fhir.get("Binary/nope", headers={"Accept": "text/xml"}), 404, "RHIP-FHIR-0002")
        created = fhir.create(patient())
        assert_error(
            fhir.get(f"Patient/{created['id']}", headers={"Accept": "text/xml"}), 406, "RHIP-FHIR-0009"
        )

    def test_an_operation_is_not_refused_for_its_accept_header(self, fhir: FhirClient) -> None:
        # The operation decides what it can produce ($validate answers JSON whatever is asked).
        resp = fhir.post("Patient/$validate", patient(), headers={"Accept": "text/html"})
        assert resp.status == 200
