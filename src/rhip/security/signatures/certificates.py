"""X.509 certificates (RSA, EC and SM2) and the CA bundle signature certificates must chain to.

Certificates are parsed with ``asn1crypto`` (``cryptography`` refuses SM2 keys), signatures checked with
:mod:`rhip.security.signatures.algorithms`. :meth:`TrustStore.check` builds the path from a signer's
certificate through the intermediates it came with to a CA of the bundle, checking on every certificate the
issuer's signature, the validity dates at the time asked, and on every issuer basicConstraints CA (with its
pathLenConstraint) and keyUsage keyCertSign when present; a certificate with a critical extension this code
does not understand is refused. Revocation (CRL, OCSP) is not checked.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property, lru_cache
from pathlib import Path

from asn1crypto import pem as asn1_pem
from asn1crypto import x509 as asn1_x509

from rhip.security.signatures.algorithms import UnsupportedAlgorithm, x509_verify
from rhip.security.signatures.keys import InvalidKey, PublicKey, load_public_key

MAX_CHAIN = 8  # certificates from a signer to its anchor, at most
SIGNING_USAGES = ("digital_signature", "non_repudiation")
UNDERSTOOD_CRITICAL = frozenset(
    {"basic_constraints", "key_usage", "extended_key_usage", "subject_alt_name", "certificate_policies"}
)


class CertificateError(ValueError):
    """A certificate that cannot be read."""


@dataclass(frozen=True)
class Certificate:
    """One X.509 certificate: its DER and what verification needs of it."""

    der: bytes
    parsed: asn1_x509.Certificate = field(repr=False, compare=False)

    @classmethod
    def from_der(cls, der: bytes) -> Certificate:
        """Parse one DER certificate; CertificateError when it is not one."""
        try:
            parsed = asn1_x509.Certificate.load(der, strict=True)
            parsed.native  # noqa: B018 -- parses every field now, so a damaged one fails here
        except (ValueError, TypeError, OverflowError) as exc:
            raise CertificateError(f"not an X.509 certificate: {exc}") from exc
        return cls(bytes(der), parsed)

    @property
    def subject(self) -> str:
        """The subject name, human-readable."""
        return str(self.parsed.subject.human_friendly)

    @property
    def issuer(self) -> str:
        """The issuer name, human-readable."""
        return str(self.parsed.issuer.human_friendly)

    @property
    def common_name(self) -> str:
        """The subject's CN (or the whole subject when it has none)."""
        cn = self.parsed.subject.native.get("common_name")
        return str(cn[-1] if isinstance(cn, list) else cn) if cn else self.subject

    @property
    def serial(self) -> int:
        """The serial number."""
        return int(self.parsed.serial_number)

    @property
    def not_before(self) -> datetime:
        """Start of the validity period (UTC)."""
        value: datetime = self.parsed["tbs_certificate"]["validity"]["not_before"].native
        return value

    @property
    def not_after(self) -> datetime:
        """End of the validity period (UTC)."""
        value: datetime = self.parsed["tbs_certificate"]["validity"]["not_after"].native
        return value

    @property
    def is_ca(self) -> bool:
        """Whether basicConstraints says CA."""
        constraints = self.parsed.basic_constraints_value
        return bool(constraints is not None and constraints["ca"].native)

    @property
    def path_length(self) -> int | None:
        """The pathLenConstraint of a CA, if any."""
        constraints = self.parsed.basic_constraints_value
        if constraints is None or constraints["path_len_constraint"].native is None:
            return None
        return int(constraints["path_len_constraint"].native)

    @property
    def key_usage(self) -> frozenset[str] | None:
        """keyUsage bits set (asn1crypto names: digital_signature, key_cert_sign …); None without it."""
        usage = self.parsed.key_usage_value
        return None if usage is None else frozenset(usage.native)

    @property
    def extended_key_usage(self) -> frozenset[str] | None:
        """extendedKeyUsage purposes (names or dotted OIDs); None without it."""
        usage = self.parsed.extended_key_usage_value
        return None if usage is None else frozenset(usage.native)

    @property
    def self_issued(self) -> bool:
        """Whether subject and issuer are the same name."""
        return bool(self.parsed.subject == self.parsed.issuer)

    @property
    def signature_algorithm(self) -> str:
        """The dotted OID of the issuer's signature."""
        return str(self.parsed["signature_algorithm"]["algorithm"].dotted)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the DER, lower-case hex (how `rhip clients add --cert` names a client certificate)."""
        return hashlib.sha256(self.der).hexdigest()

    @property
    def unsupported_critical(self) -> list[str]:
        """Critical extensions this code does not process (such a certificate is not trusted)."""
        return sorted(str(n) for n in self.parsed.critical_extensions if n not in UNDERSTOOD_CRITICAL)

    @cached_property
    def public_key(self) -> PublicKey:
        """The subject's public key; CertificateError when it is of an unsupported kind."""
        try:
            return load_public_key(self.parsed.public_key.dump())
        except InvalidKey as exc:
            raise CertificateError(str(exc)) from exc

    def valid_at(self, when: datetime) -> bool:
        """Whether ``when`` (aware) is inside the validity period."""
        return self.not_before <= when <= self.not_after

    def pem(self) -> bytes:
        """The certificate as PEM."""
        armored: bytes = asn1_pem.armor("CERTIFICATE", self.der)
        return armored


def load_certificates(data: bytes) -> list[Certificate]:
    """Every certificate of PEM text (in order), or the one certificate of DER bytes."""
    if not asn1_pem.detect(data):
        return [Certificate.from_der(data)]
    found = []
    try:
        for label, _headers, der in asn1_pem.unarmor(data, multiple=True):
            if label in ("CERTIFICATE", "X509 CERTIFICATE", "TRUSTED CERTIFICATE"):
                found.append(Certificate.from_der(der))
    except ValueError as exc:
        raise CertificateError(f"damaged PEM: {exc}") from exc
    if not found:
        raise CertificateError("the PEM text holds no certificate")
    return found


def read_certificates(path: str | Path) -> list[Certificate]:
    """Every certificate of a PEM or DER file."""
    try:
        return load_certificates(Path(path).read_bytes())
    except OSError as exc:
        raise CertificateError(f"cannot read {path}: {exc.strerror}") from exc


@lru_cache(maxsize=2048)
def _signed_by(subject_der: bytes, issuer_der: bytes) -> bool:
    # Verifying a chain costs public-key operations (SM2 in pure Python: milliseconds): a pair is checked once.
    subject, issuer = Certificate.from_der(subject_der), Certificate.from_der(issuer_der)
    algorithm = subject.parsed["signature_algorithm"]
    try:
        return x509_verify(
            issuer.public_key,
            algorithm["algorithm"].dotted,
            algorithm["parameters"],
            subject.parsed["tbs_certificate"].dump(),
            bytes(subject.parsed["signature_value"]),
        )
    except (UnsupportedAlgorithm, CertificateError):
        return False


def issued_by(subject: Certificate, issuer: Certificate) -> bool:
    """Whether ``issuer`` issued ``subject``: names match and the issuer's key verifies its signature."""
    if subject.parsed.issuer != issuer.parsed.subject:
        return False
    return _signed_by(subject.der, issuer.der)


@dataclass(frozen=True)
class ChainCheck:
    """The outcome of checking a certificate path: trusted or not, why, and the path found."""

    trusted: bool
    reason: str
    path: tuple[Certificate, ...] = ()


class TrustStore:
    """The CA certificates (anchors) of a configured PEM bundle."""

    def __init__(self, anchors: Sequence[Certificate]) -> None:
        self.anchors = tuple(anchors)

    @classmethod
    def from_file(cls, path: str | Path) -> TrustStore:
        """The anchors of a PEM (or DER) bundle file."""
        return cls(read_certificates(path))

    def check(
        self,
        chain: Sequence[Certificate],
        *,
        at: datetime,
        usages: Collection[str] = SIGNING_USAGES,
    ) -> ChainCheck:
        """Whether ``chain`` (signer first, then any intermediates) leads to an anchor, valid at ``at``.

        ``usages``: the signer's keyUsage, when it has one, must allow at least one of them.
        """
        if not chain:
            return ChainCheck(False, "no certificate")
        if not self.anchors:
            return ChainCheck(False, "no CA bundle is configured")
        leaf = chain[0]
        usage = leaf.key_usage
        if usages and usage is not None and not usage & set(usages):
            return ChainCheck(False, f"the certificate's keyUsage does not allow {' or '.join(usages)}")
        pool = list(chain[1:])
        path = [leaf]
        current = leaf
        below = 0  # non-self-issued intermediate CAs under the issuer looked for (pathLenConstraint)
        for _ in range(MAX_CHAIN):
            problem = _problem(current, at)
            if problem:
                return ChainCheck(False, problem, tuple(path))
            if current.der in {a.der for a in self.anchors}:
                return ChainCheck(True, "issued by a trusted CA", tuple(path))
            anchor = next((a for a in self.anchors if issued_by(current, a)), None)
            if anchor is not None:
                problem = _problem(anchor, at) or _issuer_problem(anchor, below)
                if problem:
                    return ChainCheck(False, problem, (*path, anchor))
                return ChainCheck(True, "issued by a trusted CA", (*path, anchor))
            issuer = next((c for c in pool if issued_by(current, c)), None)
            if issuer is None:
                return ChainCheck(False, "not issued by a CA of the trusted bundle", tuple(path))
            problem = _issuer_problem(issuer, below)
            if problem:
                return ChainCheck(False, problem, (*path, issuer))
            pool.remove(issuer)
            path.append(issuer)
            current = issuer
            if not issuer.self_issued:
                below += 1
        return ChainCheck(False, f"the certificate chain is longer than {MAX_CHAIN}", tuple(path))


def _problem(cert: Certificate, at: datetime) -> str:
    """Why ``cert`` cannot be used at ``at`` (empty when it can)."""
    if at < cert.not_before:
        return f"certificate of {cert.common_name} is not valid before {cert.not_before.isoformat()}"
    if at > cert.not_after:
        return f"certificate of {cert.common_name} expired on {cert.not_after.isoformat()}"
    unknown = cert.unsupported_critical
    if unknown:
        return f"certificate of {cert.common_name} has unsupported critical extensions {', '.join(unknown)}"
    return ""


def _issuer_problem(issuer: Certificate, below: int) -> str:
    """Why ``issuer`` may not issue a certificate ``below`` intermediate CAs down (empty when it may)."""
    if not issuer.is_ca:
        return f"issuer {issuer.common_name} is not a CA (basicConstraints)"
    usage = issuer.key_usage
    if usage is not None and "key_cert_sign" not in usage:
        return f"issuer {issuer.common_name} may not sign certificates (keyUsage)"
    limit = issuer.path_length
    if limit is not None and below > limit:
        return f"issuer {issuer.common_name} allows {limit} intermediate CAs below it"
    return ""
