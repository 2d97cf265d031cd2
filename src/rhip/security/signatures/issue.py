"""Issuing X.509 certificates: a test CA, TLS server and client certificates, document-signing certificates.

Certificates between RSA and EC keys are built with ``cryptography``'s builder. Whenever SM2 is involved (an
SM2 subject key or an SM2 CA key) the certificate is built with ``asn1crypto`` and signed through
:func:`rhip.security.signatures.algorithms.x509_sign` (SM2-with-SM3, GM/T 0015 style: id-ecPublicKey with
the sm2p256v1 curve, signature 1.2.156.10197.1.501 over a DER SEQUENCE of r and s).
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import core as asn1_core
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rhip.security.signatures.algorithms import x509_algorithm, x509_sign
from rhip.security.signatures.certificates import Certificate
from rhip.security.signatures.keys import PrivateKey, PublicKey, kind_of, public_key_der, public_of
from rhip.security.signatures.sm2 import Sm2PrivateKey, Sm2PublicKey

CA_USAGES = frozenset({"key_cert_sign", "crl_sign"})
TLS_USAGES = frozenset({"digital_signature", "key_encipherment"})
SIGNER_USAGES = frozenset({"digital_signature", "non_repudiation"})
_EKU = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH}
_BACKDATE = timedelta(minutes=5)  # tolerate clocks a little behind the issuer's


@dataclass(frozen=True)
class Profile:
    """What a certificate says about its subject and what its key may do."""

    common_name: str
    organization: str | None = None
    ca: bool = False
    path_length: int | None = None
    key_usage: frozenset[str] = SIGNER_USAGES  # asn1crypto names: digital_signature, key_cert_sign …
    extended_key_usage: tuple[str, ...] = ()  # server_auth, client_auth
    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    days: int = 365
    not_before: datetime | None = None  # default: five minutes ago

    def period(self) -> tuple[datetime, datetime]:
        """notBefore and notAfter (UTC, whole seconds)."""
        start = self.not_before or datetime.now(UTC) - _BACKDATE
        start = start.astimezone(UTC).replace(microsecond=0)
        return start, start + timedelta(days=self.days)


def ca_profile(
    name: str,
    *,
    days: int = 3650,
    organization: str | None = None,
    path_length: int | None = None,
    not_before: datetime | None = None,
) -> Profile:
    """A CA: basicConstraints CA (``path_length`` intermediate CAs below it at most), keyCertSign, cRLSign."""
    return Profile(
        name,
        organization,
        ca=True,
        path_length=path_length,
        key_usage=CA_USAGES,
        days=days,
        not_before=not_before,
    )


def tls_profile(
    name: str,
    *,
    server: bool,
    hosts: tuple[str, ...] = (),
    days: int = 825,
    not_before: datetime | None = None,
) -> Profile:
    """A TLS server (subjectAltName of the hosts) or client certificate."""
    dns = tuple(h for h in hosts if not _is_ip(h))
    ips = tuple(h for h in hosts if _is_ip(h))
    eku = ("server_auth",) if server else ("client_auth",)
    return Profile(
        name,
        None,
        key_usage=TLS_USAGES,
        extended_key_usage=eku,
        dns_names=dns,
        ip_addresses=ips,
        days=days,
        not_before=not_before,
    )


def signer_profile(
    name: str, *, days: int = 730, organization: str | None = None, not_before: datetime | None = None
) -> Profile:
    """A document-signing certificate: digitalSignature and nonRepudiation."""
    return Profile(name, organization or name, key_usage=SIGNER_USAGES, days=days, not_before=not_before)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def issue(
    subject_key: PublicKey, profile: Profile, issuer_key: PrivateKey, issuer: Certificate | None = None
) -> Certificate:
    """A certificate for ``subject_key`` signed by ``issuer_key`` (self-signed when ``issuer`` is None)."""
    if profile.ca is False and profile.path_length is not None:
        raise ValueError("only a CA certificate has a path length")
    if "sm2" in (kind_of(subject_key), kind_of(issuer_key)):
        return _issue_asn1(subject_key, profile, issuer_key, issuer)
    assert not isinstance(subject_key, Sm2PublicKey) and not isinstance(issuer_key, Sm2PrivateKey)
    return _issue_cryptography(subject_key, profile, issuer_key, issuer)


def self_signed(key: PrivateKey, profile: Profile) -> Certificate:
    """A self-signed certificate of ``key`` (a root CA)."""
    return issue(public_of(key), profile, key, None)


def _ski(subject_key: PublicKey) -> bytes:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits."""
    info = asn1_keys.PublicKeyInfo.load(public_key_der(subject_key))
    return hashlib.sha1(bytes(info["public_key"])).digest()  # noqa: S324 -- an identifier, not security


def _serial() -> int:
    return secrets.randbits(159) | (1 << 158)  # positive, 20 bytes at most (RFC 5280 §4.1.2.2)


# -- cryptography (RSA and EC only) ----------------------------------------------------------------------


def _issue_cryptography(
    subject_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey,
    profile: Profile,
    issuer_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    issuer: Certificate | None,
) -> Certificate:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, profile.common_name)]
    if profile.organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, profile.organization))
    subject = x509.Name(attributes)
    issuer_name = x509.load_der_x509_certificate(issuer.der).subject if issuer else subject
    aki_key = issuer.public_key if issuer else subject_key
    start, end = profile.period()
    u = profile.key_usage
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(subject_key)
        .serial_number(_serial())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=profile.ca, path_length=profile.path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature="digital_signature" in u,
                content_commitment="non_repudiation" in u,
                key_encipherment="key_encipherment" in u,
                data_encipherment="data_encipherment" in u,
                key_agreement=False,
                key_cert_sign="key_cert_sign" in u,
                crl_sign="crl_sign" in u,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier(_ski(subject_key)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(_ski(aki_key), None, None), critical=False)
    )
    if profile.extended_key_usage:
        usages = [_EKU[e] for e in profile.extended_key_usage]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in profile.dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in profile.ip_addresses]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    algorithm = hashes.SHA384() if x509_algorithm(issuer_key).endswith("4.3.3") else hashes.SHA256()
    signed = builder.sign(issuer_key, algorithm)
    return Certificate.from_der(signed.public_bytes(Encoding.DER))


# -- asn1crypto (whenever SM2 is involved) ---------------------------------------------------------------


def _time(value: datetime) -> asn1_x509.Time:
    # RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050.
    return asn1_x509.Time(name="utc_time" if value.year < 2050 else "general_time", value=value)


def _issue_asn1(
    subject_key: PublicKey, profile: Profile, issuer_key: PrivateKey, issuer: Certificate | None
) -> Certificate:
    fields = {"common_name": profile.common_name}
    if profile.organization:
        fields["organization_name"] = profile.organization
    subject = asn1_x509.Name.build(fields)
    issuer_name = issuer.parsed.subject if issuer else subject
    aki_key = issuer.public_key if issuer else subject_key
    start, end = profile.period()
    constraints: dict[str, object] = {"ca": profile.ca}
    if profile.path_length is not None:
        constraints["path_len_constraint"] = profile.path_length
    extensions = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": constraints},
        {"extn_id": "key_usage", "critical": True, "extn_value": set(profile.key_usage)},
        {"extn_id": "key_identifier", "critical": False, "extn_value": _ski(subject_key)},
        {
            "extn_id": "authority_key_identifier",
            "critical": False,
            "extn_value": {"key_identifier": _ski(aki_key)},
        },
    ]
    if profile.extended_key_usage:
        extensions.append(
            {
                "extn_id": "extended_key_usage",
                "critical": False,
                "extn_value": list(profile.extended_key_usage),
            }
        )
    alt = [asn1_x509.GeneralName(name="dns_name", value=d) for d in profile.dns_names]
    alt += [asn1_x509.GeneralName(name="ip_address", value=a) for a in profile.ip_addresses]
    if alt:
        extensions.append({"extn_id": "subject_alt_name", "critical": False, "extn_value": alt})
    oid = x509_algorithm(issuer_key)
    algorithm = {"algorithm": oid}
    if oid.startswith("1.2.840.113549.1.1."):
        algorithm["parameters"] = asn1_core.Null()  # RFC 4055: RSA PKCS#1 v1.5 carries NULL parameters
    tbs = asn1_x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": _serial(),
            "signature": algorithm,
            "issuer": issuer_name,
            "validity": {"not_before": _time(start), "not_after": _time(end)},
            "subject": subject,
            "subject_public_key_info": asn1_keys.PublicKeyInfo.load(public_key_der(subject_key)),
            "extensions": extensions,
        }
    )
    _, signature = x509_sign(issuer_key, tbs.dump())
    cert = asn1_x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature}
    )
    return Certificate.from_der(cert.dump())
