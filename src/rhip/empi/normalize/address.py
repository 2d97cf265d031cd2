"""Addresses normalised for matching: division codes (province … village) and the rest of the street text.

A division extension (``urn:rhip:ext:division``, a 6/9/12-digit code) is trusted as it is; otherwise the codes are
read by name from ``state``, ``city`` and ``district``, then from the line (or the text when there is no line or
the line says too little). ``street`` is what remains of that text after the division names; ``house`` joins
its digit runs with '-' (12号 -> 12, 3组12号 -> 3-12, 人民路12号5栋3单元1202 -> 12-5-3-1202; numbers written in
Chinese numerals are not read).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from rhip.empi.normalize.chinese import nfkc, to_simplified
from rhip.empi.normalize.divisions import CODE_LENGTHS, deepest, scan

DIVISION_EXTENSION = "urn:rhip:ext:division"
_CODE = re.compile(r"\d{6}(?:\d{3}){0,2}")
_SEPARATORS = re.compile(r"[\s,，、;；]+")
_DIGITS = re.compile(r"\d+")
_COUNTRY = ("中华人民共和国", "中国")


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """Division codes of an address (parents derived by prefix) and the normalised rest."""

    province: str | None
    city: str | None
    county: str | None
    township: str | None
    village: str | None
    street: str
    house: str | None


def _clean(raw: Any) -> str:
    if not isinstance(raw, str) or not raw:
        return ""
    text = _SEPARATORS.sub("", to_simplified(nfkc(raw)))
    for country in _COUNTRY:
        if text.startswith(country):
            return text[len(country) :]
    return text


def _division_code(extensions: Any) -> str | None:
    if not isinstance(extensions, list | tuple):
        return None
    for ext in extensions:
        if isinstance(ext, Mapping) and ext.get("url") == DIVISION_EXTENSION:
            code = ext.get("valueCode")
            if isinstance(code, str) and _CODE.fullmatch(code):
                return code
    return None


def _context_of(code: str) -> list[str | None]:
    # A padded code (510700 is a prefecture, 510722100000 a township) stops at its last non-zero level.
    ctx: list[str | None] = [None] * 5
    start = 0
    for level, length in enumerate(CODE_LENGTHS):
        if length > len(code) or code[start:length].strip("0") == "":
            break
        ctx[level] = code[:length]
        start = length
    return ctx


def _field(address: Mapping[str, Any], key: str) -> str | None:
    value = address.get(key)
    return value if isinstance(value, str) else None


@lru_cache(maxsize=1 << 12)
def _fields_context(state: str | None, city: str | None, district: str | None) -> tuple[str | None, ...]:
    # Cached: a region's addresses have few distinct (state, city, district) triples.
    ctx: list[str | None] = [None] * 5
    for value in (state, city, district):
        field = _clean(value)
        if field:
            scan(field, ctx)
    return tuple(ctx)


def parse_address(address: Mapping[str, Any]) -> ParsedAddress:
    """Parse a FHIR Address dict into division codes, street and house number."""
    code = _division_code(address.get("extension"))
    if code:
        ctx = _context_of(code)
        if deepest(ctx) < 2:
            for key in ("state", "city", "district"):
                field = _clean(address.get(key))
                if field:
                    scan(field, ctx)
    else:
        ctx = list(_fields_context(*(_field(address, key) for key in ("state", "city", "district"))))
    lines = address.get("line")
    line = _clean("".join(x for x in lines if isinstance(x, str)) if isinstance(lines, list | tuple) else "")
    best, rest = ctx, ""
    if line:
        best = ctx.copy()
        rest = line[scan(line, best) :]
    if not line or deepest(best) < 2:
        # No line, or one that says too little: the text (usually the whole address) may say more.
        text = _clean(address.get("text"))
        if text:
            trial = ctx.copy()
            end = scan(text, trial)
            if not line or deepest(trial) > deepest(best):
                best, rest = trial, text[end:]
    digits = _DIGITS.findall(rest)
    province, city, county, township, village = best
    return ParsedAddress(
        province, city, county, township, village, rest, "-".join(digits) if digits else None
    )


def _ended(entry: Mapping[str, Any]) -> bool:
    period = entry.get("period")
    end = period.get("end") if isinstance(period, Mapping) else None
    return isinstance(end, str) and end[:10] < date.today().isoformat()


def address_from_fhir(addresses: Sequence[Mapping[str, Any]] | None) -> ParsedAddress | None:
    """The parsed current address of a Patient: home (or no use) first, then others; old and ended ones skipped."""
    if not addresses or not isinstance(addresses, Sequence):
        return None
    chosen: Mapping[str, Any] | None = None
    for entry in addresses:
        if not isinstance(entry, Mapping) or entry.get("use") == "old" or _ended(entry):
            continue
        if entry.get("use") in (None, "home"):
            chosen = entry
            break
        if chosen is None:
            chosen = entry
    return parse_address(chosen) if chosen is not None else None
