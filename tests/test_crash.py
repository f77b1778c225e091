"""Crash consistency: SIGKILL `fathom ingest` at random moments, then check nothing is half-done.

The model plays no part in crash safety, so these runs use the model-free hash
embedder: a run then spends its time parsing, committing and indexing, which is
where a kill can hurt.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fathom import Fathom
from fathom.store.schema import ChunkRow, DocumentRow

pytestmark = [pytest.mark.integration, pytest.mark.slow]

KILLS = 20
FILES = 60


def _write_corpus(root: Path, rng: random.Random, versions: dict[str, dict[str, str]], share: float) -> None:
    root.mkdir(exist_ok=True)
    words = [
        "harbour",
        "lantern",
        "meadow",
        "quartz",
        "ember",
        "falcon",
        "willow",
        "cobalt",
        "summit",
        "river",
        "orchard",
        "tide",
    ]
    for i in range(FILES):
        if (root / f"doc{i:03d}.md").exists() and rng.random() > share:
            continue
        sections = []
        for s in range(rng.randint(3, 8)):
            sentences = " ".join(
                f"{rng.choice(words).title()} {' '.join(rng.choices(words, k=12))} {rng.randint(0, 10**6)}."
                for _ in range(rng.randint(4, 12))
            )
            sections.append(f"## Section {s}\n\n{sentences}\n")
        text = f"# Document {i} version {rng.randint(0, 10**9)}\n\n" + "\n".join(sections)
        path = root / f"doc{i:03d}.md"
        path.write_text(text, encoding="utf-8")
        versions.setdefault(str(path.resolve()), {})[hashlib.sha256(text.encode()).hexdigest()] = text


def _ingest_command(corpus: Path, home: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "fathom",
        "ingest",
        str(corpus),
        "--home",
        str(home),
        "--no-progress",
        "--json",
    ]


def _env() -> dict[str, str]:
    return {**os.environ, "FATHOM_EMBEDDER": "hash:64", "FATHOM_CHUNK_TOKENS": "48"}


def _assert_consistent(home: Path, versions: dict[str, dict[str, str]]) -> int:
    with Fathom(home=home, embedder="hash:64") as fathom:
        with fathom.store.session() as session:
            docs = session.query(DocumentRow).all()
            for doc in docs:
                assert doc.content_hash in versions[doc.source], "document content is a version we wrote"
                assert doc.text == versions[doc.source][doc.content_hash].strip("\n"), "the whole text"
                chunks = session.query(ChunkRow).filter_by(doc_id=doc.id).order_by(ChunkRow.ordinal).all()
                assert chunks, "a document never exists without its chunks"
                assert [c.ordinal for c in chunks] == list(range(len(chunks)))
                for chunk in chunks:
                    assert doc.text[chunk.start_offset : chunk.end_offset] == chunk.text
        store_ids = set(fathom.store.all_chunk_ids())
        assert fathom.backend.chunk_ids() == store_ids
        assert fathom.backend.sizes() == {"lexical": len(store_ids), "dense": len(store_ids)}
        status = fathom.status()
        assert set(status.index_positions.values()) == {status.last_sequence}
        if docs:
            assert fathom.search("harbour lantern", k=3)
        return len(docs)


def test_sigkill_at_random_moments_leaves_a_consistent_store(tmp_path: Path):
    rng = random.Random(20261123)
    corpus, home = tmp_path / "corpus", tmp_path / "home"
    versions: dict[str, dict[str, str]] = {}
    _write_corpus(corpus, rng, versions, share=1.0)

    # How long an uninterrupted run takes, on a scratch home, to aim the kills.
    started = time.monotonic()
    subprocess.run(_ingest_command(corpus, tmp_path / "scratch"), env=_env(), check=True, capture_output=True)
    full = time.monotonic() - started

    killed_mid_run = 0
    for _ in range(KILLS):
        _write_corpus(corpus, rng, versions, share=0.5)
        process = subprocess.Popen(
            _ingest_command(corpus, home), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.2, full))
        if process.poll() is None:
            killed_mid_run += 1
        process.send_signal(signal.SIGKILL)
        process.wait()
        _assert_consistent(home, versions)
    assert killed_mid_run >= KILLS // 2, "most kills must land while the ingest is running"

    finished = subprocess.run(_ingest_command(corpus, home), env=_env(), capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr
    assert _assert_consistent(home, versions) == FILES
    with Fathom(home=home, embedder="hash:64") as fathom:
        current = {str(p.resolve()): hashlib.sha256(p.read_bytes()).hexdigest() for p in corpus.iterdir()}
        assert {d.source: d.content_hash for d in fathom.documents()} == current
