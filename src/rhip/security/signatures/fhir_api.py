"""The signature operations of the FHIR API, and the signature check on retrieval.

- ``POST DocumentReference/[id]/$sign`` (also Bundle, ServiceRequest): the platform signs the resource as it
  is now (and the bytes of the Binary resources a DocumentReference holds) with its configured key and
  certificate, stores the Provenance through the request's repository and answers it.
- ``GET|POST DocumentReference/[id]/$verify-signature`` (also Bundle, ServiceRequest): a Parameters with the
  overall ``status`` (valid | invalid | untrusted | unsigned) and one ``signature`` part per signature.
- :meth:`Signatures.signature_status` gives the status of a DocumentReference, Bundle, ServiceRequest or
  Binary (through the documents whose signatures cover it) for a read; :meth:`Signatures.annotate` puts it
  in the ``X-Rhip-Signature`` response header of a read.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson

from rhip.core.errors import InvalidRequest, ResourceGone, ResourceNotFound, RhipError
from rhip.fhir.repository import FhirRepository, StoredResource
from rhip.fhir.rest.extensions import Extensions, OperationHandler, OperationSpec
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.search.parse import SearchParser
from rhip.security.context import maybe_principal
from rhip.security.signatures import jws
from rhip.security.signatures.provenance import (
    Signer,
    Status,
    Verification,
    Verifier,
    overall,
    platform_signatures,
)
from rhip.security.signatures.targets import SIGNABLE_TYPES, SignedTarget, collect

log = logging.getLogger("rhip.security.signatures")

HEADER = "X-Rhip-Signature"
UNKNOWN = "unknown"  # the check itself failed (the read it annotates still succeeds)
CANONICAL = "https://rhip.dev/fhir/OperationDefinition"
MAX_PROVENANCES = 100  # signatures looked at per resource (a document is signed once or a few times)
_SERVICE_PARAMS = frozenset({"_format", "_pretty"})


class NoSigningKey(RhipError):
    """The server has no signing key and certificate configured."""

    code = "RHIP-SIG-0001"
    http_status = 501
    issue_type = "not-supported"


def _param(name: str, card: str, type_: str, doc: str, use: str = "out") -> dict[str, Any]:
    low, high = card.split("..")
    return {"name": name, "use": use, "min": int(low), "max": high, "type": type_, "documentation": doc}


SIGN_DEFINITION: dict[str, Any] = {
    "resourceType": "OperationDefinition",
    "id": "signatures-sign",
    "url": f"{CANONICAL}/signatures-sign",
    "name": "Sign",
    "title": "Sign a document or referral package (SM2/SM3, RSA or ECDSA) into a Provenance",
    "status": "active",
    "kind": "operation",
    "publisher": "rhip",
    "description": (
        "The platform signs the resource as it is now (a DocumentReference with the bytes of its Binary "
        "content; a Bundle or ServiceRequest as canonical JSON) with its configured key and X.509 "
        "certificate, stores the Provenance carrying the signature (sigFormat application/jose) and answers it."
    ),
    "affectsState": True,
    "code": "sign",
    "resource": list(SIGNABLE_TYPES),
    "system": False,
    "type": False,
    "instance": True,
    "parameter": [_param("return", "1..1", "Provenance", "The stored Provenance with the signature")],
}
VERIFY_DEFINITION: dict[str, Any] = {
    "resourceType": "OperationDefinition",
    "id": "signatures-verify",
    "url": f"{CANONICAL}/signatures-verify",
    "name": "VerifySignature",
    "title": "Verify the signatures of a document or referral package against its current content",
    "status": "active",
    "kind": "operation",
    "publisher": "rhip",
    "description": (
        "Checks every signature (Provenance.signature, application/jose) of the resource against the resource "
        "and its content as they are now and against the configured CA bundle. status: valid, invalid "
        "(altered content or broken signature), untrusted (certificate not chaining to the bundle, expired "
        "at signing time …) or unsigned; the status of the most recent signature."
    ),
    "affectsState": False,
    "code": "verify-signature",
    "resource": list(SIGNABLE_TYPES),
    "system": False,
    "type": False,
    "instance": True,
    "parameter": [
        _param("status", "1..1", "code", "valid | invalid | untrusted | unsigned"),
        {
            "name": "signature",
            "use": "out",
            "min": 0,
            "max": "*",
            "documentation": "One per signature: provenance, status, reason, signer, when, algorithm",
            "part": [
                _param("provenance", "0..1", "Reference", "The Provenance holding the signature"),
                _param("status", "1..1", "code", "valid | invalid | untrusted"),
                _param("reason", "1..1", "string", "Why"),
                _param("signer", "0..1", "string", "Common name of the signing certificate"),
                _param("when", "0..1", "instant", "Signing time the signature claims"),
                _param("algorithm", "0..1", "code", "SM2-SM3 | RS256 | PS256 | ES256"),
            ],
        },
    ],
}


class Signatures:
    """Signing and verification over a repository: what the operations and the read hook use."""

    def __init__(self, parser: SearchParser, verifier: Verifier, signer: Signer | None = None) -> None:
        self.parser = parser
        self.verifier = verifier
        self.signer = signer

    def sign(
        self, repo: FhirRepository, resource_type: str, rid: str, *, now: datetime | None = None
    ) -> StoredResource:
        """Sign a resource as it is now and store the Provenance (in one transaction)."""
        if self.signer is None:
            raise NoSigningKey(
                "This server signs nothing: configure RHIP_SECURITY__SIGNING_KEY and RHIP_SECURITY__SIGNING_CERT"
            )
        principal = maybe_principal()
        with repo.transaction() as tx:
            target = collect(tx, resource_type, rid, for_signing=True)
            provenance = self.signer.provenance(
                target,
                now=now,
                requested_by=principal.subject if principal else None,
                institution=principal.institution if principal else None,
            )
            return tx.create(provenance)

    def verify(
        self, repo: FhirRepository, resource_type: str, rid: str, *, now: datetime | None = None
    ) -> list[Verification]:
        """Every signature covering a resource, checked against it as it is now.

        For a Binary: the signatures of the documents that hold it (found through the Provenance targets,
        else through Binary.securityContext).
        """
        targets: dict[str, SignedTarget | None] = {}
        results: list[Verification] = []
        for provenance in self._provenances(repo, f"{resource_type}/{rid}"):
            for compact, ref in _signatures(provenance):
                signed_ref = (
                    _signed_target(compact) if resource_type == "Binary" else f"{resource_type}/{rid}"
                )
                if signed_ref is None:
                    continue
                if signed_ref not in targets:
                    targets[signed_ref] = _collect_quietly(repo, signed_ref)
                target = targets[signed_ref]
                if target is None:
                    results.append(Verification(Status.INVALID, f"{signed_ref} is gone", ref))
                    continue
                results.append(self.verifier.verify(compact, target, now=now, provenance=ref))
        if not results and resource_type == "Binary":
            context = _security_context(repo, rid)
            if context is not None:
                return self.verify(repo, *context, now=now)
        return results

    def signature_status(self, repo: FhirRepository, resource_type: str, rid: str) -> str:
        """valid | invalid | untrusted | unsigned for a read of the resource; ``unknown`` when the check fails.

        Never raises: the read it annotates has already succeeded.
        """
        try:
            return overall(self.verify(repo, resource_type, rid)).value
        except Exception as exc:  # a failed check must not fail the read; it says so in the header
            log.warning("signature check failed: %s on %s", type(exc).__name__, resource_type)
            return UNKNOWN

    def annotate(self, repo: FhirRepository, req: FhirRequest, resp: FhirResponse) -> None:
        """Add ``X-Rhip-Signature`` to a successful read of a Binary or a signable resource."""
        if resp.status != 200 or req.method.upper() not in ("GET", "HEAD"):
            return
        segments = req.segments()
        if len(segments) != 2 or (segments[0] != "Binary" and segments[0] not in SIGNABLE_TYPES):
            return
        resp.headers[HEADER] = self.signature_status(repo, segments[0], segments[1])

    def _provenances(self, repo: FhirRepository, reference: str) -> Iterator[dict[str, Any]]:
        query = self.parser.parse("Provenance", [("target", reference), ("_count", str(MAX_PROVENANCES))])
        for stored in repo.search(query).matches:
            if stored.content is not None:
                yield stored.resource()


def _signatures(provenance: dict[str, Any]) -> Iterator[tuple[str, str | None]]:
    """(compact JWS, Provenance reference) of each signature of this platform's format."""
    ref = f"Provenance/{provenance['id']}" if provenance.get("id") else None
    for compact in platform_signatures(provenance):
        yield compact, ref


def _signed_target(compact: str) -> str | None:
    """The ``Type/id`` a JWS says it signs (None when it cannot be read: the verification says why)."""
    try:
        target = jws.parse(compact).payload.get("target")
    except jws.MalformedSignature:
        return None
    if not isinstance(target, str) or target.split("/", 1)[0] not in SIGNABLE_TYPES or target.count("/") != 1:
        return None
    return target


def _collect_quietly(repo: FhirRepository, reference: str) -> SignedTarget | None:
    """The target as it is now; None when it is no longer there (other errors, e.g. Forbidden, propagate)."""
    resource_type, rid = reference.split("/", 1)
    try:
        return collect(repo, resource_type, rid)
    except (ResourceNotFound, ResourceGone):
        return None


def _security_context(repo: FhirRepository, rid: str) -> tuple[str, str] | None:
    """The signable resource a Binary's securityContext names (its DocumentReference), if any."""
    reference = (repo.read("Binary", rid).resource().get("securityContext") or {}).get("reference")
    if not isinstance(reference, str) or reference.count("/") != 1:
        return None
    resource_type, target_id = reference.split("/")
    return (resource_type, target_id) if resource_type in SIGNABLE_TYPES else None


def _no_query(req: FhirRequest, code: str) -> None:
    for name, _ in req.query:
        if name not in _SERVICE_PARAMS:
            raise InvalidRequest(f"${code} takes no parameters; not '{name}'", expression=[name])


def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> FhirResponse:
    return FhirResponse(status, orjson.dumps(value), headers=headers or {})


def parameters(results: list[Verification]) -> dict[str, Any]:
    """The Parameters answer of ``$verify-signature``."""
    out: list[dict[str, Any]] = [{"name": "status", "valueCode": overall(results).value}]
    for r in results:
        part: list[dict[str, Any]] = []
        if r.provenance:
            part.append({"name": "provenance", "valueReference": {"reference": r.provenance}})
        part.append({"name": "status", "valueCode": r.status.value})
        part.append({"name": "reason", "valueString": r.reason})
        if r.signer:
            part.append({"name": "signer", "valueString": r.signer})
        if r.when:
            part.append({"name": "when", "valueInstant": r.when})
        if r.algorithm:
            part.append({"name": "algorithm", "valueCode": r.algorithm})
        out.append({"name": "signature", "part": part})
    return {"resourceType": "Parameters", "parameter": out}


def _sign_handler(signatures: Signatures, resource_type: str) -> OperationHandler:
    def handle(repo: FhirRepository, req: FhirRequest, rid: str | None) -> FhirResponse:
        _no_query(req, "sign")
        stored = signatures.sign(repo, resource_type, str(rid))
        headers = {"Location": stored.location, "ETag": stored.etag}
        return FhirResponse(201, stored.content, headers=headers, stored=stored)

    return handle


def _verify_handler(signatures: Signatures, resource_type: str) -> OperationHandler:
    def handle(repo: FhirRepository, req: FhirRequest, rid: str | None) -> FhirResponse:
        _no_query(req, "verify-signature")
        repo.read(resource_type, str(rid))  # 404 / 410 for a resource that is not there
        return _json(200, parameters(signatures.verify(repo, resource_type, str(rid))))

    return handle


def register(
    extensions: Extensions, signer: Signer | None, verifier: Verifier, parser: SearchParser
) -> Signatures:
    """Add ``$sign`` and ``$verify-signature`` on DocumentReference, Bundle and ServiceRequest.

    Returns the :class:`Signatures` whose ``annotate`` / ``signature_status`` the read path uses.
    """
    signatures = Signatures(parser, verifier, signer)
    for resource_type in SIGNABLE_TYPES:
        extensions.add_operation(
            OperationSpec(
                "sign",
                resource_type,
                False,
                True,
                ("POST",),
                _sign_handler(signatures, resource_type),
                SIGN_DEFINITION,
            )
        )
        extensions.add_operation(
            OperationSpec(
                "verify-signature",
                resource_type,
                False,
                True,
                ("GET", "POST"),
                _verify_handler(signatures, resource_type),
                VERIFY_DEFINITION,
            )
        )
    return signatures
