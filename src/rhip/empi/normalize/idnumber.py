"""Resident ID numbers (居民身份证号, GB 11643-1999): parsing, the MOD 11-2 check character, the 15 -> 18 upgrade.

An 18-character number is area code (6, GB/T 2260) + birth date (8) + sequence (3; odd for men) + check
character. Numbers issued before 1999 had 15 digits: area + birth date without the century + sequence; all were
issued to people born in the 1900s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache
from operator import mul

from rhip.empi.normalize.chinese import nfkc
from rhip.empi.normalize.divisions import province_codes

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)  # the weighted sum of the ASCII codes exceeds the digits' by this
_CHECK = "10X98765432"
_SHAPE = re.compile(r"\d{17}[\dX]|\d{15}")
_SEPARATORS = re.compile(r"[\s\-]+")
_EARLIEST_YEAR = 1881  # "born after 1880": older dates are typing errors


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A parsed ID number; ``value`` is always the 18-character form (check character upper-case)."""

    value: str
    valid: bool
    upgraded: bool
    birth_date: str | None
    sex: str | None
    area: str


def check_character(first17: str) -> str:
    """The GB 11643 MOD 11-2 check character of the first 17 digits."""
    if len(first17) != 17:
        raise ValueError("the check character needs exactly 17 digits")
    return _CHECK[(sum(map(mul, first17.encode("ascii"), _WEIGHTS)) - _ZERO_OFFSET) % 11]


def upgrade_15(id15: str) -> str:
    """The 18-digit form of a 15-digit number (century 19 inserted, check character appended)."""
    first17 = f"{id15[:6]}19{id15[6:15]}"
    return first17 + check_character(first17)


def _birth_date(value: str) -> str | None:
    try:
        date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None
    return f"{value[6:10]}-{value[10:12]}-{value[12:14]}"


@cache
def _year_first_seen() -> str:
    # The year when first asked. It only grows stale towards the past, so dates from that year on are checked
    # against today's date and none in the future is ever let through.
    return str(date.today().year)


def _not_future(born: str) -> bool:
    return born[:4] < _year_first_seen() or born <= date.today().isoformat()


def parse_id_number(raw: str | None) -> IdNumber | None:
    """Parse a raw ID number (spaces, full-width characters, lower-case x tolerated); None if not ID-shaped."""
    if not raw:
        return None
    text = _SEPARATORS.sub("", nfkc(raw)).upper()
    if _SHAPE.fullmatch(text) is None:
        return None
    upgraded = len(text) == 15
    value = upgrade_15(text) if upgraded else text
    born = _birth_date(value)
    plausible_date = born is not None and int(born[:4]) >= _EARLIEST_YEAR and _not_future(born)
    valid = (
        plausible_date
        and (upgraded or check_character(value[:17]) == value[17])
        and value[:2] in province_codes()
    )
    return IdNumber(
        value=value,
        valid=valid,
        upgraded=upgraded,
        birth_date=born,
        sex="male" if (ord(value[16]) - 48) % 2 else "female",
        area=value[:6],
    )


def contradictions(idn: IdNumber, birth_date: str | None, sex: str | None) -> tuple[str, ...]:
    """Where the number disagrees with the record: a subset of ('birth-date', 'sex')."""
    found: list[str] = []
    if birth_date and idn.birth_date and birth_date[:10] != idn.birth_date:
        found.append("birth-date")
    if sex in ("male", "female") and idn.sex is not None and sex != idn.sex:
        found.append("sex")
    return tuple(found)


def is_typo_of(a: str, b: str) -> bool:
    """Whether two 18-character values differ by one substituted character or one adjacent transposition."""
    return len(a) == 18 and len(b) == 18 and one_slip(a.upper(), b.upper())


def one_slip(a: str, b: str) -> bool:
    """Whether two values of the same length differ by one substituted character or one adjacent swap."""
    if len(a) != len(b):
        return False
    diffs = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diffs) == 1:
        return True
    if len(diffs) == 2:
        i, j = diffs
        return j == i + 1 and a[i] == b[j] and a[j] == b[i]
    return False
