"""X.509: issuing RSA, EC and SM2 certificates, reading them, and chains to a CA bundle."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from rhip.security.signatures.certificates import (
    Certificate,
    CertificateError,
    TrustStore,
    issued_by,
    load_certificates,
    read_certificates,
)
from rhip.security.signatures.issue import Profile, ca_profile, issue, tls_profile
from rhip.security.signatures.keys import generate_key, public_of

from .conftest import KINDS, Party, make_ca, make_signer, needs_openssl_sm2

# The moment the chains are checked at: an hour after collection. Certificates are issued as the tests run
# (valid from five minutes, or a day, before their issue), which on a slow run is long after collection.
NOW = datetime.now(UTC) + timedelta(hours=1)


@pytest.mark.parametrize("ca_kind", KINDS)
@pytest.mark.parametrize("signer_kind", KINDS)
def test_every_family_chains_to_every_family(cas: dict[str, Party], ca_kind: str, signer_kind: str) -> None:
    signer = make_signer(cas[ca_kind], signer_kind)  # type: ignore[arg-type]
    check = TrustStore([cas[ca_kind].cert]).check(signer.chain, at=NOW)
    assert check.trusted, check.reason
    assert [c.der for c in check.path] == [signer.cert.der, cas[ca_kind].cert.der]
    assert signer.cert.key_usage == {"digital_signature", "non_repudiation"}
    assert not signer.cert.is_ca
    assert cas[ca_kind].cert.is_ca and cas[ca_kind].cert.self_issued


def test_sm2_certificates_use_the_gm_oids(cas: dict[str, Party], signers: dict[str, Party]) -> None:
    cert = signers["sm2"].cert
    assert cert.signature_algorithm == "1.2.156.10197.1.501"
    spki = cert.parsed["tbs_certificate"]["subject_public_key_info"]["algorithm"]
    assert spki["algorithm"].dotted == "1.2.840.10045.2.1"
    assert spki["parameters"].chosen.dotted == "1.2.156.10197.1.301"
    assert cert.common_name == "第一人民医院"


def test_cryptography_reads_the_rsa_and_ec_certificates(
    cas: dict[str, Party], signers: dict[str, Party]
) -> None:
    for kind in ("ec", "rsa"):
        cert = x509.load_der_x509_certificate(signers[kind].cert.der)
        ca = x509.load_der_x509_certificate(cas[kind].cert.der)
        cert.verify_directly_issued_by(ca)
        assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "第一人民医院"


def test_a_signer_from_another_ca_is_not_trusted(cas: dict[str, Party], signers: dict[str, Party]) -> None:
    other = make_ca("sm2", "Other CA")
    check = TrustStore([other.cert]).check(signers["sm2"].chain, at=NOW)
    assert not check.trusted and "not issued by a CA of the trusted bundle" in check.reason
    # Same name, another key: the signature decides, not the name.
    impostor = make_ca("sm2")
    assert impostor.cert.subject == cas["sm2"].cert.subject
    assert not TrustStore([impostor.cert]).check(signers["sm2"].chain, at=NOW).trusted
    assert not issued_by(signers["sm2"].cert, impostor.cert)
    assert not TrustStore([]).check(signers["sm2"].chain, at=NOW).trusted


def test_validity_dates_are_checked(signers: dict[str, Party], cas: dict[str, Party]) -> None:
    store = TrustStore([cas["ec"].cert])
    chain = signers["ec"].chain
    assert not store.check(chain, at=NOW + timedelta(days=3650)).trusted
    check = store.check(chain, at=NOW - timedelta(days=2))
    assert not check.trusted and "not valid before" in check.reason
    expired_ca = make_ca("ec", days=2, not_before=NOW - timedelta(days=5))  # until NOW - 3 days
    signer = make_signer(expired_ca, "ec", not_before=NOW - timedelta(days=4))
    check = TrustStore([expired_ca.cert]).check(signer.chain, at=NOW)
    assert not check.trusted and "expired" in check.reason
    assert (
        TrustStore([expired_ca.cert])
        .check(signer.chain, at=NOW - timedelta(days=4) + timedelta(hours=1))
        .trusted
    )


def test_intermediate_cas_and_path_length(cas: dict[str, Party]) -> None:
    root = make_ca("sm2", "Root", path_length=None)
    limited_root = Party(root.key, (issue(public_of(root.key), _ca("Root sm2", 0), root.key, None),))
    inter_key = generate_key("ec")
    inter_cert = issue(public_of(inter_key), ca_profile("Intermediate"), root.key, root.cert)
    intermediate = Party(inter_key, (inter_cert, root.cert))
    signer = make_signer(intermediate, "sm2")
    assert signer.chain == (signer.cert, inter_cert)
    assert TrustStore([root.cert]).check(signer.chain, at=NOW).trusted
    assert not TrustStore([root.cert]).check(signer.chain[:1], at=NOW).trusted  # intermediate missing
    # The root allows no intermediate CA below it.
    limited = issue(public_of(inter_key), ca_profile("Intermediate"), limited_root.key, limited_root.cert)
    signer2 = make_signer(Party(inter_key, (limited, limited_root.cert)), "ec")
    check = TrustStore([limited_root.cert]).check(signer2.chain, at=NOW)
    assert not check.trusted and "intermediate" in check.reason


def _ca(name: str, path_length: int) -> Profile:
    return Profile(name, ca=True, path_length=path_length, key_usage=frozenset({"key_cert_sign"}), days=30)


def test_an_issuer_that_is_not_a_ca_cannot_issue(signers: dict[str, Party], cas: dict[str, Party]) -> None:
    leaf = signers["ec"]
    below = make_signer(leaf, "ec", "假冒机构")
    check = TrustStore([cas["ec"].cert]).check((*below.chain, leaf.cert), at=NOW)
    assert not check.trusted and "not a CA" in check.reason


def test_key_usage_of_the_signer_is_checked(cas: dict[str, Party]) -> None:
    key = generate_key("ec")
    tls = issue(
        public_of(key),
        tls_profile("server", server=True, hosts=("localhost",)),
        cas["ec"].key,
        cas["ec"].cert,
    )
    store = TrustStore([cas["ec"].cert])
    assert store.check([tls], at=NOW).trusted  # digitalSignature is enough
    encipher = Profile("enc", key_usage=frozenset({"key_encipherment"}))
    cert = issue(public_of(key), encipher, cas["ec"].key, cas["ec"].cert)
    check = store.check([cert], at=NOW)
    assert not check.trusted and "keyUsage" in check.reason


def test_unknown_critical_extensions_are_refused(cas: dict[str, Party]) -> None:
    ca = x509.load_der_x509_certificate(cas["ec"].cert.der)
    key = generate_key("ec")
    from cryptography.hazmat.primitives import hashes

    built = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")]))
        .issuer_name(ca.subject)
        .public_key(public_of(key))  # type: ignore[arg-type]
        .serial_number(7)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.2.3.4"), b"\x05\x00"), critical=True
        )
        .sign(cas["ec"].key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert = Certificate.from_der(built.public_bytes(_der()))
    check = TrustStore([cas["ec"].cert]).check([cert], at=NOW)
    assert not check.trusted and "1.2.3.4" in check.reason


def _der():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


def test_reading_pem_bundles_and_der(tmp_path: Path, cas: dict[str, Party]) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(b"# comment\n" + b"".join(cas[k].cert.pem() for k in KINDS))
    assert [c.der for c in read_certificates(bundle)] == [cas[k].cert.der for k in KINDS]
    assert load_certificates(cas["sm2"].cert.der)[0] == cas["sm2"].cert
    assert TrustStore.from_file(bundle).check(make_signer(cas["rsa"], "sm2").chain, at=NOW).trusted
    for bad in (b"junk", b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"):
        with pytest.raises(CertificateError):
            load_certificates(bad)
    with pytest.raises(CertificateError):
        read_certificates(tmp_path / "missing.pem")


@needs_openssl_sm2
def test_openssl_verifies_our_sm2_chain(
    tmp_path: Path, cas: dict[str, Party], signers: dict[str, Party]
) -> None:
    (tmp_path / "ca.pem").write_bytes(cas["sm2"].cert.pem())
    (tmp_path / "signer.pem").write_bytes(signers["sm2"].cert.pem())
    # OpenSSL 3.0 verifies SM2 certificates with an empty id unless told the GM/T 0009 default.
    done = subprocess.run(
        [
            "openssl",
            "verify",
            "-vfyopt",
            "distid:1234567812345678",
            "-CAfile",
            str(tmp_path / "ca.pem"),
            str(tmp_path / "signer.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stdout.strip().endswith("OK"), done.stderr
