"""The match model: Fellegi–Sunter m and u per comparison level, the prior, term frequencies, thresholds.

A model is a versioned JSON document. ``rhip empi train`` learns one from the region's own records (EM,
see :mod:`rhip.empi.training`) and stores it in the database, where every process reads the active one;
the package ships a default learnt from the synthetic region (``data/model-cn.json``) for a region that
has not trained yet.

Scores are match weights: log2 of the posterior odds that two records are one person. A weight ``w`` is
the probability ``2**w / (1 + 2**w)``; 0 is even odds, 6.6 is 0.99, 9.97 is 0.999.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson

from rhip.core.errors import InvalidRequest
from rhip.empi.compare import COMPARISONS, NULL, PROFILES, Comparison
from rhip.empi.features import Features

FORMAT = "rhip-empi-model/1"
# No level is impossible: a probability of 0 would make one field decide alone. m has the higher floor
# because the data EM learns from under-represents rare real events for one person (a name changed at
# marriage, a birth date re-registered): one record in a thousand is assumed to do anything.
_M_FLOOR = 1e-3
_U_FLOOR = 1e-6


@dataclass
class Level:
    """One agreement level of a comparison with its learnt probabilities."""

    label: str
    m: float  # P(level | same person)
    u: float  # P(level | different people)

    @property
    def weight(self) -> float:
        """log2(m/u): what reaching this level adds to the match weight."""
        return math.log2(max(self.m, _M_FLOOR) / max(self.u, _U_FLOOR))


@dataclass
class MatchModel:
    """A trained model: what it compares, how much each level weighs and where the thresholds are."""

    version: str
    profile: str
    prior: float  # P(two records drawn at random are the same person)
    levels: dict[str, list[Level]]
    tf: dict[str, dict[str, float]] = field(default_factory=dict)  # field -> value -> share of records
    link_threshold: float = 0.99  # probability at or above which a record links automatically
    review_threshold: float = 0.5  # probability at or above which (and below link) it goes to review
    trained: dict[str, Any] = field(default_factory=dict)  # when, on how many records and pairs, EM rounds

    def __post_init__(self) -> None:
        self.comparisons: list[Comparison] = [COMPARISONS[name] for name in PROFILES[self.profile]]
        missing = [c.name for c in self.comparisons if c.name not in self.levels]
        if missing:
            raise InvalidRequest(f"the EMPI model {self.version} has no weights for {', '.join(missing)}")
        self.weights: list[tuple[float, ...]] = [
            tuple(level.weight for level in self.levels[c.name]) for c in self.comparisons
        ]
        self.prior_weight = math.log2(self.prior / (1 - self.prior))
        self.link_weight = probability_to_weight(self.link_threshold)
        self.review_weight = probability_to_weight(self.review_threshold)
        # The u of each comparison's first level: the term-frequency adjustment replaces it by the value's share.
        self._tf: list[tuple[str, dict[str, float], float] | None] = [
            (c.tf_field, self.tf.get(c.tf_field, {}), self.levels[c.name][0].u) if c.tf_field else None
            for c in self.comparisons
        ]

    def gamma(self, a: Features, b: Features) -> tuple[int, ...]:
        """The comparison vector of two records."""
        return tuple(c.compare(a, b) for c in self.comparisons)

    def weigh(self, a: Features, b: Features, gamma: tuple[int, ...]) -> float:
        """The match weight of two records with comparison vector ``gamma``."""
        total = self.prior_weight
        for i, level in enumerate(gamma):
            if level == NULL:
                continue
            total += self.weights[i][level]
            if level == 0:
                tf = self._tf[i]
                if tf is not None and tf[1]:
                    share = tf[1].get(getattr(a, tf[0]))
                    if share is not None and share > tf[2]:
                        # A common value agrees by chance more often than the average value does.
                        total -= math.log2(share / tf[2])
        return total

    def to_json(self) -> bytes:
        """The model document."""
        return orjson.dumps(
            {
                "format": FORMAT,
                "version": self.version,
                "profile": self.profile,
                "prior": self.prior,
                "link_threshold": self.link_threshold,
                "review_threshold": self.review_threshold,
                "comparisons": {
                    name: [{"label": lv.label, "m": lv.m, "u": lv.u} for lv in levels]
                    for name, levels in self.levels.items()
                },
                "tf": self.tf,
                "trained": self.trained,
            },
            option=orjson.OPT_INDENT_2,
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> MatchModel:
        """Read a model document (refuses other formats and unknown profiles)."""
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"not an EMPI model: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise InvalidRequest(f"not an EMPI model of format {FORMAT}")
        if doc.get("profile") not in PROFILES:
            raise InvalidRequest(f"unknown EMPI model profile {doc.get('profile')!r}")
        levels = {
            name: [Level(lv["label"], float(lv["m"]), float(lv["u"])) for lv in lvs]
            for name, lvs in doc["comparisons"].items()
        }
        return cls(
            version=str(doc["version"]),
            profile=doc["profile"],
            prior=float(doc["prior"]),
            levels=levels,
            tf=doc.get("tf") or {},
            link_threshold=float(doc.get("link_threshold", 0.99)),
            review_threshold=float(doc.get("review_threshold", 0.5)),
            trained=doc.get("trained") or {},
        )


def probability_to_weight(p: float) -> float:
    """The match weight of a probability."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log2(p / (1 - p))


def weight_to_probability(w: float) -> float:
    """The probability of a match weight."""
    if w > 60:
        return 1.0
    if w < -60:
        return 0.0
    odds: float = 2.0**w
    return odds / (1 + odds)


def default_model() -> MatchModel:
    """The model shipped with rhip, learnt from the synthetic region (see docs/empi.md)."""
    return MatchModel.from_json(resources.files("rhip.empi").joinpath("data/model-cn.json").read_bytes())
