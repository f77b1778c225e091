"""Load a retrieval test collection in the BEIR layout.

A BEIR folder holds ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``; some datasets keep each split's queries in ``queries_<split>.jsonl``)
and ``qrels/<split>.tsv`` (``query-id  corpus-id  score`` with a header line).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fathom.errors import ConfigError

__all__ = ["BeirDataset", "corpus_fingerprint", "iter_corpus", "load_beir"]


@dataclass(frozen=True, slots=True)
class BeirDataset:
    """The queries of one split and their graded relevance judgements."""

    root: Path
    split: str
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    @property
    def corpus_path(self) -> Path:
        return self.root / "corpus.jsonl"


def _read_jsonl(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                raise ConfigError(f"{path}:{number} is not valid JSON") from None
            if not isinstance(row, dict) or "_id" not in row:
                raise ConfigError(f"{path}:{number} has no '_id'")
            yield row


def iter_corpus(root: Path) -> Iterator[tuple[str, str, str]]:
    """``(doc_id, title, text)`` for every corpus document, in file order."""
    for row in _read_jsonl(root / "corpus.jsonl"):
        yield str(row["_id"]), str(row.get("title") or ""), str(row.get("text") or "")


def corpus_fingerprint(root: Path) -> str:
    """A content hash of ``corpus.jsonl``: an evaluation home built from it is reusable while it holds."""
    digest = hashlib.sha256()
    with (root / "corpus.jsonl").open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_beir(root: str | Path, split: str = "test") -> BeirDataset:
    """Read the queries that have judgements in ``split``.

    Raises:
        ConfigError: a required file is missing or malformed.
    """
    folder = Path(root).expanduser().resolve()
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for required in (folder / "corpus.jsonl", qrels_path):
        if not required.is_file():
            raise ConfigError(f"not a BEIR folder for split {split!r}: {required} is missing")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or (number == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue  # blank line or header
            if len(row) < 3:
                raise ConfigError(f"{qrels_path}:{number} needs query-id, corpus-id and score")
            query_id, doc_id, score = row[0].strip(), row[1].strip(), int(row[2])
            qrels.setdefault(query_id, {})[doc_id] = score
    split_queries = folder / f"queries_{split}.jsonl"
    queries_path = split_queries if split_queries.is_file() else folder / "queries.jsonl"
    if not queries_path.is_file():
        raise ConfigError(f"not a BEIR folder: {queries_path} is missing")
    queries = {
        str(row["_id"]): str(row.get("text") or "")
        for row in _read_jsonl(queries_path)
        if str(row["_id"]) in qrels
    }
    missing = sorted(set(qrels) - set(queries))
    if missing:
        raise ConfigError(
            f"{len(missing)} judged queries of split {split!r} are not in {queries_path.name} "
            f"(first: {missing[0]!r})"
        )
    return BeirDataset(root=folder, split=split, queries=queries, qrels=qrels)
