"""Rank fusion of several ranked lists of chunk ids."""

from __future__ import annotations

import math
from collections.abc import Sequence

from fathom.index.types import ScoredId

__all__ = ["reciprocal_rank_fusion", "weighted_fusion", "zscore_fusion"]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[ScoredId]], weights: Sequence[float], k: int = 60
) -> list[ScoredId]:
    """RRF: ``score(d) = sum_i w_i / (k + rank_i(d))`` with ranks starting at 1.

    Ties keep the order in which ids were first seen (best list first).
    """
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if weight == 0:
            continue
        for rank, (item, _score) in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])


def weighted_fusion(rankings: Sequence[Sequence[ScoredId]], weights: Sequence[float]) -> list[ScoredId]:
    """Weighted sum of min-max normalised scores (a missing item contributes 0)."""
    scores: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if not ranking or weight == 0:
            continue
        values = [s for _, s in ranking]
        low, high = min(values), max(values)
        span = high - low
        for item, score in ranking:
            normalised = (score - low) / span if span > 0 else 1.0
            scores[item] = scores.get(item, 0.0) + weight * normalised
    return sorted(scores.items(), key=lambda pair: -pair[1])


def zscore_fusion(
    rankings: Sequence[Sequence[ScoredId]],
    weights: Sequence[float],
    min_spreads: Sequence[float] | None = None,
    *,
    rank_weight: float = 0.0,
    rank_k: int = 60,
) -> list[ScoredId]:
    """Weighted sum of z-normalised scores, each list shifted so its lowest candidate adds 0.

    Unlike RRF it keeps how far apart the scores are (a clear BM25 winner stays ahead),
    and unlike min-max it is not set by the one best or worst outlier of a list. An item
    missing from a list contributes 0 for it, like that list's weakest candidate.

    ``min_spreads`` gives each list a floor for its standard deviation: scores on an
    absolute scale (cosine similarity) that are all about equal mean nothing is clearly
    related, and dividing by their tiny spread would make them look as decisive as a
    clear winner in the other list.

    ``rank_weight`` adds ``rank_weight * k / (k + rank)`` per list (RRF, scaled so a first
    place adds about ``rank_weight``): an item both lists rank fairly high gets a lift
    even when neither of its scores stands out.
    """
    floors = list(min_spreads) if min_spreads is not None else [0.0] * len(rankings)
    scores: dict[int, float] = {}
    for ranking, weight, floor in zip(rankings, weights, floors, strict=True):
        if not ranking or weight == 0:
            continue
        values = [s for _, s in ranking]
        mean = sum(values) / len(values)
        spread = max(math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)), floor)
        if spread == 0:
            for item, _score in ranking:
                scores[item] = scores.get(item, 0.0) + weight
            continue
        low = min(values)
        for item, score in ranking:
            scores[item] = scores.get(item, 0.0) + weight * (score - low) / spread
    if rank_weight > 0:
        for item, score in reciprocal_rank_fusion(rankings, weights, k=rank_k):
            scores[item] = scores.get(item, 0.0) + rank_weight * rank_k * score
    return sorted(scores.items(), key=lambda pair: -pair[1])
