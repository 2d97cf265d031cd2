"""Normalised search values: date ranges, string folding and the implicit range of a number."""

from __future__ import annotations

import itertools
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rhip.fhir.search.values import (
    STRING_INDEX_LENGTH,
    DateFormatError,
    date_range,
    implicit_range,
    normalize_string,
    parse_decimal,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NEW_YORK = ZoneInfo("America/New_York")
SECOND = 1_000_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def us(moment: datetime) -> int:
    """UTC epoch microseconds of an aware datetime."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86400 + delta.seconds) * SECOND + delta.microseconds


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> int:
    """UTC epoch microseconds of a UTC wall-clock time."""
    return us(datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC))


# -- date_range: precision ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2024", utc(2024, 1, 1), utc(2025, 1, 1) - 1),
        ("2024-03", utc(2024, 3, 1), utc(2024, 4, 1) - 1),
        ("2024-03-01", utc(2024, 3, 1), utc(2024, 3, 2) - 1),
        ("2024-03-01T10:20Z", utc(2024, 3, 1, 10, 20), utc(2024, 3, 1, 10, 21) - 1),
        ("2024-03-01T10:20:30Z", utc(2024, 3, 1, 10, 20, 30), utc(2024, 3, 1, 10, 20, 31) - 1),
        (
            "2024-03-01T10:20:30.5Z",
            utc(2024, 3, 1, 10, 20, 30, 500_000),
            utc(2024, 3, 1, 10, 20, 30, 600_000) - 1,
        ),
        (
            "2024-03-01T10:20:30.25Z",
            utc(2024, 3, 1, 10, 20, 30, 250_000),
            utc(2024, 3, 1, 10, 20, 30, 260_000) - 1,
        ),
        (
            "2024-03-01T10:20:30.123Z",
            utc(2024, 3, 1, 10, 20, 30, 123_000),
            utc(2024, 3, 1, 10, 20, 30, 124_000) - 1,
        ),
        (
            "2024-03-01T10:20:30.123456Z",
            utc(2024, 3, 1, 10, 20, 30, 123_456),
            utc(2024, 3, 1, 10, 20, 30, 123_456),
        ),
        ("2024-12-31T23:59:59Z", utc(2024, 12, 31, 23, 59, 59), utc(2025, 1, 1) - 1),
    ],
)
def test_date_range_covers_the_precision_of_the_value(text: str, low: int, high: int) -> None:
    assert date_range(text, UTC) == (low, high)


def test_more_than_six_fraction_digits_keep_microseconds() -> None:
    low, high = date_range("2024-03-01T10:20:30.1234567Z", UTC)
    assert low == utc(2024, 3, 1, 10, 20, 30, 123_456)
    assert low <= high < low + 1_000


def test_leap_second_is_the_last_second_of_its_minute() -> None:
    low, high = date_range("2016-12-31T23:59:60Z", UTC)
    assert (low, high) == (utc(2016, 12, 31, 23, 59, 59), utc(2017, 1, 1) - 1)


# -- date_range: zones ----------------------------------------------------------------------------


def test_no_zone_is_read_in_the_given_zone() -> None:
    # 2024-03-01 in Shanghai (UTC+8) starts at 2024-02-29T16:00Z.
    assert date_range("2024-03-01", SHANGHAI) == (utc(2024, 2, 29, 16), utc(2024, 3, 1, 16) - 1)
    assert date_range("2024", SHANGHAI) == (utc(2023, 12, 31, 16), utc(2024, 12, 31, 16) - 1)
    assert date_range("2024-03-01T10:00:00", SHANGHAI) == date_range("2024-03-01T02:00:00Z", UTC)
    assert date_range("2024-03-01T10:00", SHANGHAI) == date_range("2024-03-01T02:00Z", SHANGHAI)


@pytest.mark.parametrize("zone", [UTC, SHANGHAI, NEW_YORK])
def test_explicit_offset_wins_over_the_zone(zone: timezone | ZoneInfo) -> None:
    assert date_range("2024-03-01T10:00:00Z", zone) == (utc(2024, 3, 1, 10), utc(2024, 3, 1, 10, 0, 1) - 1)
    assert date_range("2024-03-01T10:00:00+08:00", zone) == (utc(2024, 3, 1, 2), utc(2024, 3, 1, 2, 0, 1) - 1)
    assert date_range("2024-03-01T10:00:00-05:30", zone)[0] == utc(2024, 3, 1, 15, 30)


def test_plus_eight_equals_shanghai_without_zone() -> None:
    for text in ("2024-03-01T10:00:00", "2024-03-01T23:59:59.999", "1999-12-31T20:00"):
        assert date_range(text + "+08:00", UTC) == date_range(text, SHANGHAI)


def test_zone_with_daylight_saving_has_a_23_hour_day() -> None:
    # Clocks in New York went forward on 2024-03-10: that calendar day is 23 hours long.
    low, high = date_range("2024-03-10", NEW_YORK)
    assert low == utc(2024, 3, 10, 5)
    assert high - low + 1 == 23 * HOUR


@pytest.mark.parametrize(("text", "length"), [("2024-11-03T01:59:59", SECOND), ("2024-11-03T01:59", MINUTE)])
def test_a_second_stays_a_second_when_the_clock_falls_back(text: str, length: int) -> None:
    # New York fell back from 02:00 EDT to 01:00 EST on 2024-11-03: 01:59:59 (read as EDT, the first of the
    # two) is followed by 01:00:00 EST one second later, not by 02:00:00 EST an hour and a second later.
    low, high = date_range(text, NEW_YORK)
    assert low == utc(2024, 11, 3, 5, 59, 59 if length == SECOND else 0)
    assert high - low + 1 == length


# -- date_range: calendar -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "days"),
    [("2024-02", 29), ("2023-02", 28), ("2000-02", 29), ("1900-02", 28), ("2024-04", 30), ("2024-12", 31)],
)
def test_month_length(month: str, days: int) -> None:
    low, high = date_range(month, UTC)
    assert high - low + 1 == days * DAY


@pytest.mark.parametrize("text", ["2024-02-29", "2000-02-29", "2024-02-29T12:00:00Z"])
def test_leap_days_are_valid(text: str) -> None:
    low, high = date_range(text, SHANGHAI)
    assert low <= high


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "24",
        "2024-3",
        "2024-3-1",
        "20240301",
        "2024-13",
        "2024-00",
        "2024-02-30",
        "2023-02-29",
        "1900-02-29",
        "2100-02-29",
        "2024-04-31",
        "2024-03-01T10Z",
        "2024-03-01T24:00:00Z",
        "2024-03-01T10:60:00Z",
        "2024-03-01 10:00:00",
        "2024-03-01T10:00:00ZZ",
        "2024-03-01T10:00:00+0800",
        "2024-03-01T10:00:00+25:00",
    ],
)
def test_invalid_dates_raise_date_format_error(text: str) -> None:
    with pytest.raises(DateFormatError):
        date_range(text, SHANGHAI)


# -- date_range: properties -----------------------------------------------------------------------

OFFSETS = st.sampled_from([None, "Z", "+08:00", "-05:00", "+05:45", "-12:00", "+14:00"])
# From 1992: China has kept UTC+8 all year since then (daylight saving time is covered separately below).
MOMENTS = st.datetimes(min_value=datetime(1992, 1, 1), max_value=datetime(2200, 12, 31))


def _offset_zone(offset: str | None) -> timezone | ZoneInfo:
    if offset is None:
        return SHANGHAI
    if offset == "Z":
        return UTC
    sign = 1 if offset[0] == "+" else -1
    return timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))


@settings(deadline=None)
@given(moment=MOMENTS, offset=OFFSETS, digits=st.integers(min_value=0, max_value=6))
def test_a_date_times_range_contains_its_instant(moment: datetime, offset: str | None, digits: int) -> None:
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    micro = 0
    if digits:
        fraction = f"{moment.microsecond:06d}"[:digits]
        text += "." + fraction
        micro = int(fraction.ljust(6, "0"))
    text += offset or ""
    instant = us(moment.replace(microsecond=micro, tzinfo=_offset_zone(offset)))
    low, high = date_range(text, SHANGHAI)
    assert low == instant
    assert low <= instant <= high
    assert high - low + 1 == 10 ** (6 - digits)


@settings(deadline=None)
@given(moment=MOMENTS, offset=OFFSETS)
def test_partial_dates_nest_and_are_ordered(moment: datetime, offset: str | None) -> None:
    suffix = offset or ""
    texts = [
        moment.strftime("%Y"),
        moment.strftime("%Y-%m"),
        moment.strftime("%Y-%m-%d"),
        moment.strftime("%Y-%m-%dT%H:%M") + suffix,
        moment.strftime("%Y-%m-%dT%H:%M:%S") + suffix,
    ]
    ranges = [date_range(t, SHANGHAI) for t in texts]
    for low, high in ranges:
        assert low <= high
    # Without an offset, coarser values (read in the same zone) contain the finer ones.
    if offset is None:
        for (outer_low, outer_high), (inner_low, inner_high) in itertools.pairwise(ranges):
            assert outer_low <= inner_low <= inner_high <= outer_high


@settings(deadline=None)
@given(day=st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 30)))
def test_consecutive_days_tile_the_timeline(day: date) -> None:
    nxt = day + timedelta(days=1)
    assert date_range(day.isoformat(), SHANGHAI)[1] + 1 == date_range(nxt.isoformat(), SHANGHAI)[0]


# -- normalize_string -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Wang", "wang"),
        ("WANG WEI", "wang wei"),
        ("ＷＡＮＧ", "wang"),
        ("Ｗａｎｇ　Ｗｅｉ", "wang wei"),
        ("１２３", "123"),
        ("José", "jose"),
        ("Müller", "muller"),
        ("ÅNGSTRÖM", "angstrom"),
        ("Straße", "strasse"),
        ("王伟", "王伟"),
        ("欧阳 娜娜", "欧阳 娜娜"),
        ("王　伟", "王 伟"),
        ("  Wang \t Wei\n", "wang wei"),
        ("   ", ""),
        ("Lǚ", "lu"),
    ],
)
def test_normalize_string(value: str, expected: str) -> None:
    assert normalize_string(value) == expected


def test_normalize_string_truncates_to_the_index_length() -> None:
    assert normalize_string("a" * 500) == "a" * STRING_INDEX_LENGTH


TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=("Cs",)),
        st.sampled_from("王李张伟娜ＷＡＮＧａｎｇ　 \tÉéüÜßǅ"),
    ),
    max_size=60,
)


@settings(deadline=None)
@given(TEXT)
def test_normalize_string_is_idempotent(value: str) -> None:
    once = normalize_string(value)
    assert normalize_string(once) == once


@settings(deadline=None)
@given(TEXT)
def test_normalized_strings_have_no_case_accents_or_extra_spaces(value: str) -> None:
    norm = normalize_string(value)
    assert norm == norm.strip()
    assert "  " not in norm
    assert not any(ch.isspace() and ch != " " for ch in norm)
    assert not any(unicodedata.combining(ch) for ch in norm)
    assert len(norm) <= STRING_INDEX_LENGTH


@settings(deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ 王李张伟"), max_size=40
    )
)
def test_case_and_width_do_not_matter(value: str) -> None:
    full_width = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in value)
    assert normalize_string(value.upper()) == normalize_string(value.lower()) == normalize_string(full_width)


# -- numbers --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("100", 99.5, 100.5),
        ("100.0", 99.95, 100.05),
        ("100.00", 99.995, 100.005),
        ("0.1", 0.05, 0.15),
        ("5.4", 5.35, 5.45),
        ("-5", -5.5, -4.5),
        ("0", -0.5, 0.5),
        ("1e-2", 0.005, 0.015),
    ],
)
def test_implicit_range(text: str, low: float, high: float) -> None:
    assert implicit_range(parse_decimal(text)) == (pytest.approx(low), pytest.approx(high))


def test_exponent_notation_has_the_precision_of_its_significant_figures() -> None:
    # 1e2 is 100 to one significant figure: a wider range than 100 (three significant figures).
    low, high = implicit_range(Decimal("1e2"))
    assert (low, high) == (pytest.approx(50), pytest.approx(150))
    wide, narrow = (low, high), implicit_range(Decimal("100"))
    assert wide[0] < narrow[0] < 100 < narrow[1] < wide[1]


@settings(deadline=None)
@given(
    digits=st.integers(min_value=-(10**6), max_value=10**6), exponent=st.integers(min_value=-6, max_value=3)
)
def test_implicit_range_surrounds_the_value_by_half_a_unit_of_its_last_digit(
    digits: int, exponent: int
) -> None:
    value = Decimal(f"{digits}E{exponent}")
    low, high = implicit_range(value)
    assert low < float(value) < high
    assert float(value) - low == pytest.approx(high - float(value), rel=1e-6)
    assert high - low == pytest.approx(10.0**exponent, rel=1e-6)


@pytest.mark.parametrize("text", ["abc", "", "1,5", "NaN", "Infinity", "-inf", "1e"])
def test_parse_decimal_refuses_what_is_not_a_finite_number(text: str) -> None:
    with pytest.raises(ValueError, match="number"):
        parse_decimal(text)
