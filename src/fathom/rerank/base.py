"""The reranker protocol and the registry that builds one from a config string."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from fathom.errors import ConfigError

__all__ = ["Reranker", "create_reranker"]


@runtime_checkable
class Reranker(Protocol):
    """Scores how well each passage answers a query; higher is better."""

    @property
    def name(self) -> str:
        """The config string that identifies this model."""
        ...

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        """One relevance score per passage, in the order given."""
        ...


def create_reranker(spec: str, *, device: str = "cpu", batch_size: int = 32) -> Reranker:
    """Build the reranker a config string names.

    ``cross-encoder:NAME_OR_PATH`` loads a sentence-transformers ``CrossEncoder`` by model
    name (from the local Hugging Face cache, or downloaded where the network allows) or
    from a local folder.

    Raises:
        ConfigError: the string names no known provider, or the model cannot be loaded.
    """
    provider, _, argument = spec.partition(":")
    if not argument:
        raise ConfigError(f"reranker {spec!r} must look like 'cross-encoder:MODEL_NAME_OR_PATH'")
    if provider == "cross-encoder":
        from fathom.rerank.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(argument, device=device, batch_size=batch_size)
    raise ConfigError(f"unknown reranker provider {provider!r}; known: cross-encoder")
