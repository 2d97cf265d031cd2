"""The division table (``data/divisions.csv``: GB/T 2260 down to counties, 绵阳 down to villages) and the matcher
that reads division names off the start of an address, one level after another.

Codes are compact: province 2 digits, prefecture 4, county 6, township 9, village 12, each the prefix of the
next. The matcher keeps a context of the codes found so far (five slots, one per level) and accepts a name only
if it fits below them. It never guesses:
- a name that fits two divisions at the same level (朝阳区: Beijing and 长春) ends the match;
- a short form (涪城, 四川, 城厢) must be followed by a division of its own below it, a number, or nothing
  (四川绵阳 and state="四川" are read; 四川路 and 涪城路 are streets);
- townships and villages are read only once the county is known.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache

from rhip.empi.normalize._data import read_data
from rhip.empi.normalize.chinese import nfkc, to_simplified

LEVEL_BY_LENGTH = {2: 0, 4: 1, 6: 2, 9: 3, 12: 4}
CODE_LENGTHS = (2, 4, 6, 9, 12)
_REPLACED_BY = re.compile(r"replaced by (\d+)")

Entry = tuple[str, int, bool]  # (code, level, whether the alias is sure: the full name or as good)
Match = tuple[str, int, bool, int]  # an Entry and the length of the text it covered
_AMBIGUOUS: Entry = ("", -1, False)


@dataclass(frozen=True, slots=True)
class DivisionTable:
    """Division names and their short forms, indexed for prefix matching."""

    names: dict[str, str]
    by_alias: dict[str, tuple[Entry, ...]]
    # first two characters -> lengths of the aliases starting with them, longest first
    lengths: dict[str, tuple[int, ...]]
    successors: dict[str, str]  # historic code -> the code that replaced it


@cache
def division_table() -> DivisionTable:
    """The division table, read and indexed once."""
    lines = [ln for ln in read_data("divisions.csv").splitlines() if ln and not ln.startswith("#")]
    names: dict[str, str] = {}
    found: dict[str, dict[str, Entry]] = {}
    successors: dict[str, str] = {}
    for row in csv.DictReader(io.StringIO("\n".join(lines))):
        code, name = row["code"], row["name"]
        level = LEVEL_BY_LENGTH[len(code)]
        names[code] = name
        # Indexed as addresses are cleaned (高峯村 is matched as 高峰村).
        clean = to_simplified(nfkc(name))
        found.setdefault(clean, {})[code] = (code, level, True)
        for alias in filter(None, row["aliases"].split("|")):
            alias = to_simplified(nfkc(alias))
            # A longer form (城厢街道办事处) and a village's address form (和平村, 警钟街社区) are as sure as the
            # name; a short one (城厢, 涪城) needs confirming.
            sure = level == 4 or alias.startswith(clean)
            found.setdefault(alias, {}).setdefault(code, (code, level, sure))
        replaced = _REPLACED_BY.search(row["note"])
        if replaced:
            successors[code] = replaced.group(1)
    by_alias = {alias: tuple(entries.values()) for alias, entries in found.items()}
    lengths: dict[str, set[int]] = {}
    for alias in by_alias:
        lengths.setdefault(alias[:2], set()).add(len(alias))
    return DivisionTable(
        names, by_alias, {ch: tuple(sorted(ls, reverse=True)) for ch, ls in lengths.items()}, successors
    )


@cache
def province_codes() -> frozenset[str]:
    """The 2-digit province codes of GB/T 2260 (11 … 82)."""
    return frozenset(code for code in division_table().names if len(code) == 2)


def current_code(code: str) -> str:
    """The code in use today for a division code (510724 安县 -> 510705 安州区); unchanged if not historic."""
    new = division_table().successors.get(code[:6])
    return code if new is None else new + code[6:]


def deepest(ctx: list[str | None]) -> int:
    """The deepest level (0-4) holding a code in the context, -1 if none."""
    for level in range(4, -1, -1):
        if ctx[level] is not None:
            return level
    return -1


def place(ctx: list[str | None], code: str) -> None:
    """Put a code and its parents (by prefix) into the context."""
    level = LEVEL_BY_LENGTH[len(code)]
    if ctx[level] != code:
        ctx[: level + 1] = [code[:length] for length in CODE_LENGTHS[: level + 1]]


def _pick(entries: tuple[Entry, ...], ctx: list[str | None], depth: int) -> Entry | None:
    # The entry that fits the context at the highest level; _AMBIGUOUS when two fit at that level.
    prefix = (ctx[depth] or "") if depth >= 0 else ""
    best: Entry | None = None
    ambiguous = False
    for entry in entries:
        code, level, _ = entry
        if ctx[level] != code and not (
            level > depth and code.startswith(prefix) and (level < 3 or depth >= 2)
        ):
            continue
        if best is None or level < best[1]:
            best, ambiguous = entry, False
        elif level == best[1]:
            ambiguous = True
    return _AMBIGUOUS if ambiguous else best


def match_at(text: str, pos: int, ctx: list[str | None]) -> Match | None:
    """The longest division name at ``pos`` that fits the context; None if none (or if it is ambiguous)."""
    table = division_table()
    lengths = table.lengths.get(text[pos : pos + 2])
    if not lengths:
        return None
    depth = deepest(ctx)
    room = len(text) - pos
    for length in lengths:
        if length > room:
            continue
        entries = table.by_alias.get(text[pos : pos + length])
        if entries is None:
            continue
        picked = _pick(entries, ctx, depth)
        if picked is _AMBIGUOUS:
            return None
        if picked is not None:
            return (*picked, length)
    return None


def scan(text: str, ctx: list[str | None]) -> int:
    """Read division names off the start of ``text`` into ``ctx``; return where the rest of the text starts."""
    pos, end = 0, len(text)
    while pos < end:
        found = match_at(text, pos, ctx)
        if found is None:
            break
        code, level, full, length = found
        after = pos + length
        if not full and after < end and not text[after].isdigit():
            # A short form (涪城, 四川) is taken only when a division of its own follows it, or a number, or
            # nothing: 涪城路 and 四川路 are streets.
            trial = ctx.copy()
            place(trial, code)
            below = match_at(text, after, trial)
            if below is None or below[1] <= level:
                break
        place(ctx, code)
        pos += length
    return pos
