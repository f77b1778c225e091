"""The peers benchmark's own logic: fusion, the query subset fathom is scored on, the generated table.

The benchmark itself runs only under ``make bench-peers`` (its libraries live in
``.venv-bench``); these tests cover the parts whose mistakes would silently skew
its figures, with no peer library needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.peer_report import MARKER, markdown_table, write_table
from bench.peer_systems import reciprocal_rank_fusion
from bench.peers import _subset_collection, selected_queries

from fathom.eval.beir import load_beir

START, END = f"<!-- {MARKER}:start -->", f"<!-- {MARKER}:end -->"


def test_rrf_matches_hand_computed_scores() -> None:
    # a: 1/61 + 1/63 = 0.03227; b: 1/62 + 1/61 = 0.03252; c: 1/63 = 0.01587; d: 1/62 = 0.01613
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["b", "d", "a"]], k=60)
    assert fused == ["b", "a", "d", "c"]
    assert reciprocal_rank_fusion([["a", "b", "c"], ["b", "d", "a"]], k=60, depth=2) == ["b", "a"]


def _collection(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(f'{{"_id": "d{i}", "title": "t{i}", "text": "text {i}"}}\n' for i in range(4))
    )
    (root / "queries.jsonl").write_text(
        "".join(f'{{"_id": "q{i}", "text": "query {i}"}}\n' for i in range(3))
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\nq1\td2\t2\nq2\td3\t1\n"
    )
    return root


def test_limited_run_scores_fathom_on_exactly_the_queries_the_peers_get(tmp_path: Path) -> None:
    dataset = load_beir(_collection(tmp_path / "full"), "test")
    chosen = selected_queries(dataset, 2)
    assert chosen == [("q0", "query 0"), ("q1", "query 1")]

    subset = load_beir(_subset_collection(dataset, chosen, tmp_path / "subset"), "test")

    assert list(subset.queries.items()) == chosen
    assert subset.qrels == {"q0": {"d0": 1}, "q1": {"d1": 1, "d2": 2}}
    assert (subset.root / "corpus.jsonl").read_bytes() == (dataset.root / "corpus.jsonl").read_bytes()


def _results(fathom_p50: float) -> dict[str, object]:
    row = {"recall@100": 0.9, "mrr@10": 0.6, "p95_ms": 20.0, "peak_rss_mb": 500.0}
    return {
        "dataset": "scifact",
        "split": "test",
        "queries": 300,
        "queries_in_split": 300,
        "model": "all-MiniLM-L6-v2",
        "corpus_embeddings": "precomputed",
        "latency": "wall time",
        "date": "2026-11-24T10:00:00+00:00",
        "command": "python bench/peers.py",
        "machine": {
            "cores": 2,
            "cpu": "x86",
            "ram_gib": 23.5,
            "gpu": None,
            "torch_threads": 2,
            "load_average_start": [1.0],
        },
        "systems": [
            {
                **row,
                "system": "bm25s",
                "label": "bm25s alone",
                "ndcg@10": 0.66,
                "p50_ms": 2.0,
                "versions": {"bm25s": "0.3.16"},
            },
            {
                **row,
                "system": "fathom",
                "label": "fathom hybrid",
                "ndcg@10": 0.75,
                "p50_ms": fathom_p50,
                "versions": {"fathom": "0.1.0"},
            },
        ],
    }


def test_table_lists_best_first_with_latency_relative_to_fathom() -> None:
    lines = markdown_table(_results(fathom_p50=8.0)).splitlines()
    assert lines[2].startswith("| fathom hybrid (fathom 0.1.0) | 0.750 |")
    assert lines[3].startswith("| bm25s alone (bm25s 0.3.16) | 0.660 |")
    assert "| 0.25x |" in lines[3] and "| 1x |" in lines[2]


@pytest.mark.parametrize("initial", ["", f"# Benchmarks\n\nintro\n\n{START}\nold table\n{END}\n\nafter\n"])
def test_table_is_written_between_the_markers_and_rewritten_in_place(tmp_path: Path, initial: str) -> None:
    doc = tmp_path / "benchmarks.md"
    if initial:
        doc.write_text(initial)
    write_table(_results(fathom_p50=8.0), doc)
    write_table(_results(fathom_p50=4.0), doc)
    text = doc.read_text()
    assert text.count(START) == 1 and text.count(END) == 1
    assert "old table" not in text
    assert "| 0.5x |" in text and "| 0.25x |" not in text  # the second run's figures replaced the first's
    if initial:
        assert text.startswith("# Benchmarks\n\nintro\n\n") and text.endswith("\n\nafter\n")
