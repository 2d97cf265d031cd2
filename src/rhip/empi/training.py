"""Learning a match model from the region's own unlabelled records (Fellegi–Sunter with EM).

- **u** (how often a level is reached by two different people) comes from random pairs, which are
  almost all non-matches.
- **m** (how often the same person reaches it) comes from EM sessions, each over the pairs of one
  blocking rule, estimating every comparison except those the rule itself fixes (Splink's approach): a
  session blocked on birth date learns the names, IDs and contact; one blocked on ID number learns birth
  dates. No session is blocked on phone or address: pairs sharing a phone are mostly one household, and EM
  over them learns "same household" rather than "same person" (measured on the synthetic region).
- **the prior** is EM's match share of the blocked pairs spread over all pairs (blocking misses few).
- **term frequencies** of names: values carried by at least :data:`TF_MIN_COUNT` records.

EM works on the distinct comparison vectors with their counts, so a million pairs cost a few thousand rows.
"""

from __future__ import annotations

import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from numpy.typing import NDArray

from rhip.empi.compare import COMPARISONS, NULL, PROFILES
from rhip.empi.features import BORROWED, Features
from rhip.empi.model import Level, MatchModel

TF_MIN_COUNT = 5  # rarer values are not published in the model (they would identify someone)
MIN_RECORDS = 500  # below this EM has too few pairs of one person to learn from; keep the default model
SESSIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    # The feature each session blocks on; the comparisons using that feature are not estimated in it.
    # A comparison takes its m from the first session that estimates it: pairs sharing an ID number are
    # nearly all one person, while pairs sharing a birth date include twins and other household members
    # whom the contact evidence makes look alike, so the Chinese names and contact are learnt from the
    # ID session and only the ID number itself from the birth-date session.
    "cn": (("id_number",), ("birth_date",)),
    "latin": (("birth_date",), ("postcode",)),
}
USES: dict[str, str] = {"id_number": "id_number", "birth_date": "birth_date", "postcode": "postcode"}


@dataclass
class TrainingOptions:
    """How much data training looks at."""

    profile: str = "cn"
    max_records: int = 300_000
    u_pairs: int = 600_000
    max_session_pairs: int = 1_500_000
    max_block: int = 60
    em_rounds: int = 40
    seed: int = 1
    link_threshold: float = 0.99
    review_threshold: float = 0.5


def train(
    records: Sequence[Features],
    options: TrainingOptions | None = None,
    version: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> MatchModel:
    """A model learnt from ``records`` (a sample of the region's source Patients)."""
    opts = options or TrainingOptions()
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    rng = random.Random(opts.seed)
    sample = list(records)
    if len(sample) > opts.max_records:
        sample = rng.sample(sample, opts.max_records)
    if len(sample) < MIN_RECORDS:
        raise ValueError(
            f"training needs at least {MIN_RECORDS} records (the store holds {len(sample)}); "
            "until then the packaged model serves"
        )
    comparisons = [COMPARISONS[n] for n in PROFILES[opts.profile]]
    names = [c.name for c in comparisons]
    say(f"u from {opts.u_pairs:,} random pairs")
    u = _u_probabilities(sample, comparisons, opts.u_pairs, rng)
    m: dict[str, list[NDArray[np.float64]]] = defaultdict(list)
    match_share: list[tuple[float, int, str]] = []
    for fields in SESSIONS[opts.profile]:
        pairs = _blocked_pairs(sample, fields, opts.max_block, opts.max_session_pairs, rng)
        say(f"EM over {len(pairs):,} pairs blocked on {'+'.join(fields)}")
        gammas = _gammas(pairs, sample, comparisons)
        fixed = {i for i, c in enumerate(comparisons) if USES.get(c.name) in fields}
        est_m, share = _em(gammas, u, fixed, opts.em_rounds)
        for i, name in enumerate(names):
            if i not in fixed and name not in m:
                m[name].append(est_m[i])
        match_share.append((share, len(pairs), "+".join(fields)))
    n = len(sample)
    # Matches among blocked pairs of the broadest session, spread over all pairs of the sample.
    share, n_pairs, _ = max(match_share, key=lambda s: s[1])
    prior = min(max(share * n_pairs / (n * (n - 1) / 2), 1e-9), 0.5)
    levels: dict[str, list[Level]] = {}
    for i, c in enumerate(comparisons):
        est = m.get(c.name)
        learnt = est[0] if est else _initial_m(len(c.levels))
        levels[c.name] = [Level(label, float(learnt[j]), float(u[i][j])) for j, label in enumerate(c.levels)]
    tf = _term_frequencies(sample, [c.tf_field for c in comparisons if c.tf_field])
    stamp = datetime.now(UTC)
    return MatchModel(
        version=version or stamp.strftime("%Y%m%dT%H%M%SZ"),
        profile=opts.profile,
        prior=prior,
        levels=levels,
        tf=tf,
        link_threshold=opts.link_threshold,
        review_threshold=opts.review_threshold,
        trained={
            "at": stamp.isoformat(timespec="seconds"),
            "records": n,
            "sessions": [{"block": b, "pairs": p, "match_share": round(s, 6)} for s, p, b in match_share],
            "seconds": round(time.perf_counter() - started, 1),
        },
    )


def _u_probabilities(
    sample: Sequence[Features], comparisons: Sequence[object], n_pairs: int, rng: random.Random
) -> list[NDArray[np.float64]]:
    n = len(sample)
    pairs = [(rng.randrange(n), rng.randrange(n)) for _ in range(min(n_pairs, n * (n - 1) // 2))]
    pairs = [(a, b) for a, b in pairs if a != b]
    gammas = _gammas(pairs, sample, comparisons)
    return [_distribution(gammas[:, i], len(c.levels)) for i, c in enumerate(comparisons)]  # type: ignore[attr-defined]


def _distribution(column: NDArray[np.int8], n_levels: int) -> NDArray[np.float64]:
    counts = np.bincount(column[column != NULL].astype(np.int64), minlength=n_levels).astype(np.float64)
    counts += 0.5  # Laplace: a level never seen among random pairs is rare, not impossible
    result: NDArray[np.float64] = counts / counts.sum()
    return result


def _blocked_pairs(
    sample: Sequence[Features], fields: tuple[str, ...], max_block: int, limit: int, rng: random.Random
) -> list[tuple[int, int]]:
    blocks: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for i, f in enumerate(sample):
        values = tuple(getattr(f, name) for name in fields)
        # A borrowed ID number (a newborn under the mother's) groups a family, not a person.
        if all(values) and not ("id_number" in fields and f.id_trust == BORROWED):
            blocks[values].append(i)
    pairs: list[tuple[int, int]] = []
    for members in blocks.values():
        if len(members) > max_block:
            members = rng.sample(members, max_block)
        pairs.extend((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
    if len(pairs) > limit:
        pairs = rng.sample(pairs, limit)
    return pairs


def _gammas(
    pairs: Sequence[tuple[int, int]], sample: Sequence[Features], comparisons: Sequence[object]
) -> NDArray[np.int8]:
    fns = [c.compare for c in comparisons]  # type: ignore[attr-defined]
    out = np.empty((len(pairs), len(fns)), dtype=np.int8)
    for row, (a, b) in enumerate(pairs):
        fa, fb = sample[a], sample[b]
        out[row] = [fn(fa, fb) for fn in fns]
    return out


def _initial_m(n_levels: int) -> NDArray[np.float64]:
    raw = np.array([0.9 * (0.25**k) for k in range(n_levels)], dtype=np.float64)
    result: NDArray[np.float64] = raw / raw.sum()
    return result


def _em(
    gammas: NDArray[np.int8], u: Sequence[NDArray[np.float64]], fixed: set[int], rounds: int
) -> tuple[list[NDArray[np.float64]], float]:
    """EM for m (u fixed) and the match share, over distinct comparison vectors weighted by their counts."""
    if len(gammas) == 0:
        return [_initial_m(len(ui)) for ui in u], 0.0
    patterns, counts = np.unique(gammas, axis=0, return_counts=True)
    counts = counts.astype(np.float64)
    k = patterns.shape[1]
    m = [_initial_m(len(ui)) for ui in u]
    share = 0.1
    for _ in range(rounds):
        log_ratio = np.full(len(patterns), np.log(share / (1 - share)))
        for i in range(k):
            col = patterns[:, i]
            present = col != NULL
            idx = col[present].astype(np.int64)
            log_ratio[present] += np.log(np.maximum(m[i][idx], 1e-9)) - np.log(np.maximum(u[i][idx], 1e-9))
        posterior = 1 / (1 + np.exp(-np.clip(log_ratio, -50, 50)))
        weighted = posterior * counts
        new_share = float(weighted.sum() / counts.sum())
        for i in range(k):
            if i in fixed:
                continue
            col = patterns[:, i]
            present = col != NULL
            sums = np.bincount(col[present].astype(np.int64), weights=weighted[present], minlength=len(m[i]))
            total = sums.sum()
            if total > 0:
                m[i] = (sums + 1e-6) / (total + 1e-6 * len(sums))
        if abs(new_share - share) < 1e-7:
            share = new_share
            break
        share = min(max(new_share, 1e-6), 0.999)
    return m, share


def _term_frequencies(sample: Sequence[Features], fields: Sequence[str]) -> dict[str, dict[str, float]]:
    n = len(sample)
    tf: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(fields):
        counts = Counter(getattr(f, name) for f in sample if getattr(f, name))
        tf[name] = {v: round(c / n, 8) for v, c in counts.most_common() if c >= TF_MIN_COUNT}
    return tf
