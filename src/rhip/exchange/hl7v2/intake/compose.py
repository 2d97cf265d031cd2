"""Many messages, one transaction: which messages may share a commit, and the Bundle they share.

Messages that touch the same patient (``Mapped.patient_keys``) or update the same resource (the same
conditional PUT) never share a transaction: the FHIR store refuses to change a resource twice in one, and
the later message must see what the earlier one stored. Such messages go to later groups, which commit in
arrival order. In a shared Bundle every message's ``urn:uuid`` full URLs are renamed (two mappers may use
the same ones), and identical conditional creates (the sending institution's Organization) become one entry.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import orjson

_URN = re.compile(rb'"(urn:uuid:[^"\\]+)"')
_ENTRY_INDEX = re.compile(r"Bundle\.entry\[(\d+)\]")


@dataclass
class Ready:
    """One message mapped and ready to store: its entries (the receipt last) and what it must not share."""

    position: int  # index of the message in the batch being processed
    entries: list[dict[str, Any]]
    locations: list[str]  # per entry, the v2 location it came from ("PID", "OBX[3]")
    keys: frozenset[str]
    merges: list[tuple[str, str]] = field(default_factory=list)
    aliases: dict[str, str] = field(default_factory=dict)  # fullUrl of a left-out entry → Type/id
    resolved: dict[str, str] = field(default_factory=dict)  # request url of a left-out entry → Type/id


@dataclass
class Composed:
    """A transaction Bundle of several messages, and where each message's entries ended up in it."""

    bundle: dict[str, Any]
    positions: list[list[int]]  # per message, per its entry: the index of the entry in the Bundle


def conflict_keys(patient_keys: list[str], entries: list[dict[str, Any]]) -> frozenset[str]:
    """What a message must not share a transaction over: its patients and the resources it updates."""
    keys = set(patient_keys)
    for entry in entries:
        request = entry.get("request") or {}
        if request.get("method") in ("PUT", "PATCH", "DELETE") and isinstance(request.get("url"), str):
            keys.add(request["url"])
    return frozenset(keys)


def plan(ready: list[Ready], max_entries: int) -> list[list[Ready]]:
    """Groups that can each commit as one transaction, in the order they must commit."""
    groups: list[list[Ready]] = []
    sizes: list[int] = []
    level: dict[str, int] = {}
    for r in ready:
        k = max((level[key] + 1 for key in r.keys if key in level), default=0)
        while k < len(groups) and sizes[k] + len(r.entries) > max_entries and groups[k]:
            k += 1
        while k >= len(groups):
            groups.append([])
            sizes.append(0)
        groups[k].append(r)
        sizes[k] += len(r.entries)
        for key in r.keys:
            level[key] = max(level.get(key, -1), k)
    return [g for g in groups if g]


def compose(group: list[Ready]) -> Composed:
    """One transaction Bundle holding every message of ``group``."""
    out: list[dict[str, Any]] = []
    positions: list[list[int]] = []
    kept: dict[tuple[str, str, str], tuple[str | None, int]] = {}
    for r in group:
        renamed = {k.encode(): v.encode() for k, v in r.aliases.items()}
        fresh: list[dict[str, Any]] = []
        where: list[int] = []
        for entry in r.entries:
            request = entry.get("request") or {}
            full_url = entry.get("fullUrl")
            condition = request.get("ifNoneExist")
            key = None
            if request.get("method") == "POST" and isinstance(condition, str) and condition:
                key = (
                    str(request.get("url")),
                    condition,
                    str((entry.get("resource") or {}).get("resourceType")),
                )
            if key is not None and key in kept:
                # The same conditional create as an earlier message's: one entry serves both.
                kept_url, index = kept[key]
                if isinstance(full_url, str) and kept_url is not None:
                    renamed[full_url.encode()] = kept_url.encode()
                where.append(index)
                continue
            new_url: str | None = None
            if isinstance(full_url, str) and full_url.startswith("urn:uuid:"):
                new_url = f"urn:uuid:{uuid.uuid4()}"
                renamed[full_url.encode()] = new_url.encode()
            elif isinstance(full_url, str):
                new_url = full_url
            index = len(out) + len(fresh)
            if key is not None:
                kept[key] = (new_url, index)
            fresh.append(entry)
            where.append(index)
        raw = orjson.dumps(fresh)
        if renamed:
            raw = _URN.sub(partial(_rename, renamed), raw)
        out.extend(orjson.loads(raw))
        positions.append(where)
    return Composed({"resourceType": "Bundle", "type": "transaction", "entry": out}, positions)


def _rename(renamed: dict[bytes, bytes], match: re.Match[bytes]) -> bytes:
    return b'"' + renamed.get(match.group(1), match.group(1)) + b'"'


def failed_entry(outcome: dict[str, Any]) -> int | None:
    """The index of the Bundle entry an OperationOutcome of a failed transaction names."""
    for issue in outcome.get("issue") or []:
        texts = [*(issue.get("expression") or []), issue.get("diagnostics") or ""]
        for text in texts:
            found = _ENTRY_INDEX.search(str(text))
            if found:
                return int(found.group(1))
    return None


def location_parts(location: str) -> tuple[str, int]:
    """``OBX[3]`` → ("OBX", 3); ``PID`` → ("PID", 1)."""
    name, _, rest = location.partition("[")
    try:
        return name, int(rest.rstrip("]")) if rest else 1
    except ValueError:
        return name, 1
