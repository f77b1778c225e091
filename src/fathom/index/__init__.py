"""Derived search indexes: lexical (tantivy) and dense (usearch), fed by the change log."""

from fathom.index.base import DenseIndex, IndexFilter, LexicalIndex, ScoredId
from fathom.index.catchup import IndexSet
from fathom.index.dense import UsearchIndex
from fathom.index.lexical import TantivyIndex

__all__ = [
    "DenseIndex",
    "IndexFilter",
    "IndexSet",
    "LexicalIndex",
    "ScoredId",
    "TantivyIndex",
    "UsearchIndex",
]
