"""Phone numbers: mobiles with country codes and separators, landlines with area codes, junk and placeholders."""

from __future__ import annotations

import pytest

from rhip.empi.normalize.phones import normalise_phone, phones_from_fhir


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13812345678", "13812345678"),
        ("+86 138-1234-5678", "13812345678"),
        ("+8613812345678", "13812345678"),
        ("0086 138 1234 5678", "13812345678"),
        ("86-13812345678", "13812345678"),
        ("(+86) 138.1234.5678", "13812345678"),
        ("１３８１２３４５６７８", "13812345678"),
        ("013812345678", "13812345678"),  # a mobile dialled with a trunk 0
        ("0816-2345678", "08162345678"),
        ("(0816)23456789", "081623456789"),
        ("010-62345678", "01062345678"),
        ("020 8765 4321", "02087654321"),
        ("+86 816 2345678", "08162345678"),
        ("+86-10-62345678", "01062345678"),
        ("0816-2345678转801", "08162345678"),
        ("010-62345678 ext. 12", "01062345678"),
        ("tel:+86-13812345678", "13812345678"),
    ],
)
def test_plausible_numbers(raw: str, expected: str) -> None:
    assert normalise_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "无",
        "abc",
        "12345",
        "2345678",  # a landline without its area code
        "12812345678",  # no mobile prefix 12
        "1381234567",  # ten digits
        "138123456789",  # twelve digits
        "00000000000",
        "11111111111",
        "13333333333",
        "13900000000",
        "13800138000",
        "0816-0000000",
        "0816-8888888",
        "+852 91234567",  # not a mainland number
        "+1 415 555 0100",
        "0016-2345678",
    ],
)
def test_implausible_numbers_give_none(raw: str | None) -> None:
    assert normalise_phone(raw) is None


def test_phones_from_fhir() -> None:
    telecom = [
        {"system": "email", "value": "13812345678@139.com"},
        {"system": "phone", "value": "+86 138-1234-5678", "use": "mobile"},
        {"system": "sms", "value": "13912345678"},
        {"value": "0816-2345678"},
        {"system": "fax", "value": "0816-2345679"},
        {"system": "phone", "value": "138 1234 5678"},  # the same number again
        {"system": "phone", "value": "不详"},
        {"system": "phone", "value": "13712345678/0816-2345670"},  # two numbers in one value
        {"system": "other", "value": "13612345678"},
        "not a mapping",
        {"system": "phone", "value": 13512345678},
    ]
    assert phones_from_fhir(telecom) == (  # type: ignore[arg-type]
        "13812345678",
        "13912345678",
        "08162345678",
        "13712345678",
        "08162345670",
    )
    assert phones_from_fhir(None) == ()
    assert phones_from_fhir([]) == ()
