"""The identifier rules: GB 32100 USCC check characters (and GB 11714 inside), codes."""

from __future__ import annotations

import pytest

from rhip.registries.identifiers import (
    USCC_CHARS,
    is_code,
    is_valid_uscc,
    organization_code_check_char,
    uscc_check_char,
    uscc_problem,
)
from rhip.synth.codes import uscc as synth_uscc

# The example of GB 32100-2015 (a business registered in 福州市): registrar 9, kind 1, area 350100,
# organization code M000100Y4, check 3.
STANDARD_EXAMPLE = "91350100M000100Y43"


def test_the_standards_example_is_valid() -> None:
    assert uscc_problem(STANDARD_EXAMPLE) is None
    assert uscc_check_char(STANDARD_EXAMPLE[:17]) == "3"
    assert organization_code_check_char("M000100Y") == "4"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("91350100M000100Y4", "18 characters"),
        ("91350100M000100Y4I", "other than I, O, S, V, Z"),
        ("913501A0M000100Y43", "area code"),
        ("91350100M000100Y53", "organization code"),
        ("91350100M000100Y44", "check character (the 18th)"),
    ],
)
def test_each_broken_rule_is_named(value: str, why: str) -> None:
    problem = uscc_problem(value)
    assert problem is not None and why in problem
    assert not is_valid_uscc(value)


def test_every_single_character_change_of_the_check_is_caught() -> None:
    wrong = [c for c in USCC_CHARS if c != STANDARD_EXAMPLE[17]]
    assert not any(is_valid_uscc(STANDARD_EXAMPLE[:17] + c) for c in wrong)


@pytest.mark.parametrize("body", ["12345678", "00000001", "51070300", "99999999"])
def test_the_synthetic_regions_codes_agree(body: str) -> None:
    # Written independently (rhip.synth.codes): both must compute the same characters.
    assert is_valid_uscc(synth_uscc("510703", body))


def test_codes_are_letters_digits_and_dot_underscore_dash() -> None:
    assert is_code("45080012-3") and is_code("A.b_c")
    assert not is_code("") and not is_code("-x") and not is_code("医院") and not is_code("x" * 65)
