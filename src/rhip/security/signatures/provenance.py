"""Signing a document or referral package into a FHIR Provenance, and verifying it against the current bytes.

A signature is kept as a Provenance (R4) that targets the signed resource (versioned) and each Binary it
holds, with one ``signature``: type 1.2.840.10065.1.12.1.1 (author's signature, ASTM E1762), ``when``,
``who`` (the signer), ``sigFormat`` application/jose and ``data`` the JWS of :mod:`.jws`.

Verification answers, per signature:

- ``valid``: the JWS verifies with its certificate, the digests match the resource and contents as they are
  now, and the certificate chains to a CA of the bundle, valid at the signing time (or now, if so configured);
- ``invalid``: the JWS does not verify (signature or signed data altered), is malformed, or the resource or a
  content changed (or went) since it was signed;
- ``untrusted``: the signature is intact but its certificate does not chain to the bundle, was expired or
  not yet valid, may not sign, or the signing time lies in the future;
- ``unsigned``: no signature of this format targets the resource.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from rhip.core.clock import fhir_instant
from rhip.security.signatures import jws
from rhip.security.signatures.algorithms import UnsupportedAlgorithm, algorithm_for, check_key, hash_of
from rhip.security.signatures.certificates import Certificate, CertificateError, TrustStore, read_certificates
from rhip.security.signatures.keys import InvalidKey, PrivateKey, load_private_key, same_key
from rhip.security.signatures.targets import SignedTarget, manifest

SIGNATURE_TYPE = {
    "system": "urn:iso-astm:E1762-95:2013",
    "code": "1.2.840.10065.1.12.1.1",
    "display": "Author's Signature",
}
PARTICIPANT_TYPES = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ORGANIZATION_SYSTEM = "urn:oid:2.16.156.10011.1.5"  # 医疗机构代码
PRINCIPAL_SYSTEM = "urn:rhip:principal"


class Status(StrEnum):
    """What a signature check found."""

    VALID = "valid"
    INVALID = "invalid"
    UNTRUSTED = "untrusted"
    UNSIGNED = "unsigned"


# When several signatures disagree at the same moment, the worst one speaks.
_SEVERITY = {Status.INVALID: 3, Status.UNTRUSTED: 2, Status.VALID: 1, Status.UNSIGNED: 0}


@dataclass(frozen=True)
class Verification:
    """The outcome of checking one signature."""

    status: Status
    reason: str
    provenance: str | None = None  # "Provenance/{id}"
    signer: str | None = None  # the certificate's common name
    when: str | None = None  # the signing time claimed (sigT)
    algorithm: str | None = None


def overall(results: Sequence[Verification]) -> Status:
    """One status for a resource: that of its most recent signature (the worst among equally recent ones).

    A document legitimately changed and signed again is valid; an altered one fails every signature.
    """
    if not results:
        return Status.UNSIGNED
    latest = max(_moment(r) for r in results)
    return max((r.status for r in results if _moment(r) == latest), key=_SEVERITY.__getitem__)


def _moment(result: Verification) -> datetime:
    try:
        return jws.parse_time(result.when) if result.when else _NEVER
    except jws.MalformedSignature:
        return _NEVER


_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SignerConfig:
    """The platform's signing key and certificate (PEM files; the certificate file may hold the chain)."""

    key_path: Path
    cert_path: Path
    key_password: str | None = field(default=None, repr=False)
    rsa_pss: bool = False  # RSA keys sign PS256 rather than RS256
    who: Mapping[str, Any] | None = None  # Reference of the signer (default: the certificate's CN)


@dataclass(frozen=True)
class VerifierConfig:
    """The CA bundle signatures must chain to, and when certificates must be valid."""

    ca_bundle: Path | None
    validity_at: Literal["signing", "now"] = "signing"
    max_clock_skew: timedelta = timedelta(minutes=5)


class Signer:
    """Signs targets with one key and its certificate chain."""

    def __init__(
        self,
        key: PrivateKey,
        chain: Sequence[Certificate],
        *,
        rsa_pss: bool = False,
        who: Mapping[str, Any] | None = None,
    ) -> None:
        if not chain:
            raise InvalidKey("a signer needs its certificate")
        if not same_key(key, chain[0].public_key):
            raise InvalidKey("the signing key is not the key of the signing certificate")
        self.key = key
        self.chain = tuple(chain)
        self.algorithm = algorithm_for(key, rsa_pss=rsa_pss)
        self.who: dict[str, Any] = dict(who) if who else {"display": chain[0].common_name}

    @classmethod
    def from_config(cls, config: SignerConfig) -> Signer:
        """Load the key and certificate files of ``config``."""
        try:
            data = Path(config.key_path).read_bytes()
        except OSError as exc:
            # A PEM put where the path belongs must not end up in a message (or a log): name it by kind only.
            text = str(config.key_path)
            shown = "(a value that is not a file path)" if "-----" in text or "\n" in text else text
            raise InvalidKey(f"cannot read the signing key {shown}: {exc.strerror}") from None
        password = config.key_password.encode() if config.key_password else None
        key = load_private_key(data, password)
        return cls(key, read_certificates(config.cert_path), rsa_pss=config.rsa_pss, who=config.who)

    @property
    def certificate(self) -> Certificate:
        """The signing certificate."""
        return self.chain[0]

    def sign(self, target: SignedTarget, *, now: datetime | None = None) -> str:
        """The compact JWS over the target's manifest."""
        moment = now or datetime.now(UTC)
        payload = manifest(target, hash_of(self.algorithm))
        return jws.create(self.key, self.algorithm, self.chain, payload, moment)

    def provenance(
        self,
        target: SignedTarget,
        *,
        now: datetime | None = None,
        requested_by: str | None = None,
        institution: str | None = None,
    ) -> dict[str, Any]:
        """The Provenance carrying a new signature of ``target``.

        ``requested_by``: the principal subject who asked for it (``user:…``, ``client:…``), recorded as
        the enterer; ``institution``: the institution code it acted for (onBehalfOf).
        """
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        compact = self.sign(target, now=moment)
        targets = [{"reference": f"{target.reference}/_history/{target.version}"}]
        for ref in sorted(target.contents):
            version = target.content_versions.get(ref)
            targets.append({"reference": f"{ref}/_history/{version}" if version else ref})
        agents: list[dict[str, Any]] = [{"type": _participant("attester", "Attester"), "who": self.who}]
        if requested_by:
            enterer: dict[str, Any] = {
                "type": _participant("enterer", "Enterer"),
                "who": {"identifier": {"system": PRINCIPAL_SYSTEM, "value": requested_by}},
            }
            if institution:
                enterer["onBehalfOf"] = {"identifier": {"system": ORGANIZATION_SYSTEM, "value": institution}}
            agents.append(enterer)
        return {
            "resourceType": "Provenance",
            "target": targets,
            "recorded": fhir_instant(moment),
            "agent": agents,
            "signature": [
                {
                    "type": [SIGNATURE_TYPE],
                    "when": fhir_instant(moment),
                    "who": self.who,
                    "sigFormat": jws.SIG_FORMAT,
                    "data": base64.b64encode(compact.encode("ascii")).decode("ascii"),
                }
            ],
        }


def _participant(code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": PARTICIPANT_TYPES, "code": code, "display": display}]}


class Verifier:
    """Checks signatures against the current target and a CA bundle."""

    def __init__(
        self,
        trust: TrustStore,
        *,
        validity_at: Literal["signing", "now"] = "signing",
        max_clock_skew: timedelta = timedelta(minutes=5),
    ) -> None:
        self.trust = trust
        self.validity_at = validity_at
        self.max_clock_skew = max_clock_skew

    @classmethod
    def from_config(cls, config: VerifierConfig) -> Verifier:
        """The verifier of ``config`` (no bundle: every signature is untrusted)."""
        trust = TrustStore.from_file(config.ca_bundle) if config.ca_bundle else TrustStore([])
        return cls(trust, validity_at=config.validity_at, max_clock_skew=config.max_clock_skew)

    def verify_provenance(
        self, provenance: Mapping[str, Any], target: SignedTarget, *, now: datetime | None = None
    ) -> list[Verification]:
        """One Verification per signature of this platform's format in the Provenance."""
        ref = f"Provenance/{provenance['id']}" if provenance.get("id") else None
        return [self.verify(c, target, now=now, provenance=ref) for c in platform_signatures(provenance)]

    def verify(
        self,
        compact: str,
        target: SignedTarget,
        *,
        now: datetime | None = None,
        provenance: str | None = None,
    ) -> Verification:
        """Check one compact JWS against the target as it is now."""
        try:
            parsed = jws.parse(compact)
            chain = parsed.certificates()
            signed_at = parsed.signed_at
            check_key(chain[0].public_key, parsed.algorithm)
        except (jws.MalformedSignature, UnsupportedAlgorithm, CertificateError) as exc:
            return Verification(Status.INVALID, f"malformed signature: {exc}", provenance)
        signer = chain[0].common_name

        def result(status: Status, reason: str) -> Verification:
            return Verification(status, reason, provenance, signer, jws.instant(signed_at), parsed.algorithm)

        if not jws.signature_verifies(parsed, chain[0]):
            return result(
                Status.INVALID, "the signature does not verify: the signed data or signature was altered"
            )
        changed = _changes(parsed.payload, target)
        if changed:
            return result(Status.INVALID, changed)
        moment = (now or datetime.now(UTC)).astimezone(UTC)
        if signed_at > moment + self.max_clock_skew:
            return result(Status.UNTRUSTED, "the signing time is in the future")
        check = self.trust.check(chain, at=signed_at if self.validity_at == "signing" else moment)
        if not check.trusted:
            return result(Status.UNTRUSTED, check.reason)
        return result(Status.VALID, f"signed with {parsed.algorithm}; {check.reason}")


def platform_signatures(provenance: Mapping[str, Any]) -> list[str]:
    """The compact JWS of each signature of this platform's format in a Provenance.

    Signatures of other formats (XML DigSig, a graphic, a JWS of another content type) are not ours to check
    and are left out; JOSE data that cannot be decoded is kept (as "") so that it verifies as invalid.
    """
    found = []
    for signature in provenance.get("signature") or ():
        if not isinstance(signature, Mapping) or signature.get("sigFormat") != jws.SIG_FORMAT:
            continue
        try:
            compact = base64.b64decode(str(signature.get("data") or ""), validate=True).decode("ascii")
        except (binascii.Error, ValueError):
            compact = ""
        if not jws.foreign(compact):
            found.append(compact)
    return found


def _changes(signed: Mapping[str, Any], target: SignedTarget) -> str:
    """Why the signed manifest does not describe the target as it is now (empty when it does)."""
    if signed.get("v") != 1 or signed.get("hash") not in ("sm3", "sha256"):
        return "the signed manifest is of an unknown version or digest"
    if signed.get("target") != target.reference:
        return f"the signature is of {str(signed.get('target'))[:80]}, not {target.reference}"
    current = manifest(target, str(signed["hash"]))
    if signed.get("resource") != current["resource"]:
        return f"{target.reference} changed since it was signed"
    content = signed.get("content")
    before: Mapping[str, Any] = content if isinstance(content, Mapping) else {}
    for ref in sorted(set(before) | set(current["content"])):
        if ref not in current["content"] or current["content"][ref] is None:
            return f"{ref} is gone since it was signed"
        if ref not in before:
            return f"{ref} was not signed"
        if before[ref] != current["content"][ref]:
            return f"{ref} changed since it was signed"
    return ""
