"""The CLI as a user runs it: a real process, the real packaged model, JSON out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def fathom_cli(*args: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    env["FATHOM_HOME"] = str(home)
    result = subprocess.run(
        [sys.executable, "-m", "fathom", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_ingest_search_ask_status_delete(tmp_path: Path):
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "volcano.md").write_text(
        "# Volcanoes\n\n## Eruptions\n\nMount Etna erupted 17 times between 2020 and 2023.\n",
        encoding="utf-8",
    )
    (docs / "tea.txt").write_text("Green tea should steep for two minutes at 80 degrees.\n", encoding="utf-8")

    ingested = json.loads(fathom_cli("ingest", str(docs), "--json", home=home).stdout)
    assert ingested["summary"]["added"] == 2

    hits = json.loads(
        fathom_cli("search", "How often did Etna erupt?", "--k", "2", "--json", home=home).stdout
    )
    top = hits["hits"][0]
    assert set(top) >= {"doc_id", "chunk_id", "source", "title", "score", "text", "start", "end"}
    assert top["source"].endswith("volcano.md")
    filtered = json.loads(
        fathom_cli("search", "Etna", "--filter", "filename=tea.txt", "--json", home=home).stdout
    )
    assert all(h["source"].endswith("tea.txt") for h in filtered["hits"])

    answer = json.loads(fathom_cli("ask", "How long should green tea steep?", "--json", home=home).stdout)
    assert answer["abstained"] is False
    assert "two minutes" in answer["answer"]
    citation = answer["citations"][0]
    assert set(citation) >= {"n", "doc_id", "chunk_id", "source", "quote", "start", "end"}
    text = (docs / "tea.txt").read_text().strip()
    assert text[citation["start"] : citation["end"]] == citation["quote"]

    unknown = json.loads(fathom_cli("ask", "Who won the 1998 chess olympiad?", "--json", home=home).stdout)
    assert unknown["abstained"] is True and unknown["citations"] == []

    status = json.loads(fathom_cli("status", "--json", home=home).stdout)
    assert status["documents"] == 2
    assert status["index_positions"] == {"embedded": status["last_sequence"]}

    fathom_cli("delete", str(docs / "tea.txt"), home=home)
    missing = fathom_cli("delete", str(docs / "tea.txt"), home=home, check=False)
    assert missing.returncode == 1
    assert "document.not_found" in missing.stderr and "Traceback" not in missing.stderr
    assert "rebuilt" in fathom_cli("reindex", home=home).stdout


def test_help_lists_every_command_and_bad_usage_is_explained(tmp_path: Path):
    out = fathom_cli("--help", home=tmp_path).stdout
    for command in ("ingest", "search", "ask", "delete", "sync", "status", "reindex"):
        assert command in out
    bad = fathom_cli("search", "x", "--filter", "novalue", home=tmp_path, check=False)
    assert bad.returncode == 2
    assert "KEY=VALUE" in bad.stderr
