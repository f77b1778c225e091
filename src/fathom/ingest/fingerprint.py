"""MinHash fingerprints: near-duplicate text found in constant space per text.

A text's fingerprint is the minimum of 64 hash functions over its word 3-shingles;
the share of equal positions between two fingerprints estimates the Jaccard
similarity of their shingle sets. Documents are fingerprinted at ingest (a
near-duplicate of a stored document is reported and linked, both are kept), and
retrieved chunks are fingerprinted to collapse repeated boilerplate in results.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from fathom.normalize import fold_for_index

__all__ = ["PERMUTATIONS", "fingerprint", "similarity"]

PERMUTATIONS = 64
_SHINGLE = 3
_WORD = re.compile(r"\w+")
_rng = np.random.default_rng(20240611)
_MULTIPLIERS = _rng.integers(1, 2**63 - 1, size=PERMUTATIONS, dtype=np.uint64) | np.uint64(1)
_ADDENDS = _rng.integers(0, 2**63 - 1, size=PERMUTATIONS, dtype=np.uint64)


def fingerprint(text: str, *, max_shingles: int = 20_000) -> np.ndarray:
    """The MinHash fingerprint of ``text`` (uint64[64]); all-max for a text with no words."""
    words = _WORD.findall(fold_for_index(text).lower())
    if len(words) < _SHINGLE:
        shingles = {" ".join(words)} if words else set()
    else:
        shingles = {" ".join(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1)}
    if not shingles:
        return np.full(PERMUTATIONS, np.iinfo(np.uint64).max, dtype=np.uint64)
    hashes = np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in shingles),
        dtype=np.uint64,
        count=len(shingles),
    )
    if len(hashes) > max_shingles:  # a deterministic sample: the smallest hashes
        hashes = np.partition(hashes, max_shingles)[:max_shingles]
    with np.errstate(over="ignore"):
        mixed = hashes[:, None] * _MULTIPLIERS[None, :] + _ADDENDS[None, :]
        mixed ^= mixed >> np.uint64(29)
    result: np.ndarray = mixed.min(axis=0)
    return result


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Estimated Jaccard similarity of the texts behind two fingerprints."""
    return float(np.mean(a == b))
