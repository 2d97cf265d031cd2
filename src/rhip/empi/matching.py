"""Scoring a record against candidates and deciding: link to a master, send to review, or a new person."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rhip.empi.features import Features
from rhip.empi.model import MatchModel, weight_to_probability
from rhip.empi.rules import cap, veto

LINK, REVIEW, NEW = "link", "review", "new"


@dataclass(frozen=True, slots=True)
class PairScore:
    """How two records compare: the match weight, the levels reached and any rule that applied."""

    other: str  # the candidate's patient id
    weight: float
    gamma: tuple[int, ...]
    veto: str | None = None
    cap: str | None = None

    @property
    def probability(self) -> float:
        """The match probability (0 when a rule vetoed the pair)."""
        return 0.0 if self.veto else weight_to_probability(self.weight)


@dataclass
class MasterScore:
    """A candidate master: the best of its members' pair scores, or the rule that forbids linking to it."""

    master_id: str
    best: PairScore
    pairs: list[PairScore] = field(default_factory=list)
    veto: str | None = None

    @property
    def weight(self) -> float:
        """The best member's weight (minus infinity when vetoed)."""
        return float("-inf") if self.veto else self.best.weight


@dataclass
class Decision:
    """What to do with an incoming record."""

    outcome: str  # LINK | REVIEW | NEW
    master_id: str | None  # LINK: the master; REVIEW: the candidate master
    weight: float
    masters: list[MasterScore]
    reason: str = ""


def score_pair(model: MatchModel, a: Features, b: Features) -> PairScore:
    """Compare two records with the model and the trap rules."""
    gamma = model.gamma(a, b)
    weight = model.weigh(a, b, gamma)
    vetoed = veto(a, b, unflagged_twins=model.profile == "cn")
    capped = None if vetoed else cap(a, b, model.tf.get("name", {}).get(a.name))
    return PairScore(b.patient_id, weight, gamma, vetoed, capped)


def score_masters(
    model: MatchModel,
    query: Features,
    candidates: Iterable[tuple[Features, str]],
    no_match: set[str] | frozenset[str] = frozenset(),
) -> list[MasterScore]:
    """Score ``query`` against each candidate ``(features, master id)`` and group by master, best first.

    ``no_match`` holds patient ids a person decided are not ``query``: their masters are vetoed.
    """
    by_master: dict[str, MasterScore] = {}
    for features, master_id in candidates:
        if features.patient_id == query.patient_id:
            continue
        pair = score_pair(model, query, features)
        if features.patient_id in no_match:
            pair = PairScore(pair.other, pair.weight, pair.gamma, "manual-no-match", None)
        entry = by_master.get(master_id)
        if entry is None:
            entry = by_master[master_id] = MasterScore(master_id, pair)
        elif not pair.veto and (entry.best.veto or pair.weight > entry.best.weight):
            entry.best = pair
        entry.pairs.append(pair)
        if pair.veto and entry.veto is None:
            entry.veto = pair.veto
    return sorted(by_master.values(), key=lambda s: s.weight, reverse=True)


def decide(model: MatchModel, masters: Sequence[MasterScore]) -> Decision:
    """Link above the link threshold, review between the thresholds, a new person below."""
    open_ = [s for s in masters if s.veto is None]
    if not open_:
        return Decision(NEW, None, float("-inf"), list(masters), "no candidate" if not masters else "vetoed")
    best = open_[0]
    weight = best.weight
    if weight >= model.link_weight and best.best.cap is None:
        # Another master above the threshold on its own merit makes the record ambiguous (a capped one, such
        # as a namesake born the same day, does not).
        rivals = [s for s in open_[1:] if s.weight >= model.link_weight and s.best.cap is None]
        if rivals:
            return Decision(REVIEW, best.master_id, weight, list(masters), "several masters match")
        return Decision(LINK, best.master_id, weight, list(masters), "above the link threshold")
    if weight >= model.review_weight or (best.best.cap is not None and weight >= model.link_weight):
        reason = best.best.cap or "between the thresholds"
        return Decision(REVIEW, best.master_id, weight, list(masters), reason)
    return Decision(NEW, None, weight, list(masters), "below the review threshold")
