"""Resident ID numbers (GB 11643-1999): check character, parsing, 15 -> 18 upgrade, contradictions, typos."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rhip.empi.normalize.idnumber import (
    IdNumber,
    check_character,
    contradictions,
    is_typo_of,
    parse_id_number,
    upgrade_15,
)

EXAMPLE = "11010519491231002X"  # the worked example of GB 11643-1999


def test_the_standards_example_has_check_character_x() -> None:
    assert check_character(EXAMPLE[:17]) == "X"
    parsed = parse_id_number(EXAMPLE)
    assert parsed == IdNumber(EXAMPLE, True, False, "1949-12-31", "female", "110105")


@pytest.mark.parametrize("position", range(17))
def test_every_one_digit_typo_is_invalid(position: int) -> None:
    for delta in range(1, 10):
        digit = str((int(EXAMPLE[position]) + delta) % 10)
        typo = EXAMPLE[:position] + digit + EXAMPLE[position + 1 :]
        parsed = parse_id_number(typo)
        assert parsed is not None
        assert not parsed.valid, typo


def test_a_wrong_check_character_is_invalid_but_still_read() -> None:
    parsed = parse_id_number("110105194912310021")
    assert parsed is not None
    assert not parsed.valid
    assert parsed.birth_date == "1949-12-31"
    assert parsed.sex == "female"


def test_check_character_needs_17_digits() -> None:
    with pytest.raises(ValueError):
        check_character("1101051949123100")


def test_full_width_spaces_and_lower_case_x_are_tolerated() -> None:
    for raw in ("１１０１０５１９４９１２３１００２Ｘ", " 110105 19491231 002x ", "110105-19491231-002X"):
        parsed = parse_id_number(raw)
        assert parsed is not None
        assert parsed.value == EXAMPLE
        assert parsed.valid


@pytest.mark.parametrize(
    "raw", [None, "", "1101051949123100", "11010519491231002Y", "A1010519491231002X", "12345"]
)
def test_what_is_not_id_shaped_gives_none(raw: str | None) -> None:
    assert parse_id_number(raw) is None


def test_impossible_and_implausible_dates_are_invalid() -> None:
    feb30 = "51070319900230001"
    parsed = parse_id_number(feb30 + check_character(feb30))
    assert parsed is not None
    assert not parsed.valid
    assert parsed.birth_date is None
    old = "51070318700101001"
    assert parse_id_number(old + check_character(old)).valid is False  # type: ignore[union-attr]
    tomorrow = (date.today() + timedelta(days=1)).strftime("%Y%m%d")
    future = f"510703{tomorrow}001"
    assert parse_id_number(future + check_character(future)).valid is False  # type: ignore[union-attr]
    today = f"510703{date.today():%Y%m%d}001"
    assert parse_id_number(today + check_character(today)).valid is True  # type: ignore[union-attr]


def test_an_unknown_province_is_invalid() -> None:
    for area in ("000000", "991234", "100105"):
        first17 = f"{area}19800101001"
        parsed = parse_id_number(first17 + check_character(first17))
        assert parsed is not None
        assert not parsed.valid


def test_15_digit_numbers_are_upgraded() -> None:
    assert upgrade_15("110105491231002") == EXAMPLE
    parsed = parse_id_number("110105491231002")
    assert parsed == IdNumber(EXAMPLE, True, True, "1949-12-31", "female", "110105")


def test_sex_comes_from_the_sequence_digit() -> None:
    male = "51070319800101003"
    assert parse_id_number(male + check_character(male)).sex == "male"  # type: ignore[union-attr]


def test_contradictions() -> None:
    idn = parse_id_number(EXAMPLE)
    assert idn is not None
    assert contradictions(idn, "1949-12-31", "female") == ()
    assert contradictions(idn, "1949-12-31T08:00:00+08:00", "female") == ()
    assert contradictions(idn, "1949-12-30", "female") == ("birth-date",)
    assert contradictions(idn, "1949-12-31", "male") == ("sex",)
    assert contradictions(idn, "1950-01-01", "male") == ("birth-date", "sex")
    assert contradictions(idn, None, "unknown") == ()


def test_is_typo_of() -> None:
    substituted = EXAMPLE[:5] + "6" + EXAMPLE[6:]
    transposed = EXAMPLE[:6] + EXAMPLE[7] + EXAMPLE[6] + EXAMPLE[8:]
    assert is_typo_of(EXAMPLE, substituted)
    assert is_typo_of(EXAMPLE, transposed)
    assert is_typo_of(EXAMPLE, EXAMPLE[:17] + "x") is False  # the same number
    assert not is_typo_of(EXAMPLE, EXAMPLE)
    two = EXAMPLE[:2] + "99" + EXAMPLE[4:]
    assert not is_typo_of(EXAMPLE, two)
    far_swap = EXAMPLE[:6] + EXAMPLE[8] + EXAMPLE[7] + EXAMPLE[6] + EXAMPLE[9:]
    assert not is_typo_of(EXAMPLE, far_swap)
    assert not is_typo_of(EXAMPLE, EXAMPLE[:15])


_AREAS = st.sampled_from(["110105", "510703", "510724", "440305", "650102"])
_BIRTHS = st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31))


@given(_AREAS, st.dates(min_value=date(1881, 1, 1), max_value=date.today()), st.integers(0, 999))
def test_any_17_digits_with_their_check_character_parse_valid(area: str, born: date, seq: int) -> None:
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    parsed = parse_id_number(first17 + check_character(first17))
    assert parsed is not None
    assert parsed.valid
    assert parsed.birth_date == born.isoformat()
    assert parsed.sex == ("male" if seq % 2 else "female")


@given(_AREAS, _BIRTHS, st.integers(0, 999))
def test_upgrade_then_parse_keeps_the_birth_date(area: str, born: date, seq: int) -> None:
    id15 = f"{area}{born:%y%m%d}{seq:03d}"
    upgraded = upgrade_15(id15)
    assert len(upgraded) == 18
    parsed = parse_id_number(upgraded)
    assert parsed is not None
    assert parsed.valid
    assert parsed.birth_date == born.isoformat()
    assert parse_id_number(id15) == IdNumber(upgraded, True, True, born.isoformat(), parsed.sex, area)


@given(_AREAS, _BIRTHS, st.integers(0, 999), st.integers(0, 16), st.integers(1, 9))
def test_a_one_digit_substitution_is_a_typo_and_invalid(
    area: str, born: date, seq: int, position: int, delta: int
) -> None:
    first17 = f"{area}{born:%Y%m%d}{seq:03d}"
    number = first17 + check_character(first17)
    typo = number[:position] + str((int(number[position]) + delta) % 10) + number[position + 1 :]
    assert is_typo_of(number, typo)
    assert parse_id_number(typo).valid is False  # type: ignore[union-attr]
