"""fathom.integrations.llama_index.FathomRetriever with the real llama-index-core, embedded and remote."""

from __future__ import annotations

import subprocess
import sys

import pytest
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from fathom.errors import ConfigError
from fathom.integrations.llama_index import FathomRetriever
from tests.integrations.conftest import World

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _check_phone_nodes(nodes: list[NodeWithScore], source: str) -> None:
    assert nodes and all(isinstance(n, NodeWithScore) and isinstance(n.node, TextNode) for n in nodes)
    top = nodes[0]
    assert "9876543244" in top.node.get_content()
    metadata = top.node.metadata
    assert metadata["source"].endswith(source) and metadata["page"] == 2
    assert top.node.node_id == f"{metadata['doc_id']}:{metadata['chunk_id']}"
    assert top.score == metadata["score"]
    assert [n.score for n in nodes] == sorted((n.score or 0.0 for n in nodes), reverse=True)
    # What an LLM reads: the text with its title, source and page, not fathom's bookkeeping.
    shown = top.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "cloudnova" in shown.lower() and "chunk_id" not in shown and "doc_id" not in shown


def test_embedded_retriever_returns_nodes_with_scores(world: World):
    retriever = FathomRetriever(world.embedded, k=3)
    assert isinstance(retriever, BaseRetriever)
    nodes = retriever.retrieve("What is the CloudNova emergency phone number?")
    assert len(nodes) <= 3
    _check_phone_nodes(nodes, "cloudnova.pdf")
    handbook = retriever.retrieve("NeuroStack support email")[0].node.metadata
    assert handbook["heading_path"] == ["NeuroStack AI handbook", "Contact", "Support"]


def test_remote_retriever_reads_what_the_key_may_read(world: World):
    retriever = FathomRetriever(url=world.server.url, api_key=world.acme_key, k=3)
    _check_phone_nodes(retriever.retrieve("CloudNova emergency phone"), "cloudnova.pdf")
    assert FathomRetriever(url=world.server.url, api_key=world.other_key).retrieve("CloudNova") == []


def test_async_retrieve_works(world: World):
    import asyncio

    nodes = asyncio.run(FathomRetriever(world.embedded, k=2).aretrieve("CloudNova emergency phone"))
    assert "9876543244" in nodes[0].node.get_content()


def test_a_retriever_needs_exactly_one_fathom():
    with pytest.raises(ConfigError):
        FathomRetriever()


def test_import_fathom_imports_neither_framework():
    code = (
        "import sys, fathom, fathom.integrations; fathom.Fathom; "
        "assert not {'langchain_core', 'llama_index'} & {m.split('.')[0] for m in sys.modules}"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
