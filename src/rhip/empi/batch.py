"""Batch linkage: every record against its blocks, then clusters that never join two vetoed records.

Used by ``rhip empi relink`` and the accuracy benchmark. Pairs are scored in this process, or in forked
worker processes for very large regions (they share the records copy-on-write, but touching them copies
pages, so below ten million records one process is both fast enough and half the memory). Only pairs that
can matter are kept: those above the review threshold and those a rule vetoed. Clustering takes links strongest first and joins two clusters
only when no vetoed or manually separated pair would end up inside, and their trusted ID numbers agree.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from rhip.empi.blocking import MAX_BLOCK, rule_values
from rhip.empi.features import TRUSTED, Features
from rhip.empi.matching import score_pair
from rhip.empi.model import MatchModel

_STATE: dict[str, object] = {}  # what forked workers inherit (records, blocks, model)


class ScoredPair(NamedTuple):
    """A pair of record indexes with its weight and any rule that applied (a tuple: cheap to pickle)."""

    a: int
    b: int
    weight: float
    veto: str | None
    cap: str | None


@dataclass
class Clustering:
    """The outcome of a batch: a cluster number per record, and the pairs for review."""

    cluster: list[int]
    weight: list[float | None]  # the weight by which each record joined its cluster
    review: list[ScoredPair] = field(default_factory=list)
    pairs_scored: int = 0


def blocks_of(records: Sequence[Features]) -> tuple[dict[int, list[int]], list[tuple[int, ...]]]:
    """Record indexes by blocking-rule value (blocks larger than MAX_BLOCK dropped), and each record's keys.

    Keys are the values' built-in hashes: a million records have some eight million values, and an int
    key costs a third of the memory of the string (the hash is stable within this process and its forked
    workers, which is all it must be; a collision only adds a comparison).
    """
    blocks: dict[int, list[int]] = defaultdict(list)
    hashed = [tuple(map(hash, rule_values(f))) for f in records]
    for i, values in enumerate(hashed):
        for value in values:
            blocks[value].append(i)
    kept = {k: v for k, v in blocks.items() if 1 < len(v) <= MAX_BLOCK}
    blocks.clear()
    keys_of = [tuple(k for k in values if k in kept) for values in hashed]
    del hashed
    return kept, keys_of


def _score_slice(bounds: tuple[int, int]) -> tuple[list[ScoredPair], int]:
    records: Sequence[Features] = _STATE["records"]  # type: ignore[assignment]
    keys_of: list[tuple[int, ...]] = _STATE["keys"]  # type: ignore[assignment]
    blocks: dict[int, list[int]] = _STATE["blocks"]  # type: ignore[assignment]
    model: MatchModel = _STATE["model"]  # type: ignore[assignment]
    keep = model.review_weight
    out: list[ScoredPair] = []
    scored = 0
    for i in range(*bounds):
        others: set[int] = set()
        for key in keys_of[i]:
            members = blocks.get(key)
            if members is not None:
                others.update(members)
        a = records[i]
        for j in others:
            if j <= i:
                continue
            scored += 1
            b = records[j]
            pair = score_pair(model, a, b)
            if pair.veto:
                # Clustering refuses to join two trusted ID numbers by itself; only other vetoes travel.
                if pair.veto != "different-id-numbers":
                    out.append(ScoredPair(i, j, pair.weight, pair.veto, pair.cap))
            elif pair.weight >= keep:
                out.append(ScoredPair(i, j, pair.weight, None, pair.cap))
    return out, scored


def score_all(
    model: MatchModel,
    records: Sequence[Features],
    workers: int = 0,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[ScoredPair], int]:
    """Every blocked pair scored; returns the pairs that matter and how many were scored."""
    blocks, keys_of = blocks_of(records)
    _STATE.update(records=records, keys=keys_of, blocks=blocks, model=model)
    n = len(records)
    step = 20_000
    slices = [(s, min(s + step, n)) for s in range(0, n, step)]
    workers = workers or os.cpu_count() or 1
    pairs: list[ScoredPair] = []
    scored = 0
    try:
        if workers == 1 or n < 2 * step or "fork" not in multiprocessing.get_all_start_methods():
            results: Iterable[tuple[list[ScoredPair], int]] = map(_score_slice, slices)
            for (found, count), (lo, hi) in zip(results, slices, strict=True):
                pairs.extend(found)
                scored += count
                if progress:
                    progress(hi - lo)
        else:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for (found, count), (lo, hi) in zip(pool.imap(_score_slice, slices), slices, strict=True):
                    pairs.extend(found)
                    scored += count
                    if progress:
                        progress(hi - lo)
    finally:
        _STATE.clear()
    return pairs, scored


def cluster(
    model: MatchModel,
    records: Sequence[Features],
    pairs: Sequence[ScoredPair],
    *,
    no_match: Iterable[tuple[int, int]] = (),
    together: Iterable[Sequence[int]] = (),
) -> Clustering:
    """Greedy constrained clustering: links strongest first, never across a veto or a manual separation.

    ``together``: groups of records a person linked by hand; they start as one cluster each.
    """
    n = len(records)
    parent = list(range(n))
    # Only clusters of two or more have entries: a million singletons need no list, set or dict entry each.
    members: dict[int, list[int]] = {}
    apart: dict[int, set[int]] = defaultdict(set)  # root -> records that must not join it
    ids: dict[int, set[str]] = {}  # root -> the trusted ID numbers of a joined cluster
    joined_by: list[float | None] = [None] * n
    nothing: frozenset[int] = frozenset()

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def ids_of(root: int) -> set[str]:
        if root in ids:
            return ids[root]
        f = records[root]
        return {f.id_number} if f.id_trust == TRUSTED and f.id_number else set()

    for a, b in no_match:
        apart[a].add(b)
        apart[b].add(a)
    for p in pairs:
        if p.veto:
            apart[p.a].add(p.b)
            apart[p.b].add(p.a)

    def union(ra: int, rb: int, force: bool = False) -> bool:
        if ra == rb:
            return True
        if len(members.get(ra, (ra,))) < len(members.get(rb, (rb,))):
            ra, rb = rb, ra
        joining = members.get(rb, [rb])
        if not force:
            if any(m in apart.get(ra, nothing) for m in joining):
                return False
            ia, ib = ids_of(ra), ids_of(rb)
            if ia and ib and not (ia & ib):
                return False
        merged_ids = ids_of(ra) | ids_of(rb)
        parent[rb] = ra
        members.setdefault(ra, [ra]).extend(joining)
        members.pop(rb, None)
        if rb in apart:
            apart[ra] |= apart.pop(rb)
        ids.pop(rb, None)
        if merged_ids:
            ids[ra] = merged_ids
        return True

    for group in together:
        for x in group[1:]:
            union(find(group[0]), find(x), force=True)
    link = model.link_weight
    review: list[ScoredPair] = []
    for p in sorted(pairs, key=lambda p: p.weight, reverse=True):
        if p.veto:
            continue
        if p.weight >= link and p.cap is None:
            ra, rb = find(p.a), find(p.b)
            if ra == rb or union(ra, rb):
                for x in (p.a, p.b):
                    if joined_by[x] is None or p.weight > (joined_by[x] or 0.0):
                        joined_by[x] = p.weight
                continue
        if find(p.a) != find(p.b):
            review.append(p)
    return Clustering([find(i) for i in range(n)], joined_by, review)
