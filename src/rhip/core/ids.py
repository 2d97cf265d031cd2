"""Identifier generation for resources, versions and searches."""

from __future__ import annotations

import os
import re
import secrets
import time

# FHIR R4 id: [A-Za-z0-9\-\.]{1,64}
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def new_resource_id() -> str:
    """A fresh server-assigned logical id: a time-ordered UUID (version 7, RFC 9562).

    Time order matters for storage: ids created together sort together, so index inserts append
    instead of landing on a random B-tree page each.
    """
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (ms & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | (rand >> 68 & 0xFFF) << 64
        | 0b10 << 62
        | (rand & ((1 << 62) - 1))
    )
    # Formatted by hand: uuid.UUID(int=…) validates and converts again, twice the cost on the ingest path.
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_token(nbytes: int = 16) -> str:
    """A URL-safe random token for search ids, cursors and the like."""
    return secrets.token_urlsafe(nbytes)


def is_valid_fhir_id(value: str) -> bool:
    """Whether ``value`` satisfies the FHIR ``id`` datatype."""
    return bool(_FHIR_ID.fullmatch(value))
