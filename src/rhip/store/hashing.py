"""64-bit hashes of index keys (signed, so they fit BIGINT on both backends).

The parts are joined with a separator that cannot occur in FHIR codes, systems or parameter names, so
``("a|b", "c")`` and ``("a", "b|c")`` hash differently.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import blake2b

_SEP = "\x1f"


def h64(*parts: str) -> int:
    """The signed 64-bit hash of a tuple of strings."""
    digest = blake2b(_SEP.join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@lru_cache(maxsize=16384)
def identity(resource_type: str, code: str) -> int:
    """The hash of a (resource type, parameter code) pair: the ``hash_identity`` column."""
    return h64(resource_type, code)


@lru_cache(maxsize=16384)
def token_hashes(resource_type: str, code: str, system: str | None, value: str) -> tuple[int, int]:
    """``(hash_sys, hash_sys_value)`` of a token; a missing system hashes as the empty one."""
    sys = system or ""
    return h64(resource_type, code, sys), h64(resource_type, code, sys, value)


@lru_cache(maxsize=16384)
def exact_hash(resource_type: str, code: str, value: str) -> int:
    """The hash of an exact string value (``:exact``)."""
    return h64(resource_type, code, "=", value)


@lru_cache(maxsize=16384)
def uri_hash(resource_type: str, code: str, uri: str) -> int:
    """The hash of a uri value."""
    return h64(resource_type, code, "uri", uri)


@lru_cache(maxsize=16384)
def units_hashes(resource_type: str, code: str, system: str | None, unit: str | None) -> tuple[int, int]:
    """``(hash_sys_units, hash_units)`` of a quantity's system and unit code."""
    return h64(resource_type, code, system or "", unit or ""), h64(resource_type, code, "units", unit or "")


@lru_cache(maxsize=16384)
def target_hash(
    resource_type: str, code: str, target_type: str | None, target_id: str | None, url: str | None
) -> int:
    """The hash identifying one reference value of a parameter (the reference table's key)."""
    return h64(resource_type, code, "ref", target_type or "", target_id or "", url or "")
