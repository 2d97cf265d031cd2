"""Comparisons: for each field, which level of agreement two records reach (Fellegi–Sunter's gamma).

A comparison returns a level index (0 is the strongest agreement) or :data:`NULL` when one side lacks
the field, which then counts for nothing. Levels are ordered so that the first that holds is taken.
The registry :data:`COMPARISONS` is what a model's ``profile`` lists by name; weights per level are the
model's (learnt by EM), never here.

Why the Chinese profile compares phone and address together (``contact``): a household shares both, so
counting them as two independent pieces of evidence scores parent and child, or husband and wife, as if
they had agreed twice. One joint comparison lets EM learn what a shared phone *and* address are worth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rapidfuzz.distance import OSA, JaroWinkler

from rhip.empi.features import BORROWED, DOUBTFUL, TRUSTED, Features

NULL = -1
Compare = Callable[[Features, Features], int]


@dataclass(frozen=True, slots=True)
class Comparison:
    """One field comparison: its name, its levels (strongest first) and the function choosing one."""

    name: str
    levels: tuple[str, ...]
    compare: Compare
    tf_field: str = (
        ""  # the feature whose value frequency adjusts the first level (王伟 agrees less than 欧阳娜娜)
    )


def _jw(a: str, b: str) -> float:
    return float(JaroWinkler.normalized_similarity(a, b))


def _near(a: str, b: str) -> bool:
    """One substitution, insertion, deletion or adjacent transposition apart."""
    return int(OSA.distance(a, b, score_cutoff=1)) <= 1


# -- identifiers --------------------------------------------------------------------------------------


def id_number(a: Features, b: Features) -> int:
    """居民身份证号: exact (both trusted), exact but doubtful, one typo apart, different."""
    if not a.id_number or not b.id_number or BORROWED in (a.id_trust, b.id_trust):
        return NULL
    if a.id_number == b.id_number:
        return 0 if a.id_trust == TRUSTED and b.id_trust == TRUSTED else 1
    if _near(a.id_number, b.id_number):
        return 2
    return 3


def cards(a: Features, b: Features) -> int:
    """Person-level cards (健康卡, 医保卡, 健康档案编号, or a foreign social-security number): same, typo, different."""
    if not a.cards or not b.cards:
        return NULL
    shared = False
    near = False
    for kind, value in a.cards:
        for kind_b, value_b in b.cards:
            if kind != kind_b:
                continue
            if value == value_b:
                return 0
            shared = True
            near = near or _near(value, value_b)
    if not shared:
        return NULL
    return 1 if near else 2


def issued_cards(a: Features, b: Features) -> int:
    """Chinese cards (健康卡, 医保卡, 健康档案编号): same, different.

    They are issued in sequence, so two people of one household or township are often one digit apart: a
    near miss is no evidence of one person (on the synthetic region it merged namesakes).
    """
    level = cards(a, b)
    return level if level in (NULL, 0) else 1


# -- names --------------------------------------------------------------------------------------------


def name(a: Features, b: Features) -> int:
    """Full name: exact, same pinyin (homophone, 张 vs Zhang), similar, surname only, given only, different."""
    if not a.name or not b.name:
        return NULL
    if a.name == b.name:
        return 0
    if a.pinyin and a.pinyin == b.pinyin:
        return 1
    if a.family and a.family == b.given and a.given == b.family:
        return 1  # family and given written the other way round
    if _jw(a.pinyin, b.pinyin) >= 0.93 and a.family_pinyin == b.family_pinyin:
        return 2
    if a.family_pinyin and a.family_pinyin == b.family_pinyin:
        return 3
    if a.given_pinyin and a.given_pinyin == b.given_pinyin:
        return 4
    return 5


def _part(x: str, y: str, other_x: str) -> int:
    if not x or not y:
        return NULL
    if x == y:
        return 0
    score = _jw(x, y)
    if score >= 0.92:
        return 1
    if y == other_x:
        return 2  # swapped with the other part
    if score >= 0.8:
        return 3
    return 4


def family(a: Features, b: Features) -> int:
    """Latin-script surname: exact, close, swapped with the given name, similar, different."""
    return _part(a.family, b.family, a.given)


def given(a: Features, b: Features) -> int:
    """Latin-script given name: exact, close, swapped with the surname, similar, different."""
    return _part(a.given, b.given, a.family)


def placeholder(a: Features, b: Features) -> int:
    """Two newborns registered under a parent's name (王丽之子): same parent, different."""
    if not a.placeholder or not b.placeholder:
        return NULL
    return 0 if a.placeholder == b.placeholder else 1


# -- birth and sex ------------------------------------------------------------------------------------


def birth_date(a: Features, b: Features) -> int:
    """Birth date: exact, one typo (digit, transposition, day and month swapped), same month, same year, different."""
    x, y = a.birth_date, b.birth_date
    if not x or not y:
        return NULL
    if x == y:
        return 0
    if len(x) == len(y) == 10 and (
        _near(x, y) or (x[:4] == y[:4] and x[5:7] == y[8:10] and x[8:10] == y[5:7])
    ):
        return 1
    if x[:7] == y[:7]:
        return 2
    if x[:4] == y[:4]:
        return 3
    return 4


def sex(a: Features, b: Features) -> int:
    """Sex: same, different."""
    if not a.sex or not b.sex:
        return NULL
    return 0 if a.sex == b.sex else 1


# -- contact: phone and address together --------------------------------------------------------------


def _shared_phone(a: Features, b: Features) -> bool:
    return any(p in b.phones for p in a.phones)


def _place_level(a: Features, b: Features) -> int:
    """0 same house, 1 same village, 2 same township, 3 same county, 4 different, NULL unknown."""
    if not a.county or not b.county:
        return NULL
    if a.village and a.village == b.village:
        if a.house and a.house == b.house:
            return 0
        return 1
    if a.township and a.township == b.township:
        if not a.village or not b.village:
            return 1 if a.street and a.street == b.street else 2
        return 2
    if a.county == b.county:
        return 3
    return 4


def contact(a: Features, b: Features) -> int:
    """Phone and home address as one piece of household evidence (see the module docstring)."""
    place = _place_level(a, b)
    if a.phones and b.phones:
        if _shared_phone(a, b):
            if place == 0:
                return 0
            if place == 1:
                return 1
            return 2
        if place in (0, 1) and any(_near(p, q) for p in a.phones for q in b.phones):
            return 1  # a mistyped phone at the same village
    if place == NULL:
        return 7 if a.phones and b.phones else NULL
    return (3, 4, 5, 6, 7)[place]


# -- Latin addresses (FEBRL-like data, foreigners' addresses) -----------------------------------------


def _text(x: str, y: str, high: float, low: float) -> int:
    if not x or not y:
        return NULL
    if x == y:
        return 0
    score = _jw(x, y)
    if score >= high:
        return 1
    if score >= low:
        return 2
    return 3


def street(a: Features, b: Features) -> int:
    """Address line (without the house number): exact, close, similar, different."""
    return _text(a.street, b.street, 0.9, 0.8)


def line2(a: Features, b: Features) -> int:
    """Second address line: exact, close, similar, different."""
    return _text(a.line2, b.line2, 0.9, 0.8)


def city(a: Features, b: Features) -> int:
    """Locality (suburb, town): exact, close, similar, different."""
    return _text(a.city, b.city, 0.9, 0.8)


def house(a: Features, b: Features) -> int:
    """House number: same, one typo, different."""
    if not a.house or not b.house:
        return NULL
    if a.house == b.house:
        return 0
    return 1 if _near(a.house, b.house) else 2


def postcode(a: Features, b: Features) -> int:
    """Postcode: same, one typo, different."""
    if not a.postcode or not b.postcode:
        return NULL
    if a.postcode == b.postcode:
        return 0
    return 1 if _near(a.postcode, b.postcode) else 2


def state(a: Features, b: Features) -> int:
    """State or province written out: same, different."""
    if not a.state or not b.state:
        return NULL
    return 0 if a.state == b.state else 1


COMPARISONS: dict[str, Comparison] = {
    c.name: c
    for c in (
        Comparison("id_number", ("exact", "exact-doubtful", "typo", "different"), id_number),
        Comparison("cards", ("same", "typo", "different"), cards),
        Comparison("issued_cards", ("same", "different"), issued_cards),
        Comparison(
            "name",
            ("exact", "same-pinyin", "similar", "surname-only", "given-only", "different"),
            name,
            tf_field="name",
        ),
        Comparison(
            "family", ("exact", "close", "swapped", "similar", "different"), family, tf_field="family"
        ),
        Comparison("given", ("exact", "close", "swapped", "similar", "different"), given, tf_field="given"),
        Comparison("placeholder", ("same-parent", "different"), placeholder),
        Comparison("birth_date", ("exact", "typo", "same-month", "same-year", "different"), birth_date),
        Comparison("sex", ("same", "different"), sex),
        Comparison(
            "contact",
            (
                "phone+house",
                "phone+village",
                "phone-only",
                "house",
                "village",
                "township",
                "county",
                "different",
            ),
            contact,
        ),
        Comparison("street", ("exact", "close", "similar", "different"), street),
        Comparison("line2", ("exact", "close", "similar", "different"), line2),
        Comparison("city", ("exact", "close", "similar", "different"), city, tf_field="city"),
        Comparison("house", ("same", "typo", "different"), house),
        Comparison("postcode", ("same", "typo", "different"), postcode),
        Comparison("state", ("same", "different"), state),
    )
}

# Which comparisons a model uses. ``cn``: Chinese residents (the default); ``latin``: records with
# Latin-script names and street addresses (foreign residents; the FEBRL benchmark data).
PROFILES: dict[str, tuple[str, ...]] = {
    "cn": ("id_number", "issued_cards", "name", "placeholder", "birth_date", "sex", "contact"),
    "latin": (
        "cards",
        "family",
        "given",
        "birth_date",
        "house",
        "street",
        "line2",
        "city",
        "postcode",
        "state",
    ),
}

__all__ = ["COMPARISONS", "DOUBTFUL", "NULL", "PROFILES", "Comparison"]
