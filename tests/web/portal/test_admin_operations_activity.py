"""The health page's write counts: minutes are counted once they have settled, then remembered."""

from __future__ import annotations

from typing import Any

import pytest

from rhip.bootstrap import activity
from rhip.bootstrap.activity import BASE_US, SETTLED_US, Counts, WriteCounts

T0 = 1_800_000_000 * 1_000_000 // BASE_US * BASE_US  # a minute boundary


def test_settled_minutes_are_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[int, int]] = []

    def count(db: Any, since_us: int, until_us: int, bucket_us: int) -> dict[int, Counts]:
        assert bucket_us == BASE_US
        asked.append((since_us, until_us))
        return {b: {("H1", "v2"): (1, 1)} for b in range(since_us, until_us, BASE_US)}

    monkeypatch.setattr(activity, "_count_writes", count)
    writes = WriteCounts()
    until = T0 + 60 * BASE_US
    now = until - BASE_US // 2  # inside the last minute
    first = writes.between(None, T0, until, 10 * BASE_US, now)  # type: ignore[arg-type]
    assert asked == [(T0, until)]
    assert list(first) == [T0 + i * 10 * BASE_US for i in range(6)]
    assert all(counts == {("H1", "v2"): (10, 10)} for counts in first.values())
    # A minute later: only the minute that was still open and the new one are asked about.
    later = writes.between(None, T0 + BASE_US, until + BASE_US, 10 * BASE_US, now + BASE_US)  # type: ignore[arg-type]
    assert asked[1] == (until - BASE_US, until + BASE_US)
    assert sum(n for counts in later.values() for n, _ in counts.values()) == 60


def test_a_minute_is_not_kept_before_it_settles(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def count(db: Any, since_us: int, until_us: int, bucket_us: int) -> dict[int, Counts]:
        calls.append(since_us)
        return {}

    monkeypatch.setattr(activity, "_count_writes", count)
    writes = WriteCounts()
    end = T0 + BASE_US
    writes.between(None, T0, end, BASE_US, end + SETTLED_US - 1)  # type: ignore[arg-type]
    writes.between(None, T0, end, BASE_US, end + SETTLED_US)  # type: ignore[arg-type]
    writes.between(None, T0, end, BASE_US, end + SETTLED_US + 1)  # type: ignore[arg-type]
    assert calls == [T0, T0]  # asked until it settled, then remembered
