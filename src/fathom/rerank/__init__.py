"""Rerankers: rescore the best fused candidates with a stronger (slower) model."""

from fathom.rerank.base import Reranker, create_reranker

__all__ = ["Reranker", "create_reranker"]
