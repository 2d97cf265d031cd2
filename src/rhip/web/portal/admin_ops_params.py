"""FHIR Parameters as plain values and back: what the operator pages send to and read from operations; and
the ids in their paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PARTS = dict[str, list[Any]]
MAX_ID = 2**63 - 1  # the largest database key (a signed 64-bit integer), and the largest JSON integer


def path_id(value: Any) -> int | None:
    """An id from a path (digits only, by the route), or None when no row can have it (0, or too large for
    SQL and JSON: such ids would fail deep down instead of being simply not found)."""
    number = int(value)
    return number if 0 < number <= MAX_ID else None


def unparts(parameters: Mapping[str, Any] | None) -> PARTS:
    """A Parameters resource (or a parameter with parts) as name -> values (nested parts as such dicts)."""
    out: PARTS = {}
    for p in (parameters or {}).get("parameter", (parameters or {}).get("part", [])):
        if "part" in p:
            value: Any = unparts(p)
        elif "resource" in p:
            value = p["resource"]
        else:
            value = next((v for k, v in p.items() if k.startswith("value")), None)
        out.setdefault(str(p.get("name")), []).append(value)
    return out


def one(parts: PARTS, name: str, default: Any = None) -> Any:
    """The first value of ``name``."""
    values = parts.get(name)
    return values[0] if values else default


def flat(parts: PARTS) -> dict[str, Any]:
    """Each name with its first value (nested parts flattened too)."""
    return {
        k: flat(v[0]) if isinstance(v[0], dict) and "resourceType" not in v[0] else v[0]
        for k, v in parts.items()
    }


def params(*pairs: tuple[str, Any]) -> dict[str, Any]:
    """A Parameters body: ints as valueInteger, everything else as valueString."""
    out: list[dict[str, Any]] = []
    for name, value in pairs:
        if isinstance(value, bool) or not isinstance(value, int):
            out.append({"name": name, "valueString": str(value)})
        else:
            out.append({"name": name, "valueInteger": value})
    return {"resourceType": "Parameters", "parameter": out}
