"""The chunk records the store takes in and gives out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ChunkDraft", "StoredChunk"]


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    """A chunk ready to be stored: text, offsets, structure and its embedding."""

    ordinal: int
    start: int
    end: int
    text: str
    heading_path: tuple[str, ...]
    token_count: int
    content_hash: str
    embedding: np.ndarray
    minhash: np.ndarray
    page: int | None = None


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as search results need it."""

    chunk_id: int
    doc_id: str
    source: str
    title: str
    text: str
    start: int
    end: int
    heading_path: tuple[str, ...]
    ordinal: int
    minhash: np.ndarray | None = None
    page: int | None = None
