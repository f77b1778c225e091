"""`fathom eval retrieval`: two collections whose folders share a name are never ranked together.

The eval home was keyed by the folder's name, and a corpus that changed was ingested over the
previous one without removing it, so two folders called ``beir`` were scored on their union.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fathom import Fathom
from fathom.embed.hashing import HashingEmbedder
from fathom.errors import ConfigError
from fathom.eval.retrieval import evaluate_retrieval

FIRST = {
    "a1": "Mount Etna erupted seventeen times between 2020 and 2023.",
    "a2": "Green tea should steep for two minutes at eighty degrees.",
    "a3": "Honey bees communicate the direction of flowers with a dance.",
}
SECOND = {
    "b1": "A flat bicycle tyre is fixed with a patch and glue.",
    "b2": "A sourdough starter needs flour and water every day.",
    "b3": "Iron rusts when it meets water and oxygen; paint protects it.",
}
# Each query shares words with one document of each collection, so a mixed home ranks both.
QUERIES = {"q1": "how often did Etna erupt, and how is a bicycle tyre fixed", "q2": "tea steep starter water"}


def write_beir(root: Path, corpus: dict[str, str], relevant: str) -> Path:
    (root / "qrels").mkdir(parents=True)
    with (root / "corpus.jsonl").open("w") as handle:
        for doc_id, text in corpus.items():
            handle.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    with (root / "queries.jsonl").open("w") as handle:
        for query_id, text in QUERIES.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    qrels = "".join(f"{query_id}\t{relevant}\t1\n" for query_id in QUERIES)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return root


def ranked(report_path: str) -> set[str]:
    rows = [json.loads(line) for line in Path(report_path).read_text().splitlines()]
    return {doc_id for row in rows for doc_id in row["top10"]}


@pytest.fixture
def collections(tmp_path: Path) -> tuple[Path, Path]:
    return (
        write_beir(tmp_path / "one" / "beir", FIRST, "a1"),
        write_beir(tmp_path / "two" / "beir", SECOND, "b1"),
    )


def test_two_folders_with_the_same_name_get_their_own_default_home(
    collections: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first, second = collections
    embedder = HashingEmbedder(64)
    one = evaluate_retrieval(first, embedder=embedder)
    two = evaluate_retrieval(second, embedder=embedder)
    assert ranked(one.per_query_path) == set(FIRST)
    assert ranked(two.per_query_path) == set(SECOND)  # main: a1..a3 ranked with b1..b3
    assert one.home != two.home
    again = evaluate_retrieval(first, embedder=embedder)
    assert again.home == one.home and ranked(again.per_query_path) == set(FIRST)


def test_a_changed_corpus_in_the_same_home_replaces_the_previous_one(
    collections: tuple[Path, Path], tmp_path: Path
):
    first, second = collections
    home = tmp_path / "eval-home"
    embedder = HashingEmbedder(64)
    evaluate_retrieval(first, home=home, embedder=embedder)
    report = evaluate_retrieval(second, home=home, embedder=embedder)
    assert ranked(report.per_query_path) == set(SECOND)  # main: the first corpus was still there
    with Fathom(home=home, embedder=embedder) as fathom:
        assert sorted(doc.source for doc in fathom.documents()) == [f"beir/{d}" for d in sorted(SECOND)]


def test_a_home_holding_other_documents_is_refused_not_emptied(
    collections: tuple[Path, Path], tmp_path: Path
):
    home = tmp_path / "my-notes"
    embedder = HashingEmbedder(64)
    with Fathom(home=home, embedder=embedder) as fathom:
        fathom.ingest_text("Notes on the garden: water the roses on Sundays.", source="notes.md")
    with pytest.raises(ConfigError, match="not an evaluation corpus"):
        evaluate_retrieval(collections[0], home=home, embedder=embedder)
    with Fathom(home=home, embedder=embedder) as fathom:
        assert [doc.source for doc in fathom.documents()] == ["notes.md"]
