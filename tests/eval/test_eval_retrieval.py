"""`fathom eval retrieval` on a small BEIR collection written by the test, with the real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fathom.config import DEFAULT_EMBEDDER
from fathom.errors import ConfigError
from fathom.eval.beir import load_beir
from fathom.eval.retrieval import evaluate_retrieval
from tests.test_cli import fathom_cli

pytestmark = [pytest.mark.integration]

CORPUS = {
    "d1": ("Volcano eruptions", "Mount Etna erupted seventeen times between 2020 and 2023."),
    "d2": ("Green tea", "Green tea should steep for two minutes at eighty degrees."),
    "d3": ("Sourdough", "A sourdough starter needs flour and water every day."),
    "d4": ("Bicycle repair", "A flat bicycle tyre is fixed with a patch and glue."),
    "d5": ("Honey bees", "Honey bees communicate the direction of flowers with a waggle dance."),
    "d6": ("Rust prevention", "Iron rusts when it meets water and oxygen; paint protects it."),
}
QUERIES = {
    "q1": "How often did Etna erupt?",
    "q2": "how long to brew green tea",
    "q3": "how do bees tell each other where flowers are",
    "q4": "repairing a punctured bike tire",
    "t1": "feeding a sourdough starter",
}


def write_beir(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "qrels").mkdir()
    with (root / "corpus.jsonl").open("w") as handle:
        for doc_id, (title, text) in CORPUS.items():
            handle.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as handle:
        for query_id, text in QUERIES.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td5\t1\nq4\td4\t1\nq4\td6\t0\n"
    )
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nt1\td3\t1\n")
    return root


def test_loader_reads_the_split_and_refuses_a_broken_folder(tmp_path: Path):
    root = write_beir(tmp_path / "tiny")
    test = load_beir(root, "test")
    assert set(test.queries) == {"q1", "q2", "q3", "q4"}
    assert test.qrels["q4"] == {"d4": 1, "d6": 0}
    assert set(load_beir(root, "train").queries) == {"t1"}
    with pytest.raises(ConfigError, match="missing"):
        load_beir(root, "dev")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq9\td1\t1\n")
    with pytest.raises(ConfigError, match="not in queries.jsonl"):
        load_beir(root, "test")


def test_eval_scores_a_corpus_the_model_gets_right_and_reuses_its_home(tmp_path: Path, embedder):
    root = write_beir(tmp_path / "tiny")
    home = tmp_path / "eval-home"
    report = evaluate_retrieval(root, home=home, embedder=embedder)
    assert report.queries == 4
    assert report.ndcg_at_10 > 0.9 and report.mrr_at_10 > 0.9
    assert report.recall_at_100 == 1.0
    assert 0 < report.p50_ms <= report.p95_ms
    rows = [json.loads(line) for line in Path(report.per_query_path).read_text().splitlines()]
    assert {row["query_id"] for row in rows} == {"q1", "q2", "q3", "q4"}
    assert next(r for r in rows if r["query_id"] == "q1")["top10"][0] == "d1"

    database = home / "fathom.db"
    built = database.stat().st_mtime_ns
    again = evaluate_retrieval(root, home=home, embedder=embedder)
    assert database.stat().st_mtime_ns == built, "an unchanged corpus must not be ingested again"
    assert again.ndcg_at_10 == report.ndcg_at_10

    with (root / "corpus.jsonl").open("a") as handle:  # a changed corpus rebuilds the home
        handle.write(json.dumps({"_id": "d7", "title": "Kites", "text": "Kites fly in wind."}) + "\n")
    evaluate_retrieval(root, home=home, embedder=embedder)
    assert database.stat().st_mtime_ns != built


@pytest.mark.slow
def test_cli_prints_json_with_the_documented_keys(tmp_path: Path):
    root = write_beir(tmp_path / "tiny")
    result = fathom_cli(
        "eval",
        "retrieval",
        "--beir",
        str(root),
        "--eval-home",
        str(tmp_path / "eh"),
        "--json",
        home=tmp_path / "unused",
    )
    data = json.loads(result.stdout)
    assert {"ndcg@10", "recall@100", "mrr@10", "p50_ms", "p95_ms", "queries"} <= set(data)
    assert data["queries"] == 4
    assert data["settings"]["embedder"] == DEFAULT_EMBEDDER

    table = fathom_cli(
        "eval",
        "retrieval",
        "--beir",
        str(root),
        "--eval-home",
        str(tmp_path / "eh"),
        home=tmp_path / "unused",
    )
    assert "nDCG@10" in table.stdout and "per-query results" in table.stdout

    missing = fathom_cli("eval", "retrieval", "--beir", str(tmp_path), home=tmp_path / "unused", check=False)
    assert missing.returncode == 1 and "config.invalid" in missing.stderr


def test_an_eval_home_pointed_at_another_database_ingests_into_it(tmp_path: Path, pg_url: str):
    """The corpus lives in the database: a home built on SQLite, reused with a PostgreSQL
    database_url, must not trust its marker and score an empty database."""
    root = write_beir(tmp_path / "tiny")
    home = tmp_path / "eval-home"
    evaluate_retrieval(root, home=home, embedder="hash:64")
    report = evaluate_retrieval(root, home=home, embedder="hash:64", database_url=pg_url)
    assert report.recall_at_100 == 1.0
