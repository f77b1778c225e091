"""sentence-transformers ``CrossEncoder`` models as rerankers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fathom.embed.sentence_transformers import quiet_transformers, resolve_model_path, torch_device
from fathom.errors import ConfigError

__all__ = ["CrossEncoderReranker"]


class CrossEncoderReranker:
    """``cross-encoder:NAME``: reads query and passage together, so it ranks better than
    the bi-encoder, at the cost of one model pass per candidate."""

    def __init__(self, model_name: str, *, device: str = "cpu", batch_size: int = 32) -> None:
        quiet_transformers()
        from sentence_transformers import CrossEncoder

        self._model_name = model_name
        self._batch_size = batch_size
        try:
            self._model: Any = CrossEncoder(resolve_model_path(model_name), device=torch_device(device))
        except Exception as exc:  # the library raises many types for "cannot load"
            raise ConfigError(
                f"cannot load reranker model {model_name!r}: it is not installed locally "
                "and could not be downloaded; use a local path"
            ) from exc

    @property
    def name(self) -> str:
        return f"cross-encoder:{self._model_name}"

    def score(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        scores = self._model.predict(
            [(query, passage) for passage in passages],
            batch_size=self._batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return [float(s) for s in np.asarray(scores, dtype=np.float32).reshape(len(passages), -1)[:, 0]]
