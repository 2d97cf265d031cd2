"""Pinyin of the names in the registries, as searched: full (renminyiyuan) and initials (rmyy).

pypinyin reads the text with its phrase table (重庆 → chongqing, 银行 → yinhang), tone-less, ü as v; runs of
ASCII letters and digits are kept lower-case as one syllable each. Practitioners' surnames with a special
reading (单 shan …) are the resident index's table (rhip.empi.normalize.surnames), which a sibling capability
cannot import; pypinyin's own reading is used for them.

A place's name is indexed from the start of each syllable, so that ``pinyin=renminyiyuan`` and
``pinyin=rmyy`` find 绵阳市人民医院 (mianyangshi renminyiyuan): people type the part of a long name they
remember. A person's name is indexed whole (wangxiulan, wxl).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache
from typing import Any

MAX_SYLLABLES = 40  # longer names are indexed from their first 40 syllables' starts
_ASCII_WORD = re.compile(r"[a-z0-9]+")


@cache
def _lazy_pinyin() -> Any:
    # pypinyin loads megabytes of dictionaries on import: only a process that indexes names pays for it.
    from pypinyin import Style, lazy_pinyin

    def convert(text: str) -> list[str]:
        return list(lazy_pinyin(text, style=Style.NORMAL, errors=_ascii_words))

    return convert


def _ascii_words(chunk: str) -> str:
    # pypinyin hands non-Han runs here: their ASCII words, split again by syllables().
    return " ".join(_ASCII_WORD.findall(chunk.lower()))


@lru_cache(maxsize=1 << 15)
def syllables(text: str) -> tuple[str, ...]:
    """The syllables of a name: Han characters as pinyin, ASCII words as they are; the rest dropped."""
    text = unicodedata.normalize("NFKC", text).strip()
    if not text:
        return ()
    words = _lazy_pinyin()(text)
    return tuple(w for item in words for w in _ASCII_WORD.findall(item.lower()))


def readings(text: str, *, from_every_syllable: bool) -> list[str]:
    """The pinyin values a name is indexed under: full and initials, whole or from each syllable on."""
    found = syllables(text)[:MAX_SYLLABLES]
    if not found:
        return []
    starts = range(len(found)) if from_every_syllable else range(1)
    out: list[str] = []
    for i in starts:
        rest = found[i:]
        out.append("".join(rest))
        out.append("".join(s[0] for s in rest))
    return list(dict.fromkeys(out))
