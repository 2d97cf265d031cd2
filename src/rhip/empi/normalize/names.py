"""Person names normalised for matching: Han names (simplified, split into surname and given name, pinyin with
surname readings), Latin names (lower-case, accents stripped), newborn and unknown-name placeholders.

Decisions:
- Han names lose every space and middle dot (· • ・ ．): clerks write transliterated minority and foreign names
  (艾力·吐尔逊) with any dot or none, so ``text`` compares equal whichever they used. A dotted name given as one
  string is split at its last dot: the last part is ``family`` (the family or father's name), the rest ``given``,
  and ``text`` keeps the written order (艾力吐尔逊); otherwise ``text`` is family + given.
- Bracketed notes (王丽(曾用名王莉)) are dropped.
- Latin names given as one string: "Family, Given" when there is a comma, an all-capitals token is the family
  name (ZHANG Wei), otherwise the last token is. ``text`` is then 'given family'. Letters only: hyphens and
  apostrophes become spaces or vanish. ü is written v (Lü -> lv, as pypinyin writes 吕).
- A newborn placeholder (王丽之子) keeps its text; ``family`` and ``given`` split that text by the parent's
  surname. An unknown-name placeholder (无名氏) has script 'empty' and empty family, given and pinyin.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rhip.empi.normalize.chinese import HAN_CLASS, has_han, nfkc, pinyin_of, to_simplified
from rhip.empi.normalize.placeholders import newborn_parent, unknown_name
from rhip.empi.normalize.surnames import split_han_name, surname_pinyin, surname_table

__all__ = ["PersonName", "name_from_fhir", "normalise_name", "pinyin_of", "to_simplified"]

_BRACKETED = re.compile(r"[(\[【][^)\]】]*[)\]】]")
_DOTS = re.compile(r"[·•・‧∙⋅.]+")
_NOT_NAME_CHAR = re.compile(f"[^{HAN_CLASS}A-Za-z0-9]+")
_LATIN_TOKEN = re.compile(r"[A-Za-z]+")
_USE_RANK = {"official": 0, "usual": 1, None: 2, "old": 4, "anonymous": 4}


@dataclass(frozen=True, slots=True)
class PersonName:
    """A normalised person name (see the module docstring for the rules)."""

    text: str
    family: str
    given: str
    script: str  # 'han' | 'latin' | 'mixed' | 'empty'
    pinyin: str
    family_pinyin: str
    given_pinyin: str
    placeholder_of: str | None


def _clean(raw: str | None) -> str:
    if not raw or not isinstance(raw, str):
        return ""
    return to_simplified(_BRACKETED.sub("", nfkc(raw))).strip()


def _compact(text: str) -> str:
    return _NOT_NAME_CHAR.sub("", text).lower()


def _fold_latin(text: str) -> str:
    text = text.replace("ü", "v").replace("Ü", "V")
    if text.isascii():
        return text
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if not unicodedata.combining(ch))


def normalise_name(
    family: str | None = None, given: Sequence[str] | None = None, text: str | None = None
) -> PersonName | None:
    """A normalised name from a FHIR HumanName's parts; None if nothing usable. Parts win over text."""
    givens = tuple(g for g in given if isinstance(g, str)) if given else ()
    return _normalise(
        family if isinstance(family, str) else None, givens, text if isinstance(text, str) else None
    )


@lru_cache(maxsize=1 << 16)
def _normalise(family: str | None, given: tuple[str, ...], text: str | None) -> PersonName | None:
    # Cached: the same names come again and again in a batch, and PersonName is immutable.
    fam = _clean(family)
    givens = [g for g in (_clean(x) for x in given) if g]
    txt = _clean(text)
    whole = fam + "".join(givens) if (fam or givens) else txt
    compact = _compact(whole)
    if not compact:
        # Parts with nothing usable in them: fall back to the text.
        fam, givens, compact = "", [], _compact(txt)
        if not compact:
            return None
    if unknown_name(compact):
        return PersonName(compact, "", "", "empty", "", "", "", "")
    if has_han(compact):
        return _han_name(fam, givens, txt)
    if _LATIN_TOKEN.search(compact) is None:
        return None
    return _latin_name(fam, givens, txt)


def _split_dotted(raw: str) -> tuple[str, str] | None:
    parts = [_compact(p) for p in _DOTS.split(raw)]
    parts = [p for p in parts if p]
    if len(parts) < 2:
        return None
    return parts[-1], "".join(parts[:-1])


def _split_whole(raw: str) -> tuple[str, str]:
    dotted = _split_dotted(raw)
    return dotted if dotted is not None else split_han_name(_compact(raw))


def _han_name(fam: str, givens: list[str], txt: str) -> PersonName:
    family, given = _compact(fam), "".join(_compact(g) for g in givens)
    full_text = _compact(txt)
    if family and not given:
        table = surname_table()
        if full_text.startswith(family) and len(full_text) > len(family):
            given = full_text[len(family) :]  # the text completes a family-only name
        elif len(family) > 1 and family not in table.always and family not in table.long_names_only:
            family, given = _split_whole(fam)  # the whole name was put in the family part
    elif given and not family:
        if full_text.endswith(given) and len(full_text) > len(given):
            family = full_text[: -len(given)]
        elif len(given) > 1:  # the whole name was put in the given part
            family, given = _split_whole(givens[0] if len(givens) == 1 else given)
    elif not family:
        family, given = _split_whole(txt)
    full = family + given
    if full_text and full_text == given + family:
        full = full_text  # a transliterated name written given first (艾力·吐尔逊) keeps its order
    latin = _LATIN_TOKEN.search(full) is not None
    parent = newborn_parent(full) if not latin else None
    if parent is not None:
        family = split_han_name(parent)[0]
        given = full[len(family) :]
    script = "mixed" if latin else "han"
    family_pinyin = surname_pinyin(family) if family else ""
    given_pinyin = pinyin_of(given)
    return PersonName(
        full, family, given, script, family_pinyin + given_pinyin, family_pinyin, given_pinyin, parent
    )


def _latin_tokens(text: str) -> list[str]:
    return _LATIN_TOKEN.findall(_fold_latin(text))


def _latin_name(fam: str, givens: list[str], txt: str) -> PersonName:
    family_tokens = _latin_tokens(fam)
    given_tokens = [t for g in givens for t in _latin_tokens(g)]
    if not (family_tokens and given_tokens):
        text_tokens = _latin_tokens(txt)
        known = [t.lower() for t in family_tokens or given_tokens]
        rest = [t for t in text_tokens if t.lower() not in known]
        if known and txt and len(rest) < len(text_tokens):
            # One part and a text holding it: the text supplies the other part.
            if family_tokens:
                given_tokens = rest
            else:
                family_tokens = rest
        else:
            family_tokens, given_tokens = _split_latin_text(txt or " ".join([fam, *givens]))
    family = " ".join(family_tokens).lower()
    given = " ".join(given_tokens).lower()
    family_pinyin, given_pinyin = family.replace(" ", ""), given.replace(" ", "")
    return PersonName(
        f"{given} {family}".strip(),
        family,
        given,
        "latin",
        given_pinyin + family_pinyin,
        family_pinyin,
        given_pinyin,
        None,
    )


def _split_latin_text(raw: str) -> tuple[list[str], list[str]]:
    if "," in raw:
        head, _, tail = raw.partition(",")
        return _latin_tokens(head), _latin_tokens(tail)
    tokens = _latin_tokens(raw)
    if len(tokens) < 2:
        return tokens, []
    capitals = [i for i, t in enumerate(tokens) if len(t) > 1 and t.isupper()]
    if len(capitals) == 1 and len(tokens) > 1:
        k = capitals[0]
        return [tokens[k]], tokens[:k] + tokens[k + 1 :]
    return tokens[-1:], tokens[:-1]


def name_from_fhir(names: Sequence[Mapping[str, Any]] | None) -> PersonName | None:
    """The normalised name of a Patient: use official > usual > none > others; old and anonymous last."""
    if not names or not isinstance(names, Sequence):
        return None
    ranked = sorted(
        (n for n in names if isinstance(n, Mapping)),
        key=lambda n: _USE_RANK.get(n.get("use"), 3),
    )
    for entry in ranked:
        given = entry.get("given")
        if isinstance(given, str):
            given = [given]
        elif not isinstance(given, Sequence):
            given = None
        family = entry.get("family")
        text = entry.get("text")
        parsed = normalise_name(
            family if isinstance(family, str) else None,
            [g for g in given if isinstance(g, str)] if given else None,
            text if isinstance(text, str) else None,
        )
        if parsed is not None:
            return parsed
    return None
