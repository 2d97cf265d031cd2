"""Identifier generation for resources, versions and searches."""

from __future__ import annotations

import re
import secrets
import uuid

# FHIR R4 id: [A-Za-z0-9\-\.]{1,64}
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def new_resource_id() -> str:
    """A fresh server-assigned logical id (a UUID4, lower-case)."""
    return str(uuid.uuid4())


def new_token(nbytes: int = 16) -> str:
    """A URL-safe random token for search ids, cursors and the like."""
    return secrets.token_urlsafe(nbytes)


def is_valid_fhir_id(value: str) -> bool:
    """Whether ``value`` satisfies the FHIR ``id`` datatype."""
    return bool(_FHIR_ID.fullmatch(value))
