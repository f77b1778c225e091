"""int8 query embedding: close to float32, documents untouched, same answers on clear questions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fathom import Fathom
from fathom.config import DEFAULT_EMBEDDER
from fathom.embed import create_embedder
from fathom.errors import ConfigError

pytestmark = [pytest.mark.integration]


def test_int8_queries_stay_close_to_float32_and_documents_are_unchanged(embedder):
    fast = create_embedder(DEFAULT_EMBEDDER, query_precision="int8")
    queries = ["ALDH1 expression is associated with poorer prognosis", "how long to steep green tea"]
    for query in queries:
        cosine = float(fast.embed_query(query) @ embedder.embed_query(query))
        assert 0.85 < cosine < 0.9999, cosine  # close, and really a different (quantised) model
    docs = fast.embed_documents(queries)
    assert np.allclose(docs, embedder.embed_documents(queries), atol=1e-5)
    assert fast.name == embedder.name  # stored vectors stay compatible


def test_int8_queries_rank_the_right_document_first(tmp_path: Path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "etna.txt").write_text("Mount Etna erupted seventeen times between 2020 and 2023.\n")
    (docs / "tea.txt").write_text("Green tea should steep for two minutes at eighty degrees.\n")
    (docs / "bees.txt").write_text("Honey bees tell each other where flowers are with a dance.\n")
    with Fathom(home=tmp_path / "home", query_precision="int8") as fathom:
        assert fathom.ingest([docs]).ok
        assert fathom.search("volcano eruptions", k=1)[0].source.endswith("etna.txt")
        assert fathom.search("brewing time for tea", k=1)[0].source.endswith("tea.txt")


def test_unknown_query_precision_is_refused():
    with pytest.raises(ConfigError, match="query precision"):
        create_embedder(DEFAULT_EMBEDDER, query_precision="int4")


def test_queries_from_server_threads_match_the_main_thread_and_leave_documents_all_cores(embedder):
    import threading

    import torch

    cores = torch.get_num_threads()
    main_vector = embedder.embed_query("how long do lanterns burn on the pier")
    from_thread: list[np.ndarray] = []
    threads_used: list[int] = []

    def serve_one() -> None:
        # A trailing space tokenises the same but misses the query cache.
        from_thread.append(embedder.embed_query("how long do lanterns burn on the pier "))
        threads_used.append(torch.get_num_threads())

    worker = threading.Thread(target=serve_one)
    worker.start()
    worker.join()
    assert float(main_vector @ from_thread[0]) > 0.99  # same model, one thread instead of several
    assert threads_used == [1]  # concurrent requests each keep to one core
    embedder.embed_documents(["Lanterns on the pier burn until dawn."])
    assert torch.get_num_threads() == cores
