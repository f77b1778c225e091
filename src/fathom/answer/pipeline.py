"""Answering a question for a principal: the search pipeline's hits, then an extractive or LLM
answer (verified, cached when it came from an LLM), streamed.

Every front asks through :class:`AnswerPipeline` (via :meth:`fathom.Fathom.ask_stream`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace

from fathom.answer.cache import AnswerCache, CacheScope, DocumentVersion
from fathom.answer.extractive import ExtractiveAnswerer
from fathom.answer.generate import LLMAnswerer
from fathom.answer.prompts import PROMPT_VERSION
from fathom.answer.usage import TokenLedger
from fathom.answer.verify import Verifier
from fathom.config import Settings
from fathom.domain import Answer, AnswerDelta, Hit, Principal, QueryTransformTrace
from fathom.embed.base import Embedder
from fathom.index.backend import SearchBackend
from fathom.index.lexical import analyze
from fathom.llm.base import EXTRACTIVE, create_provider
from fathom.retrieve.pipeline import SearchPipeline, StageObserver
from fathom.retrieve.transform import transform_note
from fathom.store.database import Store

__all__ = ["AnswerPipeline"]

_DELTA_PIECES = re.compile(r"\S+\s*")


class AnswerPipeline:
    """Answers from the documents a principal may read (see the module docstring).

    Args:
        settings: the settings (llm, answer sizes, cache, verification ...).
        store: the store of record (document versions for the answer cache).
        backend: the search backend (per-tenant term statistics for extractive answers).
        search: the search pipeline answers start from.
        embedder: returns the embedder (loaded on first use).
        ledger: per-tenant token budgets of LLM answers.
        observe: receives each stage's duration.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        backend: SearchBackend,
        search: SearchPipeline,
        embedder: Callable[[], Embedder],
        ledger: TokenLedger,
        observe: StageObserver,
    ) -> None:
        self._settings = settings
        self._store = store
        self._backend = backend
        self._search = search
        self._embedder = embedder
        self._ledger = ledger
        self._observe_stage = observe
        self._extractive: ExtractiveAnswerer | None = None
        self._llm: LLMAnswerer | None = None
        self._cache = AnswerCache(settings.answer_cache_size, settings.answer_cache_similarity, self._version)

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None

    def llm(self) -> LLMAnswerer | None:
        """The LLM answerer (providers built on first use); None with ``llm = "extractive"``."""
        settings = self._settings
        if settings.llm == EXTRACTIVE:
            return None
        if self._llm is None:
            specs = [spec for spec in (settings.llm, *settings.llm_fallbacks) if spec != EXTRACTIVE]
            verifier = Verifier(
                self._embedder(),
                analyze,
                min_support=settings.verify_min_support,
                policy=settings.verify_policy,
            )
            providers = [create_provider(spec, settings) for spec in dict.fromkeys(specs)]
            self._llm = LLMAnswerer(providers, verifier, settings, self._ledger)
        return self._llm

    def extractive(self) -> ExtractiveAnswerer:
        if self._extractive is None:
            self._extractive = ExtractiveAnswerer(
                self._embedder(),
                analyze,
                self._backend.document_frequencies,
                max_sentences=self._settings.answer_sentences,
                min_support=self._settings.min_support,
            )
        return self._extractive

    def _version(self, tenant: str, doc_id: str) -> DocumentVersion | None:
        """What a cached answer citing this document depends on: its content and its ACL."""
        doc = self._store.get_document(tenant, doc_id)
        if doc is None:
            return None
        return DocumentVersion(
            doc.content_hash, tuple(sorted(doc.acl_users or ())), tuple(sorted(doc.acl_groups or ()))
        )

    def ask_stream(
        self,
        question: str,
        principal: Principal,
        *,
        k: int | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """Answer text pieces as produced, then one final, verified ``Answer`` (see ``Fathom.ask_stream``)."""
        search = self._search
        checked = search.prepare(question, principal, filters)
        question, where = checked.text, checked.where
        limit = k or self._settings.answer_chunks
        llm = self.llm()
        scope: CacheScope = (
            principal.tenant,
            "admin" if where.acl_tokens is None else ",".join(sorted(where.acl_tokens)),
            ",".join(where.metadata),
            str(limit),
            self._settings.llm,
            PROMPT_VERSION,
        )
        looked_up = llm is not None and self._settings.query_transform != "none"
        if looked_up:
            # Look in the answer cache before the transform spends tokens on a known question.
            cached = self._cache.get(
                scope, question, self._embedder().embed_query(question), reader=principal
            )
            if cached is not None:
                yield cached
                return
        transformed = search.transform(question, principal.tenant) if llm is not None else None
        trace = search.retrieve(question, transformed, where, limit * 2)
        if transformed is not None and transformed.passage is not None:
            # The trace holds the HyDE passage's vector; answers are compared with the question's.
            trace = replace(trace, query_vector=self._embedder().embed_query(question))
        hits = search.top_hits(trace, limit, where)
        extractive = self.extractive()

        def extract() -> Answer:
            started = time.perf_counter()
            answer = _with_pages(
                extractive.answer(question, trace.query_vector, hits, principal.tenant), hits
            )
            self._observe_stage("answer", time.perf_counter() - started)
            return answer

        if llm is None:
            # The extractive answer exists all at once; stream it word by word all the same so
            # every front handles one shape of stream.
            answer = extract()
            for piece in _DELTA_PIECES.findall(answer.answer):
                yield AnswerDelta(piece)
            yield answer
            return
        cached = None if looked_up else self._cache.get(scope, question, trace.query_vector, reader=principal)
        if cached is not None:
            yield cached
            return
        for item in llm.stream(question, hits, tenant=principal.tenant, extractive=extract):
            if isinstance(item, Answer):
                item = _with_transform(item, transformed)
                if not item.abstained and item.model != EXTRACTIVE:
                    self._cache.put(scope, question, trace.query_vector, item)
            yield item


def _with_pages(answer: Answer, hits: Sequence[Hit]) -> Answer:
    """The answer with each citation's page number, taken from the hit it quotes (a chunk never
    crosses a page break, so its page is the quote's)."""
    pages = {h.chunk_id: h.page for h in hits if h.page is not None}
    if not pages:
        return answer
    citations = tuple(
        replace(c, page=pages[c.chunk_id]) if c.chunk_id in pages else c for c in answer.citations
    )
    return replace(answer, citations=citations)


def _with_transform(answer: Answer, transform: QueryTransformTrace | None) -> Answer:
    """The answer with the query transform's trace, its tokens in the usage, and a note if it fell back."""
    if transform is None:
        return answer
    note = transform_note(transform)
    return replace(
        answer,
        query_transform=transform,
        usage=answer.usage.plus(transform.usage),
        notes=(*answer.notes, note) if note else answer.notes,
    )
