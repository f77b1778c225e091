"""Collapse near-duplicate passages in results, keeping where each copy came from.

Collections repeat themselves: the same boilerplate in twenty manuals, the same
paragraph in three versions of a policy. Results keep the best-ranked copy and
list the sources of the others in ``Hit.also_in``, so an answer does not cite the
same text five times and no provenance is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from fathom.domain import Hit
from fathom.ingest.fingerprint import fingerprint, similarity

__all__ = ["collapse_near_duplicates"]


def collapse_near_duplicates(hits: Sequence[Hit], threshold: float) -> list[Hit]:
    """``hits`` in order without near-duplicates of better-ranked hits (``threshold`` 0: unchanged)."""
    if threshold <= 0 or len(hits) < 2:
        return list(hits)
    kept: list[tuple[Hit, np.ndarray, list[str]]] = []
    for hit in hits:
        mark = fingerprint(hit.text)
        for _kept_hit, kept_mark, also in kept:
            if similarity(mark, kept_mark) >= threshold:
                also.append(hit.source)
                break
        else:
            kept.append((hit, mark, []))
    return [replace(hit, also_in=tuple(dict.fromkeys(also))) if also else hit for hit, _mark, also in kept]
