"""Batches of queries through the int8 query model that give each query its lone vector, bit for bit.

The int8 query model quantises each linear layer's input with one scale per call, and
attention over a padded batch also sums over padding positions; both make a query's vector
depend on the queries batched with it (cosine about 0.95 to its lone vector). In a model
prepared by :func:`per_query_model`, a padded batch still goes through the embeddings, layer
norms, activations and pooling together (on a CPU most of a short query's cost is there: dozens
of small kernels and their Python calls), while each linear layer and each attention runs on
each query's own tokens, exactly as for the query alone.

Imported lazily (it imports torch and transformers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch

__all__ = ["per_query_model", "query_lengths"]

# Token counts of the queries of the batch now going through the model on this thread.
_LENGTHS: ContextVar[tuple[int, ...] | None] = ContextVar("fathom_query_lengths", default=None)
_ATTENTION = "fathom_per_query_sdpa"


@contextmanager
def query_lengths(lengths: tuple[int, ...]) -> Iterator[None]:
    """Within this block, a batch of ``len(lengths)`` queries runs query by query where it must."""
    token = _LENGTHS.set(lengths if len(lengths) > 1 else None)
    try:
        yield
    finally:
        _LENGTHS.reset(token)


def _lengths_of(batch: int) -> tuple[int, ...] | None:
    lengths = _LENGTHS.get()
    return lengths if lengths is not None and len(lengths) == batch else None


class _PerQueryLinear(torch.nn.Module):
    """A linear layer that, inside :func:`query_lengths`, runs on each query's tokens alone."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lengths = _lengths_of(x.shape[0]) if x.dim() == 3 else None
        if lengths is None:
            out: torch.Tensor = self.inner(x)
            return out
        parts = [self.inner(x[row, :length]) for row, length in enumerate(lengths)]
        out = x.new_zeros((x.shape[0], x.shape[1], parts[0].shape[-1]))
        for row, (length, part) in enumerate(zip(lengths, parts, strict=True)):
            out[row, :length] = part
        return out


def _attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
    """transformers' SDPA attention; inside :func:`query_lengths`, one query at a time, unpadded."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    lengths = _lengths_of(query.shape[0])
    if lengths is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    # Inputs are (batch, heads, tokens, head size); the output is (batch, tokens, heads, head size).
    out = query.new_zeros((query.shape[0], query.shape[2], query.shape[1], value.shape[-1]))
    for row, length in enumerate(lengths):
        part, _ = sdpa_attention_forward(
            module,
            query[row : row + 1, :, :length],
            key[row : row + 1, :, :length],
            value[row : row + 1, :, :length],
            None,  # a query alone has no padding, hence no mask
            **kwargs,
        )
        out[row, :length] = part[0]
    return out, None


def per_query_model(model: Any) -> bool:
    """Prepare ``model`` (a copy that embeds queries only) to run its linear layers and attention
    query by query inside :func:`query_lengths`.

    Returns False, leaving the model as it was, when it does not use transformers' SDPA attention
    (then batches must not go through it).
    """
    try:
        from transformers import AttentionInterface, AttentionMaskInterface
        from transformers.masking_utils import sdpa_mask
    except ImportError:
        return False
    configs = [
        module.config
        for module in model.modules()
        if getattr(getattr(module, "config", None), "_attn_implementation", None) == "sdpa"
    ]
    if not configs:
        return False
    AttentionInterface.register(_ATTENTION, _attention)
    AttentionMaskInterface.register(_ATTENTION, sdpa_mask)
    for config in configs:
        config._attn_implementation = _ATTENTION
    linear_types = (torch.nn.Linear, torch.ao.nn.quantized.dynamic.Linear)
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, linear_types):
                setattr(parent, name, _PerQueryLinear(child))
    return True
