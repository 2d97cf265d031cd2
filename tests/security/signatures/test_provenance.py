"""Signing targets into Provenance and verifying them: valid, invalid, untrusted, unsigned."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rhip.security.signatures import jws
from rhip.security.signatures.certificates import TrustStore
from rhip.security.signatures.keys import InvalidKey, private_key_pem
from rhip.security.signatures.provenance import (
    SIGNATURE_TYPE,
    Signer,
    SignerConfig,
    Status,
    Verification,
    Verifier,
    VerifierConfig,
    overall,
    platform_signatures,
)
from rhip.security.signatures.targets import SignedTarget, binary_references, canonical_json, manifest

from .conftest import KINDS, Party, make_ca, make_signer

CDA = "<ClinicalDocument>门诊摘要</ClinicalDocument>".encode()


def document(cda: bytes = CDA, **changes: Any) -> SignedTarget:
    """A DocumentReference (version 2) holding Binary/b1."""
    resource = {
        "resourceType": "DocumentReference",
        "id": "d1",
        "meta": {"versionId": "2", "lastUpdated": "2025-03-01T08:00:00Z"},
        "status": "current",
        "subject": {"reference": "Patient/p1"},
        "type": {"coding": [{"system": "urn:oid:2.16.156.10011.2.4", "code": "C0003"}]},
        "content": [{"attachment": {"contentType": "text/xml", "url": "Binary/b1", "size": len(cda)}}],
    }
    resource.update(changes)
    return SignedTarget("DocumentReference", "d1", 2, resource, {"Binary/b1": cda}, {"Binary/b1": 1})


def signer_of(party: Party, **kw: Any) -> Signer:
    return Signer(party.key, party.chain, **kw)


def verifier_of(*cas: Party, **kw: Any) -> Verifier:
    return Verifier(TrustStore([c.cert for c in cas]), **kw)


@pytest.mark.parametrize("kind", KINDS)
def test_a_signed_document_is_valid(kind: str, cas: dict[str, Party], signers: dict[str, Party]) -> None:
    provenance = signer_of(signers[kind]).provenance(document(), requested_by="user:doc1", institution="H001")
    [result] = verifier_of(cas[kind]).verify_provenance(provenance, document())
    assert result.status is Status.VALID, result.reason
    assert result.algorithm == {"sm2": "SM2-SM3", "ec": "ES256", "rsa": "RS256"}[kind]
    assert result.signer == "第一人民医院"


def test_the_provenance_resource(signers: dict[str, Party]) -> None:
    moment = datetime(2025, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
    prov = signer_of(signers["sm2"]).provenance(
        document(), now=moment, requested_by="user:doc1", institution="H001"
    )
    assert prov["resourceType"] == "Provenance"
    assert prov["target"] == [
        {"reference": "DocumentReference/d1/_history/2"},
        {"reference": "Binary/b1/_history/1"},
    ]
    assert prov["recorded"] == "2025-03-01T08:00:00.123Z"
    [sig] = prov["signature"]
    assert sig["type"] == [SIGNATURE_TYPE] and SIGNATURE_TYPE["code"] == "1.2.840.10065.1.12.1.1"
    assert sig["sigFormat"] == "application/jose"
    assert sig["when"] == prov["recorded"]
    assert sig["who"] == prov["agent"][0]["who"] == {"display": "第一人民医院"}
    enterer = prov["agent"][1]
    assert enterer["who"]["identifier"]["value"] == "user:doc1"
    assert enterer["onBehalfOf"]["identifier"] == {"system": "urn:oid:2.16.156.10011.1.5", "value": "H001"}
    parsed = jws.parse(base64.b64decode(sig["data"]).decode())
    assert parsed.header["alg"] == "SM2-SM3" and parsed.header["sigT"] == "2025-03-01T08:00:00.123Z"
    assert parsed.header["crit"] == ["sigT"]
    assert parsed.payload == manifest(document(), "sm3")
    assert parsed.payload["target"] == "DocumentReference/d1" and set(parsed.payload["content"]) == {
        "Binary/b1"
    }
    assert parsed.certificates()[0] == signers["sm2"].cert


def test_altered_content_is_invalid(cas: dict[str, Party], signers: dict[str, Party]) -> None:
    prov = signer_of(signers["sm2"]).provenance(document())
    verifier = verifier_of(cas["sm2"])
    [altered] = verifier.verify_provenance(prov, document(CDA.replace("门诊".encode(), "住院".encode())))
    assert altered.status is Status.INVALID and altered.reason == "Binary/b1 changed since it was signed"
    [changed] = verifier.verify_provenance(prov, document(subject={"reference": "Patient/p2"}))
    assert changed.status is Status.INVALID and "DocumentReference/d1 changed" in changed.reason
    gone = document()
    gone.contents["Binary/b1"] = None
    [missing] = verifier.verify_provenance(prov, gone)
    assert missing.status is Status.INVALID and "gone" in missing.reason


def test_lifecycle_fields_are_not_signed(cas: dict[str, Party], signers: dict[str, Party]) -> None:
    prov = signer_of(signers["ec"]).provenance(document())
    later = document(status="superseded", relatesTo=[{"code": "replaces", "target": {"reference": "x"}}])
    later.resource["meta"] = {"versionId": "3"}
    later.resource["text"] = {"status": "generated", "div": "<div>x</div>"}
    [result] = verifier_of(cas["ec"]).verify_provenance(prov, later)
    assert result.status is Status.VALID, result.reason


def test_a_broken_signature_is_invalid(cas: dict[str, Party], signers: dict[str, Party]) -> None:
    prov = signer_of(signers["sm2"]).provenance(document())
    compact = base64.b64decode(prov["signature"][0]["data"]).decode()
    header, payload, signature = compact.split(".")
    forged_payload = json.loads(base64.urlsafe_b64decode(payload + "==="))
    forged_payload["resource"] = "AAAA"
    forged = f"{header}.{jws.b64url(canonical_json(forged_payload))}.{signature}"
    result = verifier_of(cas["sm2"]).verify(forged, document())
    assert result.status is Status.INVALID and "does not verify" in result.reason
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert (
        verifier_of(cas["sm2"]).verify(f"{header}.{payload}.{flipped}", document()).status is Status.INVALID
    )
    for garbage in ("", "a.b", "x.y.z", compact.replace(".", "!", 1)):
        result = verifier_of(cas["sm2"]).verify(garbage, document())
        assert result.status is Status.INVALID and result.reason.startswith("malformed")


def test_a_signature_for_another_resource_is_invalid(
    cas: dict[str, Party], signers: dict[str, Party]
) -> None:
    prov = signer_of(signers["rsa"], rsa_pss=True).provenance(document())
    other = SignedTarget(
        "DocumentReference", "d2", 1, {**document().resource, "id": "d2"}, document().contents
    )
    [result] = verifier_of(cas["rsa"]).verify_provenance(prov, other)
    assert result.status is Status.INVALID and "not DocumentReference/d2" in result.reason
    assert result.algorithm == "PS256"


def test_untrusted_certificates(
    cas: dict[str, Party], signers: dict[str, Party], expired_signer: Party
) -> None:
    prov = signer_of(signers["sm2"]).provenance(document())
    [other_ca] = verifier_of(make_ca("sm2", "Other")).verify_provenance(prov, document())
    assert other_ca.status is Status.UNTRUSTED and "not issued by a CA" in other_ca.reason
    [no_bundle] = Verifier(TrustStore([])).verify_provenance(prov, document())
    assert no_bundle.status is Status.UNTRUSTED and "no CA bundle" in no_bundle.reason
    # Signed after the certificate expired.
    late = signer_of(expired_signer).provenance(document())
    [expired] = verifier_of(cas["sm2"]).verify_provenance(late, document())
    assert expired.status is Status.UNTRUSTED and "expired" in expired.reason


def test_validity_at_signing_time_or_now(cas: dict[str, Party], expired_signer: Party) -> None:
    signed_while_valid = datetime.now(UTC) - timedelta(days=20)
    prov = signer_of(expired_signer).provenance(document(), now=signed_while_valid)
    [at_signing] = verifier_of(cas["sm2"]).verify_provenance(prov, document())
    assert at_signing.status is Status.VALID, at_signing.reason
    [at_now] = verifier_of(cas["sm2"], validity_at="now").verify_provenance(prov, document())
    assert at_now.status is Status.UNTRUSTED and "expired" in at_now.reason


def test_a_signing_time_in_the_future_is_untrusted(cas: dict[str, Party], signers: dict[str, Party]) -> None:
    prov = signer_of(signers["ec"]).provenance(document(), now=datetime.now(UTC) + timedelta(hours=1))
    [result] = verifier_of(cas["ec"]).verify_provenance(prov, document())
    assert result.status is Status.UNTRUSTED and "future" in result.reason


def test_foreign_and_damaged_signatures(cas: dict[str, Party], signers: dict[str, Party]) -> None:
    prov = signer_of(signers["ec"]).provenance(document())
    mine = prov["signature"][0]
    foreign_header = jws.b64url(canonical_json({"alg": "ES256", "cty": "application/other"}))
    prov["signature"] = [
        {**mine, "sigFormat": "application/signature+xml", "data": "PFNpZ25hdHVyZS8+"},
        {**mine, "data": base64.b64encode(f"{foreign_header}.e30.AAAA".encode()).decode()},
        mine,
        {**mine, "data": "%%%"},
    ]
    results = verifier_of(cas["ec"]).verify_provenance(prov, document())
    assert [r.status for r in results] == [Status.VALID, Status.INVALID]
    assert len(platform_signatures(prov)) == 2


def test_overall_status() -> None:
    def v(status: Status, when: str | None) -> Verification:
        return Verification(status, "", when=when)

    assert overall([]) is Status.UNSIGNED
    assert (
        overall([v(Status.INVALID, "2025-01-01T00:00:00Z"), v(Status.VALID, "2025-02-01T00:00:00Z")])
        is Status.VALID
    )
    assert (
        overall([v(Status.VALID, "2025-02-01T00:00:00Z"), v(Status.UNTRUSTED, "2025-02-01T00:00:00Z")])
        is Status.UNTRUSTED
    )
    assert overall([v(Status.VALID, "2025-01-01T00:00:00Z"), v(Status.INVALID, None)]) is Status.VALID
    # Moments compare as moments, whatever their precision.
    assert (
        overall([v(Status.VALID, "2025-02-01T00:00:00.001Z"), v(Status.INVALID, "2025-02-01T00:00:00Z")])
        is Status.VALID
    )


def test_signer_and_verifier_from_files(
    tmp_path: Path, cas: dict[str, Party], signers: dict[str, Party]
) -> None:
    (tmp_path / "signer.key").write_bytes(private_key_pem(signers["sm2"].key))
    (tmp_path / "signer.pem").write_bytes(signers["sm2"].cert.pem())
    (tmp_path / "ca.pem").write_bytes(cas["sm2"].cert.pem() + cas["ec"].cert.pem())
    signer = Signer.from_config(SignerConfig(tmp_path / "signer.key", tmp_path / "signer.pem"))
    verifier = Verifier.from_config(VerifierConfig(tmp_path / "ca.pem"))
    assert signer.algorithm == "SM2-SM3"
    [result] = verifier.verify_provenance(signer.provenance(document()), document())
    assert result.status is Status.VALID
    assert "password" not in repr(SignerConfig(Path("k"), Path("c"), key_password="secret")).replace(
        "key_password", ""
    )
    with pytest.raises(InvalidKey):
        Signer(signers["ec"].key, signers["sm2"].chain)  # key and certificate do not match
    with pytest.raises(InvalidKey):
        Signer.from_config(SignerConfig(tmp_path / "missing.key", tmp_path / "signer.pem"))
    [untrusted] = Verifier.from_config(VerifierConfig(None)).verify_provenance(
        signer.provenance(document()), document()
    )
    assert untrusted.status is Status.UNTRUSTED


def test_referral_packages_and_binary_references(cas: dict[str, Party], signers: dict[str, Party]) -> None:
    referral = {
        "resourceType": "ServiceRequest",
        "id": "r1",
        "status": "active",
        "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "note": [{"text": "转诊：高血压控制不佳"}],
    }
    target = SignedTarget("ServiceRequest", "r1", 1, referral)
    prov = signer_of(signers["sm2"]).provenance(target)
    assert prov["target"] == [{"reference": "ServiceRequest/r1/_history/1"}]
    done = SignedTarget("ServiceRequest", "r1", 2, {**referral, "status": "completed"})
    assert verifier_of(cas["sm2"]).verify_provenance(prov, done)[0].status is Status.VALID
    edited = copy.deepcopy(referral)
    edited["note"][0]["text"] = "转诊：糖尿病"
    bad = verifier_of(cas["sm2"]).verify_provenance(prov, SignedTarget("ServiceRequest", "r1", 3, edited))
    assert bad[0].status is Status.INVALID
    doc = document().resource
    doc["content"] += [
        {"attachment": {"url": "http://elsewhere/fhir/Binary/x"}},
        {"attachment": {"url": "Binary/b1"}},
        {"attachment": {"data": "PGE+PC9hPg=="}},
    ]
    assert binary_references(doc) == ["Binary/b1"]
    assert canonical_json({"b": 1, "a": "中"}) == '{"a":"中","b":1}'.encode()


def test_different_signers_of_each_family_verify_against_a_mixed_bundle(cas: dict[str, Party]) -> None:
    verifier = verifier_of(*cas.values())
    for kind in KINDS:
        party = make_signer(cas["sm2"], kind)
        [result] = verifier.verify_provenance(signer_of(party).provenance(document()), document())
        assert result.status is Status.VALID, (kind, result.reason)
