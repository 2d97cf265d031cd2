"""How extracted resources are named: the entry identifier that makes re-submission idempotent, and fullUrls.

Every resource extracted from a document carries ``{"system": "urn:rhip:cda-entry:<document key>",
"value": "<entry path>"}``: the document key is the ClinicalDocument/id (``root:extension``) and the entry
path is where the entry sits under structuredBody (``component[3]/section/entry[2]``). A transaction that
creates it with ``ifNoneExist`` on that identifier creates nothing the second time. Its fullUrl is a
name-based UUID of the same identifier, so that resources of one document can refer to each other
(DiagnosticReport.result, Encounter.diagnosis) before the store has given them ids.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from rhip.documents.cda.model import InstanceId

ENTRY_SYSTEM_PREFIX = "urn:rhip:cda-entry:"
_SAFE = re.compile(r"[A-Za-z0-9._\-]{1,128}")
_NAMESPACE = uuid.UUID("5b0c3a4e-2f6d-5c8e-9a41-7d1e0c6b2a90")  # rhip CDA entries (fixed, arbitrary)


def _safe(part: str) -> str:
    """A URN-safe form of an id part: itself when it is plain, else a digest of it."""
    if _SAFE.fullmatch(part):
        return part
    return "sha1-" + hashlib.sha1(part.encode(), usedforsecurity=False).hexdigest()[:24]


def document_key(document_id: InstanceId) -> str:
    """``root:extension`` of a document id (parts with characters a URN or a query would mangle are hashed)."""
    root = _safe(document_id.root)
    return f"{root}:{_safe(document_id.extension)}" if document_id.extension else root


def entry_system(key: str) -> str:
    """The identifier system of every resource extracted from the document with this key."""
    return ENTRY_SYSTEM_PREFIX + key


def entry_identifier(key: str, entry_path: str) -> dict[str, str]:
    """The identifier of the resource extracted from the entry at ``entry_path``."""
    return {"system": entry_system(key), "value": entry_path}


def _entry_id(resource: dict[str, Any]) -> dict[str, str]:
    for ident in resource.get("identifier", ()):
        if str(ident.get("system", "")).startswith(ENTRY_SYSTEM_PREFIX):
            return {"system": ident["system"], "value": ident["value"]}
    raise ValueError(f"{resource.get('resourceType')} has no {ENTRY_SYSTEM_PREFIX} identifier")


def full_url(resource: dict[str, Any]) -> str:
    """The ``urn:uuid:`` fullUrl of an extracted resource (stable: derived from its entry identifier)."""
    ident = _entry_id(resource)
    name = f"{resource['resourceType']}|{ident['system']}|{ident['value']}"
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, name)}"


def if_none_exist(resource: dict[str, Any]) -> str:
    """The ``ifNoneExist`` criteria that find an extracted resource again (URL-encoded)."""
    ident = _entry_id(resource)
    return urlencode({"identifier": f"{ident['system']}|{ident['value']}"})
