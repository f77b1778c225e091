"""fathom.integrations.langchain.FathomRetriever with the real langchain-core, embedded and remote."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from fathom.errors import ConfigError
from fathom.integrations.langchain import FathomRetriever
from tests.integrations.conftest import World

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _check_phone_documents(documents: list[Document], source: str) -> None:
    assert documents and all(isinstance(d, Document) for d in documents)
    top = documents[0]
    assert "9876543244" in top.page_content
    assert top.metadata["source"].endswith(source) and top.metadata["page"] == 2
    assert top.metadata["doc_id"] and top.id == f"{top.metadata['doc_id']}:{top.metadata['chunk_id']}"
    assert isinstance(top.metadata["heading_path"], list)
    scores = [d.metadata["score"] for d in documents]
    assert scores == sorted(scores, reverse=True)


def test_embedded_retriever_returns_documents_with_fathoms_metadata(world: World):
    retriever = FathomRetriever(fathom=world.embedded, k=3)
    assert isinstance(retriever, BaseRetriever)
    documents = retriever.invoke("What is the CloudNova emergency phone number?")
    assert len(documents) <= 3
    _check_phone_documents(documents, "cloudnova.pdf")
    handbook = retriever.invoke("NeuroStack support email")[0]
    assert handbook.metadata["source"] == "neurostack.md" and handbook.metadata["page"] is None
    assert handbook.metadata["heading_path"] == ["NeuroStack AI handbook", "Contact", "Support"]


def test_remote_retriever_reads_what_the_key_may_read(world: World):
    retriever = FathomRetriever(url=world.server.url, api_key=world.acme_key, k=3)
    _check_phone_documents(retriever.invoke("CloudNova emergency phone"), "cloudnova.pdf")
    other = FathomRetriever(url=world.server.url, api_key=world.other_key)
    assert other.invoke("CloudNova emergency phone") == []


async def _ainvoke(retriever: FathomRetriever, query: str) -> list[Document]:
    return await retriever.ainvoke(query)


def test_async_and_batch_calls_work(world: World):
    import asyncio

    retriever = FathomRetriever(fathom=world.embedded, k=2)
    documents = asyncio.run(_ainvoke(retriever, "CloudNova emergency phone"))
    assert "9876543244" in documents[0].page_content
    both = retriever.batch(["CloudNova emergency phone", "NeuroStack support email"])
    assert [b[0].metadata["title"] for b in both] != [] and "ops@neurostack.ai" in both[1][0].page_content


def test_a_retriever_needs_exactly_one_fathom(world: World):
    with pytest.raises(ConfigError):
        FathomRetriever()
    with pytest.raises(ConfigError):
        FathomRetriever(fathom=world.embedded, url=world.server.url)
