"""Answering a question for a principal: the search pipeline's hits, then an extractive or LLM
answer (verified, cached when it came from an LLM), streamed.

Every front asks through :class:`AnswerPipeline` (via :meth:`fathom.Fathom.ask_stream`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Literal

from fathom.answer.agent import AgentAnswerer, AgentLimits
from fathom.answer.cache import AnswerCache, CacheScope, DocumentVersion
from fathom.answer.extractive import ExtractiveAnswerer
from fathom.answer.generate import LLMAnswerer
from fathom.answer.prompts import PROMPT_VERSION
from fathom.answer.usage import TokenLedger
from fathom.answer.verify import Verifier
from fathom.config import Settings
from fathom.domain import Answer, AnswerDelta, Hit, Principal, QueryTransformTrace
from fathom.embed.base import Embedder
from fathom.errors import FathomError, InvalidQuery
from fathom.index.backend import SearchBackend
from fathom.index.lexical import analyze
from fathom.llm.base import EXTRACTIVE, create_provider
from fathom.retrieve.documents import DocumentReader
from fathom.retrieve.pipeline import SearchPipeline
from fathom.retrieve.transform import transform_note
from fathom.store.database import Store
from fathom.telemetry import Attribute, Stage, Telemetry

__all__ = ["AnswerPipeline", "AskMode", "final_answer"]

# How a question is answered: one retrieval and one answer, or the bounded agent loop.
AskMode = Literal["single", "agent"]

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
        telemetry: where each stage's duration and span go.
        reader: reads passages in context for agent mode (without one, a passage is read as is).
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        backend: SearchBackend,
        search: SearchPipeline,
        embedder: Callable[[], Embedder],
        ledger: TokenLedger,
        telemetry: Telemetry,
        reader: DocumentReader | None = None,
    ) -> None:
        self._reader = reader
        self._settings = settings
        self._store = store
        self._backend = backend
        self._search = search
        self._embedder = embedder
        self._ledger = ledger
        self._telemetry = telemetry
        self._extractive: ExtractiveAnswerer | None = None
        self._llm: LLMAnswerer | None = None
        self._cache = AnswerCache(settings.answer_cache_size, settings.answer_cache_similarity, self._version)

    def forget_document(self, tenant: str, doc_id: str) -> None:
        """Drop cached answers citing a deleted document (see :meth:`AnswerCache.forget`)."""
        self._cache.forget(tenant, doc_id)

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
            self._llm = LLMAnswerer(providers, verifier, settings, self._ledger, self._telemetry)
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
        mode: AskMode = "single",
        agent_limits: AgentLimits | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
        """Answer text pieces as produced, then one final, verified ``Answer`` (see ``Fathom.ask_stream``).

        ``mode="agent"`` runs the bounded agent loop (:mod:`fathom.answer.agent`) when an LLM
        is configured, and falls back to this single-shot answer when it cannot finish.
        """
        if mode == "agent":
            stream = self._agent_stream(question, principal, k, filters, agent_limits or AgentLimits())
        elif mode != "single":
            raise InvalidQuery("mode must be 'single' or 'agent'", code="query.invalid_mode")
        else:
            stream = self._single_stream(question, principal, k=k, filters=filters)
        return self._telemetry.stream("ask", stream, on_item=_describe, mode=mode)

    def _agent_stream(
        self,
        question: str,
        principal: Principal,
        k: int | None,
        filters: Mapping[str, str] | None,
        limits: AgentLimits,
    ) -> Iterator[AnswerDelta | Answer]:
        checked = self._search.prepare(question, principal, filters)  # refusals surface at once

        def single_shot() -> Iterator[AnswerDelta | Answer]:
            return self._single_stream(checked.text, principal, k=k, filters=filters)

        llm = self.llm()
        if llm is None:
            return _noted(
                single_shot(), "agent mode needs an LLM (llm is 'extractive'); single-shot answer shown"
            )

        def search(query: str, count: int) -> list[Hit]:
            return self._search.search(query, principal, k=count, filters=filters, transform=False).hits

        def read(hit: Hit) -> Hit:
            if self._reader is None:
                return hit
            passage = self._reader.passage(principal, hit.doc_id, hit.start, hit.end, neighbours=1)
            return replace(hit, start=passage.start, end=passage.end, text=passage.text)

        agent = AgentAnswerer(self._settings, llm, search, read)
        return agent.answer(checked.text, tenant=principal.tenant, limits=limits, single_shot=single_shot)

    def _single_stream(
        self,
        question: str,
        principal: Principal,
        *,
        k: int | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[AnswerDelta | Answer]:
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
            self._telemetry.count("cache", cache="answer", result="miss" if cached is None else "hit")
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

        def read_on(hit: Hit) -> Hit | None:
            """The text after ``hit`` in its document, up to the end of the next chunk."""
            if self._reader is None:
                return None
            try:
                passage = self._reader.passage(principal, hit.doc_id, hit.start, hit.end, neighbours=1)
            except FathomError:
                return None
            if passage.end <= hit.end:
                return None
            # Cited under the chunk it continues, like the agent's wider reads; no page claimed.
            return replace(
                hit, start=hit.end, end=passage.end, text=passage.text[hit.end - passage.start :], page=None
            )

        def extract() -> Answer:
            with self._telemetry.stage("extractive"):
                return _with_pages(
                    extractive.answer(question, trace.query_vector, hits, principal.tenant, read_on=read_on),
                    hits,
                )

        if llm is None:
            # The extractive answer exists all at once; stream it word by word all the same so
            # every front handles one shape of stream.
            with self._telemetry.stage("answer", answerer="extractive"):
                answer = extract()
            for piece in _DELTA_PIECES.findall(answer.answer):
                yield AnswerDelta(piece)
            yield answer
            return
        if not looked_up:
            cached = self._cache.get(scope, question, trace.query_vector, reader=principal)
            self._telemetry.count("cache", cache="answer", result="miss" if cached is None else "hit")
            if cached is not None:
                yield cached
                return
        generated = llm.stream(question, hits, tenant=principal.tenant, extractive=extract)
        for item in self._telemetry.stream("answer", generated, answerer="llm"):
            if isinstance(item, Answer):
                item = _with_transform(item, transformed)
                if not item.abstained and item.model != EXTRACTIVE:
                    self._cache.put(scope, question, trace.query_vector, item)
            yield item


def final_answer(stream: Iterator[AnswerDelta | Answer]) -> Answer:
    """The final ``Answer`` of an answer stream (the pieces before it are dropped)."""
    final = [item for item in stream if isinstance(item, Answer)]
    if not final:  # pragma: no cover - answer streams always end with an Answer
        raise RuntimeError("the answer stream ended without an answer")
    return final[-1]


def _describe(stage: Stage, item: AnswerDelta | Answer) -> None:
    """What the ask span says about the final answer: never its text."""
    if isinstance(item, Answer):
        usage = item.usage
        described: dict[str, Attribute | None] = {
            "fathom.answer.model": item.model,
            "fathom.answer.abstained": item.abstained,
            "fathom.answer.cached": item.cached,
            "fathom.answer.citations": len(item.citations),
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.completion_tokens,
            "fathom.llm.cost_usd": usage.cost,
        }
        stage.set(**described)


def _noted(stream: Iterator[AnswerDelta | Answer], note: str) -> Iterator[AnswerDelta | Answer]:
    for item in stream:
        yield replace(item, notes=(*item.notes, note)) if isinstance(item, Answer) else item


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
