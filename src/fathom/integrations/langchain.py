"""fathom as a LangChain retriever (extra ``langchain``: ``pip install 'fathom-search[langchain]'``).

>>> from fathom import Fathom
>>> from fathom.integrations.langchain import FathomRetriever
>>> retriever = FathomRetriever(fathom=Fathom(), k=4)                     # doctest: +SKIP
>>> retriever = FathomRetriever(url="http://127.0.0.1:8000", api_key="fth_...")  # doctest: +SKIP
>>> retriever.invoke("How often are keys rotated?")[0].metadata["source"]  # doctest: +SKIP

Each ``Document`` holds a chunk's text; its metadata: ``doc_id``, ``chunk_id``, ``source``,
``title``, ``page`` (None for unpaged formats), ``heading_path``, ``score``, ``start``, ``end``.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr

from fathom.domain import Principal
from fathom.integrations._hits import HitSource, hit_metadata

__all__ = ["FathomRetriever"]


class FathomRetriever(BaseRetriever):
    """Hybrid search of fathom as a LangChain ``BaseRetriever``.

    Give either ``fathom`` (an open :class:`fathom.Fathom`: embedded, in this process) or
    ``url`` and ``api_key`` (a ``fathom serve``: the key's tenant, user and groups filter what
    is found). ``principal`` reads as someone else in an embedded fathom (default: its tenant,
    everyone). ``filters`` are metadata filters as in ``fathom search --filter``.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    fathom: Any = Field(default=None, description="An open fathom.Fathom (embedded).")
    url: str | None = Field(default=None, description="A fathom server, e.g. http://127.0.0.1:8000.")
    api_key: str | None = Field(default=None, repr=False, description="An API key of that server.")
    k: int = Field(default=4, ge=1, le=100, description="How many chunks.")
    filters: dict[str, str] | None = None
    principal: Principal | None = None

    _source: HitSource = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        super().model_post_init(context)
        self._source = HitSource(self.fathom, url=self.url, api_key=self.api_key, principal=self.principal)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        hits = self._source.search(query, k=self.k, filters=self.filters)
        return [
            Document(page_content=hit.text, metadata=hit_metadata(hit), id=f"{hit.doc_id}:{hit.chunk_id}")
            for hit in hits
        ]
