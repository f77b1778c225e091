"""fathom as a LlamaIndex retriever (extra ``llama-index``: ``pip install 'fathom-search[llama-index]'``).

>>> from fathom import Fathom
>>> from fathom.integrations.llama_index import FathomRetriever
>>> retriever = FathomRetriever(Fathom(), k=4)                                 # doctest: +SKIP
>>> retriever = FathomRetriever(url="http://127.0.0.1:8000", api_key="fth_...")  # doctest: +SKIP
>>> retriever.retrieve("How often are keys rotated?")[0].node.metadata["source"]  # doctest: +SKIP

Each ``NodeWithScore`` holds a ``TextNode`` with a chunk's text and fathom's score; the node's
metadata: ``doc_id``, ``chunk_id``, ``source``, ``title``, ``page``, ``heading_path``, ``score``,
``start``, ``end`` (only title, source, page and heading path are shown to an LLM or embedded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from fathom.domain import Principal
from fathom.integrations._hits import HitSource, hit_metadata

if TYPE_CHECKING:
    from fathom.api import Fathom

__all__ = ["FathomRetriever"]

# Metadata for bookkeeping, kept out of the text an LLM reads or an embedder embeds.
_HIDDEN = ["doc_id", "chunk_id", "score", "start", "end"]


class FathomRetriever(BaseRetriever):
    """Hybrid search of fathom as a LlamaIndex ``BaseRetriever``.

    Args:
        fathom: an open :class:`fathom.Fathom` (embedded, in this process); or else
        url: a ``fathom serve`` (e.g. ``http://127.0.0.1:8000``) with
        api_key: an API key of that server (its tenant, user and groups filter what is found).
        k: how many chunks.
        filters: metadata filters, as in ``fathom search --filter``.
        principal: read as someone else in an embedded fathom (default: its tenant, everyone).
        **kwargs: passed to LlamaIndex's ``BaseRetriever`` (``callback_manager`` ...).
    """

    def __init__(
        self,
        fathom: Fathom | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        k: int = 4,
        filters: Mapping[str, str] | None = None,
        principal: Principal | None = None,
        **kwargs: Any,
    ) -> None:
        self._source = HitSource(fathom, url=url, api_key=api_key, principal=principal)
        self._k = k
        self._filters = dict(filters) if filters else None
        super().__init__(**kwargs)

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        hits = self._source.search(query_bundle.query_str, k=self._k, filters=self._filters)
        return [
            NodeWithScore(
                node=TextNode(
                    id_=f"{hit.doc_id}:{hit.chunk_id}",
                    text=hit.text,
                    metadata=hit_metadata(hit),
                    excluded_llm_metadata_keys=list(_HIDDEN),
                    excluded_embed_metadata_keys=list(_HIDDEN),
                ),
                score=hit.score,
            )
            for hit in hits
        ]
