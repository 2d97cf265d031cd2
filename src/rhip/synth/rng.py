"""Deterministic randomness: every unit of work (a household, an institution) gets its own stream.

Streams are derived from the run's seed and the unit's key, never from a shared generator, so that a
unit's output does not depend on the order units are generated in — which is what lets generation run
in several processes and still give byte-identical output for a seed.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from itertools import accumulate
from typing import TypeVar

T = TypeVar("T")

_MASK64 = (1 << 64) - 1


def _mix(x: int) -> int:
    # splitmix64 finaliser: neighbouring keys give unrelated seeds.
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def stream(seed: int, *keys: int) -> random.Random:
    """An independent random stream for ``keys`` under ``seed``."""
    x = _mix(seed)
    for k in keys:
        x = _mix(x ^ k)
    return random.Random(x)


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (so ids are reproducible)."""
    v = rng.getrandbits(128) & ~(0xF000 << 64) & ~(0xC000 << 48) | (0x4000 << 64) | (0x8000 << 48)
    h = f"{v:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Weighted(Sequence[T]):
    """A list of items with weights and a fast weighted draw (cumulative weights, bisection)."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if len(items) != len(weights) or not items:
            raise ValueError("items and weights must be non-empty and of the same length")
        self.items = list(items)
        self.cumulative = list(accumulate(float(w) for w in weights))
        self.total = self.cumulative[-1]

    def draw(self, rng: random.Random) -> T:
        """One item, with probability proportional to its weight."""
        return self.items[bisect(self.cumulative, rng.random() * self.total)]

    def __getitem__(self, i: int) -> T:  # type: ignore[override]
        return self.items[i]

    def __len__(self) -> int:
        return len(self.items)
