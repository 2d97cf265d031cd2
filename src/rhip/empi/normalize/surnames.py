"""Chinese surnames: splitting a full Han name into surname and given name, and the surname's own reading.

pypinyin has no surname mode (单 gives dan, 曾 ceng, 解 jie), so surnames are read from ``data/surnames.toml``
first. Two-character "marriage-style" double surnames (张王丽) are never assumed: only the compound surnames
of the table are split as two characters.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache

from rhip.empi.normalize._data import read_data
from rhip.empi.normalize.chinese import pinyin_of


@dataclass(frozen=True, slots=True)
class SurnameTable:
    """The compound surnames and the surname readings of ``data/surnames.toml``."""

    always: frozenset[str]
    long_names_only: frozenset[str]
    readings: dict[str, str]


@cache
def surname_table() -> SurnameTable:
    """The surname table, read once."""
    data = tomllib.loads(read_data("surnames.toml"))
    compound = data["compound"]
    return SurnameTable(
        always=frozenset(compound["always"]),
        long_names_only=frozenset(compound["long_names_only"]),
        readings={str(k): str(v) for k, v in data["readings"].items()},
    )


def split_han_name(name: str) -> tuple[str, str]:
    """(surname, given name) of a full Han name: a compound surname of the table, else the first character."""
    if len(name) >= 3:
        head = name[:2]
        table = surname_table()
        if head in table.always or (head in table.long_names_only and len(name) >= 4):
            return head, name[2:]
    return name[:1], name[1:]


def surname_pinyin(family: str) -> str:
    """Tone-less pinyin of a surname with its surname reading (单 shan, 尉迟 yuchi); other characters as pinyin_of."""
    readings = surname_table().readings
    reading = readings.get(family)
    if reading is not None:
        return reading
    if len(family) == 1:
        return pinyin_of(family)
    # A double surname (张王) or a transliterated family name: each character with its surname reading.
    return "".join(readings.get(ch) or pinyin_of(ch) for ch in family)
