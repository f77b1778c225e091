"""Verified erasure: after DELETE and `fathom compact`, no file under the home holds the document.

A real `fathom serve` (packaged model) takes an HTTP upload, searches and answers from it (so its
text reaches the caches, the answers table and the audit log), deletes it, and `fathom compact`
runs as a separate process while the server is still up (its connections open, its WAL live).
Then every file under the home is read as bytes and searched for the document's marker and for
the bytes of its vectors.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from fathom import Fathom
from fathom.index.lexical import TantivyIndex, analyze
from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MARKER = "Qzv7Marker31415"
SECRET = (
    f"# Launch procedures\n\nThe zebrafinch protocol {MARKER} requires three signed approvals "
    "before any launch window opens. Approvals expire after six hours.\n"
)
OTHER = "# Tea\n\nGreen tea should steep for two minutes at eighty degrees, black tea for four.\n"


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    env["FATHOM_HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-m", "fathom", *args], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result


def _files_holding(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under ``root`` whose bytes contain one of ``needles`` (case-folded for text)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        lowered = data.lower()
        for needle in needles:
            if needle in data or needle.lower() in lowered:
                found.append(f"{path.relative_to(root)}: {needle[:16]!r}")
    return found


def _lexical_frequency(home: Path, word: str) -> int:
    """Chunks of the (only) tenant's lexical index containing ``word``, deleted ones included."""
    (folder,) = (home / "index" / "tenants").iterdir()
    _total, frequencies = TantivyIndex(folder / "lexical").document_frequencies(analyze(word))
    return max(frequencies.values())


def test_deleted_document_leaves_no_trace_in_any_file(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        key, _ = fathom.keys.create(tenant="acme", user="alice", role="admin")
    headers = {"Authorization": f"Bearer {key}"}
    server = ServerProcess(home, {"FATHOM_LOG_LEVEL": "INFO"}, log=tmp_path / "serve.log").wait_ready(120)
    try:
        server.upload(key, "launch.md", text=SECRET)
        server.upload(key, "tea.md", text=OTHER)
        # Enough commits for tantivy to merge its segments: the deleted document then shares a
        # segment with live ones, which is where a delete only marks it.
        for n in range(8):
            server.upload(
                key, f"note-{n}.md", text=f"# Note {n}\n\nRoutine maintenance log entry number {n}.\n"
            )
        docs = httpx.get(f"{server.url}/v1/documents", headers=headers).json()
        doc_id = next(d["doc_id"] for d in docs["documents"] if d["source"] == "launch.md")
        question = {"query": "What does the zebrafinch protocol require before launch?"}
        hits = httpx.post(f"{server.url}/v1/search", json=question, headers=headers, timeout=60).json()
        assert hits["hits"][0]["doc_id"] == doc_id and MARKER in hits["hits"][0]["text"]
        for _ in range(2):  # the second ask is served from the answer cache
            answer = httpx.post(f"{server.url}/v1/ask", json=question, headers=headers, timeout=60).json()
            assert MARKER in answer["answer"], answer

        with sqlite3.connect(f"file:{home / 'fathom.db'}?mode=ro", uri=True) as db:
            vectors = [
                bytes(row[0])
                for row in db.execute("SELECT embedding FROM chunks WHERE doc_id = ?", (doc_id,))
            ]
        assert vectors
        # 32 bytes (8 float32 components) of each vector: enough to be unique.
        needles = [MARKER.encode(), b"zebrafinch"] + [v[:32] for v in vectors]
        assert _files_holding(home, needles), "the document should be on disk before the delete"

        deleted = httpx.delete(f"{server.url}/v1/documents/{doc_id}", headers=headers)
        assert deleted.status_code == 200, deleted.text
        # tantivy compresses its files (a grep cannot see them), but its term statistics count
        # deleted documents until their segment is rewritten: the marker is still there.
        assert _lexical_frequency(home, MARKER) == 1
        _cli(home, "compact")
        assert _lexical_frequency(home, MARKER) == 0

        # The server is still running, with its connections and indexes open.
        assert _files_holding(home, needles) == []
        after = httpx.post(f"{server.url}/v1/search", json=question, headers=headers, timeout=60).json()
        assert all(hit["doc_id"] != doc_id for hit in after["hits"])
        assert (
            "two minutes"
            in httpx.post(
                f"{server.url}/v1/search", json={"query": "how long to steep green tea"}, headers=headers
            ).text
        )
    finally:
        server.stop()
    assert _files_holding(home, needles) == []
    # Logs never hold document text.
    assert MARKER.encode() not in (tmp_path / "serve.log").read_bytes()
