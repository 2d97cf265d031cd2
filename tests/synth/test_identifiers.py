"""ID numbers (GB 11643) and institutional identifiers (GB 11714, GB 32100)."""

from __future__ import annotations

from datetime import date

from hypothesis import given
from hypothesis import strategies as st

from rhip.synth.codes import is_valid_uscc, organization_code, uscc
from rhip.synth.idcard import birth_date, check_character, is_male, is_valid, make_id_number, to_15, to_18


def test_the_standards_example_number_is_valid() -> None:
    # The worked example of GB 11643-1999.
    assert check_character("11010519491231002") == "X"
    assert is_valid("11010519491231002X")
    assert is_valid("11010519491231002x")
    assert not is_valid("110105194912310021")


@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)),
    st.integers(min_value=0, max_value=499),
    st.booleans(),
)
def test_made_numbers_carry_birth_date_and_sex(birth: date, seq: int, male: bool) -> None:
    number = make_id_number("510703", birth, seq, male)
    assert is_valid(number)
    assert birth_date(number) == birth
    assert is_male(number) is male
    if birth.year < 2000:
        old = to_15(number)
        assert len(old) == 15 and birth_date(old) == birth and is_male(old) is male
        assert to_18(old) == number


def test_impossible_dates_are_invalid() -> None:
    first17 = "51070319990230001"
    assert not is_valid(first17 + check_character(first17))


@given(st.text(alphabet="0123456789", min_size=8, max_size=8))
def test_uscc_check_character(body: str) -> None:
    code = uscc("510703", body)
    assert len(code) == 18 and code.startswith("12510703")
    assert code[8:17] == organization_code(body)
    assert is_valid_uscc(code)
    wrong = code[:-1] + ("0" if code[-1] != "0" else "1")
    assert not is_valid_uscc(wrong)
