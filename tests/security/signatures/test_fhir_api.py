"""$sign and $verify-signature on a real SQL store (SQLite) behind the FHIR service, and the read header."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from rhip.core.clock import SystemClock
from rhip.db.engine import Database, DatabaseConfig, build_engine
from rhip.db.migrate import upgrade
from rhip.fhir.definitions import structure
from rhip.fhir.rest.extensions import Extensions
from rhip.fhir.rest.interactions import Interactions, RestSettings
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.service import FhirService
from rhip.fhir.search.extract import IndexExtractor
from rhip.fhir.search.params import registry
from rhip.fhir.search.parse import SearchParser
from rhip.fhir.validation import validator
from rhip.security.context import acting_as
from rhip.security.principal import platform_principal
from rhip.security.signatures.certificates import TrustStore
from rhip.security.signatures.fhir_api import HEADER, SIGN_DEFINITION, VERIFY_DEFINITION, Signatures, register
from rhip.security.signatures.provenance import Signer, Verifier
from rhip.store.context import StoreContext
from rhip.store.repository import SqlFhirRepository

from .conftest import Party

BASE = "http://rhip.test/fhir"
CDA = "<ClinicalDocument><title>出院小结</title></ClinicalDocument>".encode()


class Api:
    """A FHIR service on a fresh SQLite store with the signature operations registered."""

    def __init__(self, tmp: Path, signer: Signer | None, verifier: Verifier) -> None:
        zone = ZoneInfo("Asia/Shanghai")
        self.db = Database(build_engine(DatabaseConfig(url=f"sqlite:///{tmp}/rhip.db")))
        upgrade(self.db.engine)
        params, table, check = registry(), structure(), validator()
        ctx = StoreContext(
            self.db, table, params, IndexExtractor(params, zone, (BASE,)), check, SystemClock()
        )
        self.repo = SqlFhirRepository(ctx)
        parser = SearchParser(params, zone, (BASE,))
        extensions = Extensions()
        self.signatures: Signatures = register(extensions, signer, verifier, parser)
        interactions = Interactions(table, parser, RestSettings(), zone)
        self.service = FhirService(self.repo, interactions, lambda base: {}, check, extensions)

    def call(self, method: str, path: str, body: Any = None, accept: str | None = None) -> FhirResponse:
        raw = orjson.dumps(body) if body is not None else b""
        headers = {"content-type": "application/fhir+json"} if raw else {}
        if accept:
            headers["accept"] = accept
        req = FhirRequest(method, path, [], headers, raw, BASE)
        resp = self.service.handle(req)
        assert resp.status < 500 or resp.status == 501, (resp.status, resp.body)
        self.signatures.annotate(self.repo, req, resp)
        return resp

    def body(self, resp: FhirResponse) -> Any:
        assert resp.body is not None
        return orjson.loads(resp.body)

    def document(self, cda: bytes = CDA) -> tuple[str, str]:
        """Store a Binary and the DocumentReference holding it, as the registry does; their ids."""
        binary = self.body(
            self.call(
                "POST",
                "Binary",
                {"resourceType": "Binary", "contentType": "text/xml", "data": base64.b64encode(cda).decode()},
            )
        )
        reference = {
            "resourceType": "DocumentReference",
            "status": "current",
            "description": "出院小结",
            "content": [{"attachment": {"contentType": "text/xml", "url": f"Binary/{binary['id']}"}}],
        }
        doc = self.body(self.call("POST", "DocumentReference", reference))
        binary["securityContext"] = {"reference": f"DocumentReference/{doc['id']}"}
        assert self.call("PUT", f"Binary/{binary['id']}", binary).status == 200
        return doc["id"], binary["id"]

    def status(self, path: str) -> str:
        params = self.body(self.call("GET", f"{path}/$verify-signature"))
        assert params["resourceType"] == "Parameters"
        return str(params["parameter"][0]["valueCode"])


@pytest.fixture
def api(tmp_path: Path, cas: dict[str, Party], signers: dict[str, Party]) -> Iterator[Api]:
    party = signers["sm2"]
    api = Api(tmp_path, Signer(party.key, party.chain), Verifier(TrustStore([cas["sm2"].cert])))
    yield api
    api.db.dispose()


def test_sign_then_verify_a_document(api: Api) -> None:
    doc_id, binary_id = api.document()
    assert api.status(f"DocumentReference/{doc_id}") == "unsigned"
    with acting_as(platform_principal("test")):
        resp = api.call("POST", f"DocumentReference/{doc_id}/$sign")
    assert resp.status == 201, resp.body
    provenance = api.body(resp)
    assert resp.headers["Location"].startswith(f"Provenance/{provenance['id']}/_history/")
    assert {t["reference"].rsplit("/_history/", 1)[0] for t in provenance["target"]} == {
        f"DocumentReference/{doc_id}",
        f"Binary/{binary_id}",
    }
    assert provenance["agent"][1]["who"]["identifier"]["value"] == "platform:test"
    params = api.body(api.call("GET", f"DocumentReference/{doc_id}/$verify-signature"))
    assert params["parameter"][0] == {"name": "status", "valueCode": "valid"}
    parts = {p["name"]: p for p in params["parameter"][1]["part"]}
    assert parts["provenance"]["valueReference"]["reference"] == f"Provenance/{provenance['id']}"
    assert parts["algorithm"]["valueCode"] == "SM2-SM3" and parts["signer"]["valueString"] == "第一人民医院"
    assert api.call("POST", f"DocumentReference/{doc_id}/$verify-signature").status == 200
    # Reads say so.
    assert api.call("GET", f"DocumentReference/{doc_id}").headers[HEADER] == "valid"
    assert api.call("GET", f"Binary/{binary_id}").headers[HEADER] == "valid"
    native = api.call("GET", f"Binary/{binary_id}", accept="text/xml")
    assert native.body == CDA and native.headers[HEADER] == "valid"
    assert HEADER not in api.call("GET", "DocumentReference").headers  # searches are not annotated


def test_an_altered_binary_is_flagged(api: Api) -> None:
    doc_id, binary_id = api.document()
    assert api.call("POST", f"DocumentReference/{doc_id}/$sign").status == 201
    binary = api.body(api.call("GET", f"Binary/{binary_id}"))
    binary["data"] = base64.b64encode(CDA.replace("出院".encode(), "入院".encode())).decode()
    assert api.call("PUT", f"Binary/{binary_id}", binary).status == 200
    params = api.body(api.call("GET", f"DocumentReference/{doc_id}/$verify-signature"))
    assert params["parameter"][0]["valueCode"] == "invalid"
    reason = next(p for p in params["parameter"][1]["part"] if p["name"] == "reason")
    assert reason["valueString"] == f"Binary/{binary_id} changed since it was signed"
    assert api.call("GET", f"Binary/{binary_id}").headers[HEADER] == "invalid"
    assert api.call("GET", f"DocumentReference/{doc_id}").headers[HEADER] == "invalid"


def test_an_altered_document_reference_and_signing_again(api: Api) -> None:
    doc_id, _ = api.document()
    assert api.call("POST", f"DocumentReference/{doc_id}/$sign").status == 201
    doc = api.body(api.call("GET", f"DocumentReference/{doc_id}"))
    doc["status"] = "superseded"  # lifecycle: not signed
    assert api.call("PUT", f"DocumentReference/{doc_id}", doc).status == 200
    assert api.status(f"DocumentReference/{doc_id}") == "valid"
    doc["description"] = "入院记录"
    assert api.call("PUT", f"DocumentReference/{doc_id}", doc).status == 200
    assert api.status(f"DocumentReference/{doc_id}") == "invalid"
    assert api.call("POST", f"DocumentReference/{doc_id}/$sign").status == 201  # signed again, as it is now
    params = api.body(api.call("GET", f"DocumentReference/{doc_id}/$verify-signature"))
    assert params["parameter"][0]["valueCode"] == "valid"
    assert sorted(p["part"][1]["valueCode"] for p in params["parameter"][1:]) == ["invalid", "valid"]


def test_untrusted_signer(tmp_path: Path, cas: dict[str, Party], signers: dict[str, Party]) -> None:
    party = signers["ec"]
    api = Api(tmp_path, Signer(party.key, party.chain), Verifier(TrustStore([cas["sm2"].cert])))
    try:
        doc_id, binary_id = api.document()
        assert api.call("POST", f"DocumentReference/{doc_id}/$sign").status == 201
        assert api.status(f"DocumentReference/{doc_id}") == "untrusted"
        assert api.call("GET", f"Binary/{binary_id}").headers[HEADER] == "untrusted"
    finally:
        api.db.dispose()


def test_referral_packages(api: Api) -> None:
    referral = {
        "resourceType": "ServiceRequest",
        "status": "active",
        "intent": "order",
        "subject": {"display": "转诊病人"},
        "note": [{"text": "转上级医院"}],
    }
    sr = api.body(api.call("POST", "ServiceRequest", referral))
    assert api.call("POST", f"ServiceRequest/{sr['id']}/$sign").status == 201
    assert api.status(f"ServiceRequest/{sr['id']}") == "valid"
    sr["status"] = "completed"
    api.call("PUT", f"ServiceRequest/{sr['id']}", sr)
    assert api.call("GET", f"ServiceRequest/{sr['id']}").headers[HEADER] == "valid"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": referral}],
    }
    stored = api.body(api.call("POST", "Bundle", bundle))
    assert api.call("POST", f"Bundle/{stored['id']}/$sign").status == 201
    assert api.status(f"Bundle/{stored['id']}") == "valid"
    stored["entry"][0]["resource"]["note"][0]["text"] = "不转诊"
    api.call("PUT", f"Bundle/{stored['id']}", stored)
    assert api.status(f"Bundle/{stored['id']}") == "invalid"


def test_errors(tmp_path: Path, cas: dict[str, Party]) -> None:
    api = Api(tmp_path, None, Verifier(TrustStore([cas["sm2"].cert])))
    try:
        doc_id, binary_id = api.document()
        resp = api.call("POST", f"DocumentReference/{doc_id}/$sign")
        assert resp.status == 501 and b"RHIP-SIG-0001" in (resp.body or b"")
        assert api.call("GET", f"DocumentReference/{doc_id}/$sign").status == 405
        assert api.call("GET", "DocumentReference/nope/$verify-signature").status == 404
        assert api.call("GET", f"Binary/{binary_id}").headers[HEADER] == "unsigned"
        assert api.status(f"DocumentReference/{doc_id}") == "unsigned"
        req = FhirRequest("GET", f"DocumentReference/{doc_id}/$verify-signature", [("x", "1")], {}, b"", BASE)
        assert api.service.handle(req).status == 400
        assert api.signatures.signature_status(api.repo, "Binary", "nope") == "unknown"
    finally:
        api.db.dispose()


def test_a_document_whose_binary_is_missing_cannot_be_signed(api: Api) -> None:
    reference = {
        "resourceType": "DocumentReference",
        "status": "current",
        "content": [{"attachment": {"contentType": "text/xml", "url": "Binary/absent"}}],
    }
    doc = api.body(api.call("POST", "DocumentReference", reference))
    resp = api.call("POST", f"DocumentReference/{doc['id']}/$sign")
    assert resp.status == 422 and b"RHIP-SIG-0002" in (resp.body or b"")


def test_a_binary_whose_document_was_deleted(api: Api) -> None:
    doc_id, binary_id = api.document()
    assert api.call("POST", f"DocumentReference/{doc_id}/$sign").status == 201
    assert api.call("DELETE", f"DocumentReference/{doc_id}").status in (200, 204)
    [result] = api.signatures.verify(api.repo, "Binary", binary_id)
    assert result.status.value == "invalid" and result.reason == f"DocumentReference/{doc_id} is gone"


def test_the_operation_definitions_are_valid_fhir() -> None:
    check = validator()
    for definition in (SIGN_DEFINITION, VERIFY_DEFINITION):
        assert check.validate(definition) == []
    extensions = Extensions()
    register(extensions, None, Verifier(TrustStore([])), SearchParser(registry(), ZoneInfo("UTC")))
    assert {(t, c) for t, c in extensions.operations} == {
        (t, c)
        for t in ("DocumentReference", "Bundle", "ServiceRequest")
        for c in ("sign", "verify-signature")
    }
    with pytest.raises(ValueError, match="registered twice"):
        register(extensions, None, Verifier(TrustStore([])), SearchParser(registry(), ZoneInfo("UTC")))
