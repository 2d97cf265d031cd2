"""Resident ID numbers (居民身份证号, GB 11643-1999): check digit, 18- and 15-digit forms.

The 18-digit number is area code (6, GB/T 2260) + birth date (8) + sequence (3; odd for men, even for
women) + check character. Numbers issued before 1999 had 15 digits: area (6) + birth date without the
century (6) + sequence (3), and many hospital systems still hold them.
"""

from __future__ import annotations

from datetime import date

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"


def check_character(first17: str) -> str:
    """The GB 11643 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def make_id_number(area: str, birth: date, sequence: int, male: bool) -> str:
    """An 18-digit ID number; ``sequence`` (0–499) is doubled and made odd for men, even for women."""
    seq = (sequence % 500) * 2 + (1 if male else 0)
    first17 = f"{area}{birth.year:04d}{birth.month:02d}{birth.day:02d}{seq:03d}"
    return first17 + check_character(first17)


def to_15(id18: str) -> str:
    """The old 15-digit form of an 18-digit number (drops the century and the check character)."""
    return id18[:6] + id18[8:17]


def to_18(id15: str) -> str:
    """The 18-digit form of a 15-digit number (all 15-digit numbers were issued to people born in the 1900s)."""
    first17 = id15[:6] + "19" + id15[6:15]
    return first17 + check_character(first17)


def is_valid(number: str) -> bool:
    """Whether an 18-digit number has the right shape, a real date and the right check character."""
    if len(number) != 18 or not number[:17].isdigit():
        return False
    try:
        date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return False
    return check_character(number[:17]) == number[17].upper()


def birth_date(number: str) -> date:
    """The birth date written in an 18-digit (or 15-digit) number."""
    if len(number) == 15:
        return date(1900 + int(number[6:8]), int(number[8:10]), int(number[10:12]))
    return date(int(number[6:10]), int(number[10:12]), int(number[12:14]))


def is_male(number: str) -> bool:
    """The sex written in an ID number: an odd sequence digit is a man."""
    return int(number[16] if len(number) == 18 else number[14]) % 2 == 1
