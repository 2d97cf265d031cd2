"""Chinese text helpers shared by the name and address normalisers: NFKC, traditional -> simplified, pinyin.

The tables are read from this package's data files on first use (``functools.cache``), never at import time;
pypinyin too (its import loads 3 MB of dictionaries, 0.16 s), so that ID and phone parsing do not pay for it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Container
from functools import cache, lru_cache

from rhip.empi.normalize._data import read_data

# CJK unified ideographs (basic block, extension A, extensions B-G) and compatibility ideographs.
HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
HAN = re.compile(f"[{HAN_CLASS}]")
_NOT_LATIN_LETTER = re.compile(r"[^a-z]+")
_SHORT = 6  # names: longer text goes to lazy_pinyin whole


@cache
def _t2s_table() -> tuple[dict[int, int], frozenset[str]]:
    # The translate table, and its keys as characters: most text has none of them, and checking that is
    # twice as fast as translating.
    table: dict[int, int] = {}
    for line in read_data("t2s.txt").splitlines():
        if line and not line.startswith("#"):
            traditional, simplified = line.split("\t")
            table[ord(traditional)] = ord(simplified)
    return table, frozenset(map(chr, table))


def to_simplified(text: str) -> str:
    """Traditional Chinese characters replaced by their simplified forms, character by character."""
    if text.isascii():
        return text
    table, traditional = _t2s_table()
    if traditional.isdisjoint(text):
        return text
    return text.translate(table)


def nfkc(text: str) -> str:
    """Unicode NFKC (full-width letters and digits to ASCII, compatibility ideographs to unified ones)."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text)


def _latin_letters(chunk: str) -> str:
    # pypinyin hands non-Han runs to this callback: keep their ASCII letters, lower-cased, drop the rest.
    return _NOT_LATIN_LETTER.sub("", chunk.lower())


@cache
def _pypinyin() -> tuple[Callable[[str], list[str]], Container[str]]:
    # lazy_pinyin with this module's options, and pypinyin's phrase table (phrases may change a reading).
    from pypinyin import Style, lazy_pinyin
    from pypinyin.constants import PHRASES_DICT

    def convert(text: str) -> list[str]:
        return lazy_pinyin(text, style=Style.NORMAL, errors=_latin_letters)

    return convert, PHRASES_DICT


@cache
def _reading(char: str) -> str:
    # One character's reading, as lazy_pinyin gives it outside any phrase (bounded by the characters in use).
    return "".join(_pypinyin()[0](char))


def _in_phrase(text: str) -> bool:
    phrases = _pypinyin()[1]
    n = len(text)
    return any(text[i:j] in phrases for i in range(n - 1) for j in range(i + 2, n + 1))


@lru_cache(maxsize=1 << 16)
def pinyin_of(text: str) -> str:
    """Tone-less pinyin of Han text, ü as 'v', no separators; ASCII letters kept lower-case, the rest dropped."""
    if not text:
        return ""
    if text.isascii():
        return _NOT_LATIN_LETTER.sub("", text.lower())
    if len(text) <= _SHORT and not _in_phrase(text):
        # Same result as lazy_pinyin, which reads text outside its phrase table character by character,
        # at a tenth of the cost.
        return "".join(map(_reading, text))
    return "".join(_pypinyin()[0](text))


def has_han(text: str) -> bool:
    """Whether the text holds at least one Han character."""
    return HAN.search(text) is not None
