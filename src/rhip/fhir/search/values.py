"""Normalised search values shared by indexing (on write) and query parsing (on search).

Dates become half-open ranges of UTC epoch microseconds ``[low, high]`` (inclusive high, the last
microsecond), so that a partial date such as ``2024-03`` covers the whole month. Date-only values and
dateTimes without an offset are read in the platform's zone (Asia/Shanghai by default), as the FHIR
specification leaves it to the server.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from functools import lru_cache

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_US = -62135596800 * 1_000_000  # 0001-01-01T00:00:00Z
MAX_US = 253402300799 * 1_000_000 + 999_999  # 9999-12-31T23:59:59.999999Z
STRING_INDEX_LENGTH = 200

_DATE_RE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2})(?::(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d+))?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?"
)


class DateFormatError(ValueError):
    """A value is not a FHIR date, dateTime or instant."""


def _to_us(moment: datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


@lru_cache(maxsize=16384)
def date_range(text: str, zone: tzinfo) -> tuple[int, int]:
    """The ``[low, high]`` range in UTC epoch microseconds covered by a FHIR date/dateTime/instant.

    Cached: the resources of one encounter share their timestamps.
    """
    m = _DATE_RE.fullmatch(text.strip())
    if not m:
        raise DateFormatError(f"not a FHIR date or dateTime: {text!r}")
    year = int(m["y"])
    tz: tzinfo = zone
    if m["tz"]:
        if m["tz"] == "Z":
            tz = UTC
        else:
            sign = 1 if m["tz"][0] == "+" else -1
            hours, minutes = int(m["tz"][1:3]), int(m["tz"][4:6])
            if hours > 14 or minutes > 59 or (hours == 14 and minutes):
                raise DateFormatError(f"a time-zone offset lies within ±14:00: {text!r}")
            tz = _fixed(sign * (hours * 60 + minutes))
    step_us = (
        0  # below a day, the range is measured in elapsed time (a clock that falls back repeats an hour)
    )
    try:
        if m["m"] is None:
            low = datetime(year, 1, 1, tzinfo=tz)
            high = datetime(year + 1, 1, 1, tzinfo=tz) if year < 9999 else None
        elif m["d"] is None:
            month = int(m["m"])
            low = datetime(year, month, 1, tzinfo=tz)
            last = calendar.monthrange(year, month)[1]
            high = low + timedelta(days=last)
        elif m["H"] is None:
            low = datetime(year, int(m["m"]), int(m["d"]), tzinfo=tz)
            high = low + timedelta(days=1)
        elif m["M"] is None:
            raise DateFormatError(f"a time needs hours and minutes: {text!r}")
        elif m["S"] is None:
            low = datetime(year, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), tzinfo=tz)
            high, step_us = None, 60_000_000
        else:
            second = min(int(m["S"]), 59)  # a leap second is the last second of its minute
            frac = m["f"] or ""
            micro = int((frac + "000000")[:6]) if frac else 0
            low = datetime(year, int(m["m"]), int(m["d"]), int(m["H"]), int(m["M"]), second, micro, tzinfo=tz)
            # Precision: seconds cover the second; fractions cover their last digit.
            high, step_us = None, 1_000_000 if not frac else 10 ** max(0, 6 - len(frac))
    except (ValueError, OverflowError) as exc:
        raise DateFormatError(f"not a valid date: {text!r}") from exc
    low_us = _to_us(low)
    if step_us:
        return low_us, low_us + step_us - 1
    high_us = _to_us(high) - 1 if high is not None else MAX_US
    return low_us, high_us


_ZONES: dict[int, tzinfo] = {}


def _fixed(minutes: int) -> tzinfo:
    zone = _ZONES.get(minutes)
    if zone is None:
        zone = timezone(timedelta(minutes=minutes))
        _ZONES[minutes] = zone
    return zone


def us_to_datetime(us: int) -> datetime:
    """UTC epoch microseconds back to an aware datetime."""
    return EPOCH + timedelta(microseconds=us)


def date_to_us(day: date, zone: tzinfo) -> int:
    """The first microsecond of a calendar day in ``zone``."""
    return _to_us(datetime(day.year, day.month, day.day, tzinfo=zone))


@lru_cache(maxsize=16384)
def normalize_string(value: str) -> str:
    """The form used for string search: compatibility-decomposed, accents and case removed, spaces collapsed."""
    if value.isascii():
        folded = value.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", value)
        folded = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
    return " ".join(folded.split())[:STRING_INDEX_LENGTH]


def parse_decimal(text: str) -> Decimal:
    """A search or stored number as a Decimal; raises ValueError when it is not one."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {text!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return value


def implicit_range(value: Decimal) -> tuple[float, float]:
    """The range a number stands for by its precision: ``100`` → [99.5, 100.5], ``1e2`` → [50, 150]."""
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5) * Decimal(10) ** (exponent - 1)
    return float(value - half), float(value + half)
