"""What a signature covers: a document (DocumentReference and the bytes of its Binary content) or a referral
package (a Bundle or a ServiceRequest), and the manifest of digests that is actually signed.

The signed view of a resource is its JSON without the fields the platform changes over its life, in canonical
form (keys sorted, no insignificant whitespace, UTF-8, as RFC 8785 for FHIR's ASCII keys):

- every type: ``meta`` (versionId, lastUpdated, tags) and ``text`` (a narrative the server may regenerate);
- DocumentReference: ``status`` and ``relatesTo`` (a replacement supersedes the old document);
- ServiceRequest: ``status`` (a referral goes from active to completed);
- Bundle: ``signature`` (Bundle.signature is a signature of its own).

Everything else (subject, author, type, dates, securityLabel, attachments with their url, size and hash …) is
signed: changing it makes the signature invalid. A DocumentReference's attachments stored as ``Binary/{id}``
are signed by the digest of their decoded bytes, the original document exactly as received.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from rhip.core.errors import InvalidRequest, ResourceGone, ResourceNotFound, RhipError
from rhip.fhir.repository import FhirRepository
from rhip.security.signatures.algorithms import digest

SIGNABLE_TYPES = ("DocumentReference", "Bundle", "ServiceRequest")
ALWAYS_UNSIGNED = ("meta", "text")
LIFECYCLE_FIELDS: dict[str, tuple[str, ...]] = {
    "DocumentReference": ("status", "relatesTo"),
    "ServiceRequest": ("status",),
    "Bundle": ("signature",),
}
MANIFEST_VERSION = 1


class UnsignableContent(RhipError):
    """The resource's content cannot be signed: an attachment the server does not hold."""

    code = "RHIP-SIG-0002"
    http_status = 422
    issue_type = "processing"


@dataclass(frozen=True)
class SignedTarget:
    """A resource as it is now, with the bytes of the Binary resources it holds (None: gone)."""

    resource_type: str
    id: str
    version: int
    resource: dict[str, Any]
    contents: dict[str, bytes | None] = field(default_factory=dict)  # "Binary/{id}" -> bytes
    content_versions: dict[str, int] = field(default_factory=dict)  # "Binary/{id}" -> its version

    @property
    def reference(self) -> str:
        """``Type/id``."""
        return f"{self.resource_type}/{self.id}"


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys, no whitespace, UTF-8 (non-ASCII kept), no NaN."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")


def signed_view(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource without the fields a signature does not cover."""
    dropped = set(ALWAYS_UNSIGNED) | set(LIFECYCLE_FIELDS.get(str(resource.get("resourceType")), ()))
    return {k: v for k, v in resource.items() if k not in dropped}


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def manifest(target: SignedTarget, hash_name: str) -> dict[str, Any]:
    """The JSON that is signed: the target and the digests of its signed view and of each content.

    ``{"v": 1, "target": "DocumentReference/1", "hash": "sm3", "resource": "<b64url digest>",
    "content": {"Binary/2": "<b64url digest>"}}``; a content that is gone has no digest (null).
    """
    content = {
        ref: (b64url(digest(hash_name, data)) if data is not None else None)
        for ref, data in sorted(target.contents.items())
    }
    return {
        "v": MANIFEST_VERSION,
        "target": target.reference,
        "hash": hash_name,
        "resource": b64url(digest(hash_name, canonical_json(signed_view(target.resource)))),
        "content": content,
    }


def binary_references(resource: dict[str, Any]) -> list[str]:
    """The ``Binary/{id}`` references of a DocumentReference's attachments, in order, once each."""
    if resource.get("resourceType") != "DocumentReference":
        return []
    found: list[str] = []
    for content in resource.get("content") or ():
        attachment = content.get("attachment") if isinstance(content, dict) else None
        url = str((attachment or {}).get("url") or "")
        # Only this server's own relative "Binary/{id}": an absolute URL may name another server's Binary.
        kind, _, binary_id = url.partition("/")
        if kind == "Binary" and binary_id and "/" not in binary_id:
            ref = f"Binary/{binary_id}"
            if ref not in found:
                found.append(ref)
    return found


def collect(repo: FhirRepository, resource_type: str, rid: str, *, for_signing: bool = False) -> SignedTarget:
    """Read a target and its Binary contents from ``repo``.

    Signing needs every content (UnsignableContent otherwise); verifying records a missing one as None.
    """
    if resource_type not in SIGNABLE_TYPES:
        raise InvalidRequest(f"{resource_type} resources are not signed here: {', '.join(SIGNABLE_TYPES)}")
    stored = repo.read(resource_type, rid)
    resource = stored.resource()
    contents: dict[str, bytes | None] = {}
    versions: dict[str, int] = {}
    for ref in binary_references(resource):
        try:
            binary = repo.read("Binary", ref.split("/", 1)[1])
        except (ResourceNotFound, ResourceGone):
            if for_signing:
                raise UnsignableContent(
                    f"{stored.resource_type}/{rid} refers to {ref}, which is not here"
                ) from None
            contents[ref] = None
            continue
        contents[ref] = _binary_bytes(binary.resource(), ref)
        versions[ref] = binary.version
    return SignedTarget(resource_type, rid, stored.version, resource, contents, versions)


def _binary_bytes(binary: dict[str, Any], ref: str) -> bytes:
    data = binary.get("data")
    if not data:
        return b""
    try:
        return base64.b64decode(str(data), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UnsignableContent(f"{ref} holds data that is not valid base64") from exc
