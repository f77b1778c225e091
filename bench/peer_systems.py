"""The peer systems ``bench/peers.py`` runs beside fathom, each configured as its docs show.

Every builder takes the same :class:`Corpus` (ids, the text each peer indexes and the
packaged MiniLM's normalised embeddings of that text, computed once) and returns a
search function ``query -> corpus ids, best first``. The search function runs the
system's own query path, query embedding included, so timing it times what a user
of that system waits for. The peer libraries are imported inside the builders: they
live only in ``.venv-bench``, never in fathom's dependencies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DEPTH", "RRF_K", "SYSTEMS", "Corpus", "PeerSystem", "Search", "reciprocal_rank_fusion"]

# Candidates each system returns (Recall@100 needs 100) and the RRF constant of the references.
DEPTH = 100
RRF_K = 60
# bm25s parameters of the lexical reference.
BM25_K1, BM25_B = 1.5, 0.75

Search = Callable[[str], list[str]]


@dataclass(frozen=True, slots=True)
class Corpus:
    """The collection every peer indexes: ``texts[i]`` is ``title + " " + text`` of ``ids[i]``."""

    ids: list[str]
    texts: list[str]
    embeddings: np.ndarray  # (len(ids), dim) float32, L2-normalised
    model_path: str


@dataclass(frozen=True, slots=True)
class PeerSystem:
    """A peer: its table label, the distributions whose versions the results record, its builder."""

    label: str
    packages: tuple[str, ...]
    build: Callable[[Corpus], Search]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], k: int = RRF_K, depth: int = DEPTH
) -> list[str]:
    """Fuse ranked id lists by ``sum(1 / (k + rank))`` (ranks from 1), best first, ties by first seen."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda doc_id: -scores[doc_id])[:depth]


def _sentence_transformer(model_path: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(model_path, device="cpu")


def _bm25s_search(corpus: Corpus) -> Search:
    import bm25s

    try:
        import Stemmer

        stemmer: Any = Stemmer.Stemmer("english")
    except ImportError:  # PyStemmer is optional for bm25s; the results record whether it was there
        stemmer = None
    retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
    retriever.index(
        bm25s.tokenize(corpus.texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    ids = np.asarray(corpus.ids, dtype=object)

    def search(query: str) -> list[str]:
        tokens = bm25s.tokenize(
            [query], stopwords="en", stemmer=stemmer, show_progress=False, return_ids=False
        )
        if not tokens[0]:
            return []
        documents, _ = retriever.retrieve(tokens, k=DEPTH, show_progress=False, n_threads=1)
        return [str(doc_id) for doc_id in ids[documents[0]]]

    return search


def _dense_search(corpus: Corpus) -> Search:
    model = _sentence_transformer(corpus.model_path)
    matrix = np.ascontiguousarray(corpus.embeddings, dtype=np.float32)

    def search(query: str) -> list[str]:
        vector = model.encode(
            query, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        scores = matrix @ np.asarray(vector, dtype=np.float32)
        top = np.argpartition(-scores, DEPTH)[:DEPTH]
        return [corpus.ids[i] for i in top[np.argsort(-scores[top])]]

    return search


def build_bm25s(corpus: Corpus) -> Search:
    """bm25s alone (k1=1.5, b=0.75, English stop words, Snowball English stemmer)."""
    return _bm25s_search(corpus)


def build_dense(corpus: Corpus) -> Search:
    """Exact dense search: the query's MiniLM embedding dotted with every corpus embedding."""
    return _dense_search(corpus)


def build_bm25s_dense(corpus: Corpus) -> Search:
    """bm25s and exact dense, top 100 of each fused by RRF (k=60)."""
    lexical, dense = _bm25s_search(corpus), _dense_search(corpus)

    def search(query: str) -> list[str]:
        return reciprocal_rank_fusion([lexical(query), dense(query)])

    return search


def build_llamaindex(corpus: Corpus) -> Search:
    """``VectorStoreIndex`` + ``BM25Retriever`` fused by ``QueryFusionRetriever`` (reciprocal rerank)."""
    from llama_index.core import VectorStoreIndex
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.retrievers.bm25 import BM25Retriever

    embed_model = HuggingFaceEmbedding(model_name=corpus.model_path, device="cpu", normalize=True)
    nodes = [
        TextNode(id_=doc_id, text=text, embedding=vector.tolist())
        for doc_id, text, vector in zip(corpus.ids, corpus.texts, corpus.embeddings, strict=True)
    ]
    index = VectorStoreIndex(nodes, embed_model=embed_model)
    retriever = QueryFusionRetriever(
        [
            index.as_retriever(similarity_top_k=DEPTH),
            BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=DEPTH, language="en"),
        ],
        # With num_queries=1 no query is generated, so the LLM is never called; passing one
        # only keeps the constructor from resolving the default (OpenAI) LLM.
        llm=MockLLM(),
        mode="reciprocal_rerank",
        num_queries=1,
        similarity_top_k=DEPTH,
    )

    def search(query: str) -> list[str]:
        return [hit.node.node_id for hit in retriever.retrieve(query)]

    return search


def build_haystack(corpus: Corpus) -> Search:
    """In-memory BM25 and embedding retrievers joined by ``DocumentJoiner`` with reciprocal rank fusion."""
    from haystack import Document, Pipeline
    from haystack.components.joiners import DocumentJoiner
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.embedders.sentence_transformers import (
        SentenceTransformersTextEmbedder,
    )

    store = InMemoryDocumentStore()
    store.write_documents(
        [
            Document(id=doc_id, content=text, embedding=vector.tolist())
            for doc_id, text, vector in zip(corpus.ids, corpus.texts, corpus.embeddings, strict=True)
        ]
    )
    pipeline = Pipeline()
    pipeline.add_component(
        "text_embedder",
        SentenceTransformersTextEmbedder(
            model=corpus.model_path,
            device=ComponentDevice.from_str("cpu"),
            normalize_embeddings=True,
            progress_bar=False,
            local_files_only=True,
        ),
    )
    pipeline.add_component("embedding_retriever", InMemoryEmbeddingRetriever(store, top_k=DEPTH))
    pipeline.add_component("bm25_retriever", InMemoryBM25Retriever(store, top_k=DEPTH))
    pipeline.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion", top_k=DEPTH))
    pipeline.connect("text_embedder.embedding", "embedding_retriever.query_embedding")
    pipeline.connect("embedding_retriever", "joiner")
    pipeline.connect("bm25_retriever", "joiner")
    pipeline.warm_up()

    def search(query: str) -> list[str]:
        result = pipeline.run({"text_embedder": {"text": query}, "bm25_retriever": {"query": query}})
        return [document.id for document in result["joiner"]["documents"]]

    return search


SYSTEMS: dict[str, PeerSystem] = {
    "llamaindex": PeerSystem(
        "LlamaIndex hybrid (RRF)",
        ("llama-index-core", "llama-index-retrievers-bm25", "llama-index-embeddings-huggingface"),
        build_llamaindex,
    ),
    "haystack": PeerSystem(
        "Haystack hybrid (RRF)", ("haystack-ai", "sentence-transformers-haystack"), build_haystack
    ),
    "bm25s": PeerSystem("bm25s alone", ("bm25s", "PyStemmer"), build_bm25s),
    "dense": PeerSystem("exact dense alone", ("sentence-transformers",), build_dense),
    "bm25s-dense": PeerSystem(
        "bm25s + exact dense, RRF k=60", ("bm25s", "PyStemmer", "sentence-transformers"), build_bm25s_dense
    ),
}
