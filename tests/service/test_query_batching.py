"""`fathom serve` embeds the queries of concurrent searches through its batcher: every request gets
the hits it gets alone, and every query is embedded exactly once, in some forward pass."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from fathom import Fathom
from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration]

ENV = {
    "FATHOM_EMBEDDER": "hash:64",
    "FATHOM_RATE_LIMIT_PER_MINUTE": "0",
    "FATHOM_LOG_LEVEL": "WARNING",
    "FATHOM_QUERY_BATCH_MAX": "8",
}
TOPICS = ["volcano", "tea", "bees", "bicycle", "sourdough", "rust", "lantern", "harbour"]


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing from /metrics"
    return float(found.group(1))


def test_concurrent_searches_get_their_own_hits_and_each_query_is_embedded_once(tmp_path: Path):
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        for topic in TOPICS:
            text = f"# {topic}\n\nA note about the {topic} and nothing else."
            fathom.ingest_text(text, source=f"{topic}.md")
        key, _ = fathom.keys.create(tenant="default", user="alice", admin=True)
    headers = {"Authorization": f"Bearer {key}"}
    queries = [f"what about the {topic} number {n}" for n in range(4) for topic in TOPICS]
    server = ServerProcess(home, ENV).wait_ready()
    try:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:

            def search(query: str) -> list[str]:
                response = client.post("/v1/search", json={"query": query, "k": 1})
                assert response.status_code == 200, response.text
                return [hit["source"] for hit in response.json()["hits"]]

            with ThreadPoolExecutor(max_workers=8) as pool:
                together = list(pool.map(search, queries))
            for query, hits in zip(queries, together, strict=True):
                assert hits == [query.split()[3] + ".md"], query
            metrics = client.get("/metrics").text
    finally:
        server.stop()
    passes = metric(metrics, "fathom_query_embedding_batch_size_count")
    embedded = metric(metrics, "fathom_query_embedding_batch_size_sum")
    assert embedded == len(queries)  # each distinct query once, whichever pass it went in
    assert 1 <= passes <= len(queries)
