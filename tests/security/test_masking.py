"""rhip.security.masking: ID numbers and mobile numbers masked, secrets removed, whatever the text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhip.security.masking import (
    REDACTED,
    is_secret_name,
    mask_id_number,
    mask_phone,
    mask_text,
    redact,
    redact_field,
    redact_secrets,
    redact_value,
)

ID_18 = re.compile(r"[0-9]{17}[0-9Xx]")
ID_15 = re.compile(r"(?<![0-9])[0-9]{15}(?![0-9])")
MOBILE = re.compile(r"1[3-9][0-9]{9}")


def test_id_numbers() -> None:
    assert mask_id_number("510104199001011234") == "5101**********1234"
    assert mask_id_number("51010419900101123X") == "5101**********123X"
    assert mask_id_number("510104900101123") == "5101*******1123"
    assert mask_id_number("") == ""
    short = mask_id_number("A1234567")
    assert len(short) == 8 and short.count("*") >= 4


def test_phones() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "+86138****5678"
    assert mask_phone("8613812345678") == "86138****5678"
    assert mask_phone("028-85551234").endswith("1234")
    assert "8555" not in mask_phone("028-85551234")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("身份证 510104199001011234 已登记", "身份证 5101**********1234 已登记"),
        ("id=51010419900101123x;", "id=5101**********123x;"),
        ("旧证 510104900101123", "旧证 5101*******1123"),
        ("电话13812345678，", "电话138****5678，"),
        ("tel: 138-1234-5678", "tel: 138-****-5678"),
        ("tel: 138 1234 5678", "tel: 138 **** 5678"),
        ("+8613812345678", "+86138****5678"),
        ("card 6222021234567890123", "card 6222***********0123"),
        ("landline 02885551234 stays", "landline 02885551234 stays"),
        ("count 1234567890 stays", "count 1234567890 stays"),
        ("Patient/123 took 15 ms", "Patient/123 took 15 ms"),
    ],
)
def test_mask_text(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    ("text", "gone"),
    [
        ("Authorization: Bearer abc.DEF-123_xyz", "abc.DEF-123_xyz"),
        ("token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "eyJzdWIiOiJ4In0"),
        ("password=hunter2&user=li", "hunter2"),
        ("client_secret: s3cr3t", "s3cr3t"),
        ('{"refresh_token": "r-tok\\"en", "n": 1}', "r-tok"),
        ("x-api-key=abcd1234", "abcd1234"),
        ("postgresql+psycopg://rhip:p@ss@db:5432/rhip", "p@ss"),
        ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ],
)
def test_redact_secrets(text: str, gone: str) -> None:
    out = redact_secrets(text)
    assert gone not in out
    assert REDACTED in out


@pytest.mark.parametrize(
    "text",
    [
        "tokens=5 token_url=https://rhip.example.cn/auth/token",
        "basic information for the record",
        "http://127.0.0.1:8080/fhir/metadata",
        "http://127.0.0.1:8080/fhir/Patient?email=li@example.cn",
        "route=fhir:Patient:type status=200",
    ],
)
def test_ordinary_text_stays(text: str) -> None:
    assert redact(text) == text


def test_fields() -> None:
    assert is_secret_name("password") and is_secret_name("client_secret") and is_secret_name("access_token")
    assert not is_secret_name("token_id") and not is_secret_name("route") and not is_secret_name("tokens")
    assert redact_field("password", "x") == REDACTED
    assert redact_field("password", None) is None
    assert redact_field("status", 200) == 200
    assert redact_value(13812345678) == "138****5678"
    assert redact_value(510104900101123) == "5101*******1123"
    assert redact_value(3.5) == 3.5 and redact_value(True) is True
    nested = redact_value({"secret": "x", "who": ["13812345678", ("510104199001011234",)], 7: b"13812345678"})
    assert nested == {"secret": REDACTED, "who": ["138****5678", ["5101**********1234"]], "7": "138****5678"}


def test_long_text_is_fast() -> None:
    # The patterns stay linear: no catastrophic backtracking on long words or digit runs.
    import time

    started = time.perf_counter()
    redact("a" * 200_000 + "=1 " + "9" * 200_000 + " " + "x." * 100_000 + ":")
    assert time.perf_counter() - started < 2.0


# -- properties -----------------------------------------------------------------------------------------
_region = st.sampled_from(["510104", "110101", "440305", "320106"])
_date = st.dates().map(lambda d: d.strftime("%Y%m%d"))
_id18 = st.builds(
    lambda r, d, s, c: r + d + s + c,
    _region,
    _date,
    st.from_regex(r"[0-9]{3}", fullmatch=True),
    st.sampled_from(list("0123456789Xx")),
)
_id15 = st.from_regex(r"[1-8][0-9]{14}", fullmatch=True)
_mobile = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
_filler = st.text(
    alphabet=st.sampled_from(list("0123456789 Xx-+=:;,./患者电话身份证aZ\n\t")) | st.characters(), max_size=30
)
_texts = st.lists(st.one_of(_filler, _id18, _id15, _mobile), max_size=8).map("".join)


@settings(max_examples=400, deadline=None)
@given(_texts)
def test_masked_text_holds_no_id_number_or_mobile(text: str) -> None:
    masked = mask_text(text)
    assert not ID_18.search(masked), masked
    assert not ID_15.search(masked), masked
    assert not MOBILE.search(masked), masked
    assert mask_text(masked) == masked  # masking twice changes nothing more


@settings(max_examples=200, deadline=None)
@given(_id18, _mobile, _filler, _filler)
def test_embedded_numbers_never_survive(id_number: str, mobile: str, before: str, after: str) -> None:
    out = redact(f"{before}{id_number}{after} {before}{mobile}{after}")
    assert id_number not in out
    assert mobile not in out


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_ordinary_text_without_digits_is_unchanged(text: str) -> None:
    digits = any(c.isascii() and c.isdigit() for c in text)
    marks = ("=", ":", "Bearer", "bearer", "BEARER", "eyJ", "Basic", "Negotiate")
    if not digits and not any(m in text for m in marks):
        assert redact(text) == text
