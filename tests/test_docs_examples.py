"""The examples of README.md and docs/usage.md, run as a reader would run them (issue 17).

Each Python block is saved as a script and run without an ``if __name__ == "__main__":``
guard, as people paste it: parser workers once re-ran such a script and every file failed
with ``ingest.parser_crashed``. Each shell block runs in bash with a ``fathom`` on PATH, HOME
in a temporary folder (``~/notes`` and ``~/manuals/guide.pdf`` exist there) and the model-free
``hash:`` embedder. Lines that cannot run here are skipped, each for the reason in SKIPPED;
the README's service block runs in full, with its server, in its own test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.files import make_pdf
from tests.service.server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", ROOT / "docs" / "usage.md")
_BLOCK = re.compile(r"^```(python|bash|sh)\n(.*?)^```", re.MULTILINE | re.DOTALL)

# A line matching the pattern is not run, for the reason given.
SKIPPED = {
    r"^make ": "builds a virtual environment and runs the whole suite: minutes, and the package index",
    r"^\. \.venv/bin/activate": "the test puts the fathom under test on PATH itself",
    r"https://example\.com": "needs the internet; tests reach loopback only (URL ingest: tests/ingest)",
    r"^FATHOM_URL=": "needs a running `fathom serve`: tests/test_cli_startup.py runs it against one",
    r"--watch": "runs until Ctrl-C: tests/ingest/test_watch.py",
    r"eval retrieval --beir": "ingests SciFact's 5,183 abstracts: minutes (bench/ measures it)",
    r"^fathom (mcp|serve)\b": "a server that runs until stopped: tests/mcp and tests/service",
    r"^pip install": "installs packages from the package index",
    r"--cluster ray": "starts a Ray cluster: tests/ingest/test_cluster.py runs the command on one",
}
# Blocks skipped whole: the first pattern found in the block, and why.
SKIPPED_BLOCKS = {
    "fathom pg start": "starts PostgreSQL from the postgres-local extra: tests/store cover the backend",
    "fathom keys create --user alice": "the service walk-through: test_readme_service_walkthrough runs it",
}


def blocks(page: Path, language: tuple[str, ...]) -> list[str]:
    return [body for lang, body in _BLOCK.findall(page.read_text(encoding="utf-8")) if lang in language]


def logical_lines(block: str) -> list[str]:
    """The block's commands, continuation lines joined."""
    return [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def fathom_on_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose ``fathom`` is the fathom under test, HOME a scratch folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    wrapper = bin_dir / "fathom"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m fathom "$@"\n')
    wrapper.chmod(0o755)
    home = tmp_path / "user"
    (home / "notes").mkdir(parents=True, exist_ok=True)
    (home / "notes" / "limits.md").write_text(
        "# Rate limits\n\nThe token bucket refills ten tokens per second.\n\n"
        "## Chunks\n\nWe use a chunk size of 256 tokens.\n",
        encoding="utf-8",
    )
    (home / "manuals").mkdir(exist_ok=True)
    make_pdf(home / "manuals" / "guide.pdf", ["The guide explains mooring fees at the harbour."])
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    return {
        **env,
        "HOME": str(home),
        "PATH": f"{bin_dir}{os.pathsep}{env['PATH']}",
        "FATHOM_EMBEDDER": "hash:64",
        "FATHOM_HOME": str(home / "fathom-data"),
        "NO_COLOR": "1",
    }


def runnable(block: str) -> tuple[str, list[str]]:
    """The block as a bash script with the lines that cannot run here commented out, and the
    reasons they were skipped."""
    script = ["set -euo pipefail"]
    reasons = []
    for line in logical_lines(block):
        reason = next((why for pattern, why in SKIPPED.items() if re.search(pattern, line)), None)
        shared = re.search(r"\.\./shared/data/\S+", line)
        if reason is None and shared and not (ROOT / shared.group(0)).exists():
            reason = "the shared data folder is not next to this checkout"
        if reason is not None:
            script.append(f"# skipped ({reason}): {line}")
            reasons.append(reason)
        else:
            script.append(line.replace("/srv/fathom", "$HOME/srv-fathom"))
    return "\n".join(script) + "\n", reasons


def test_every_python_example_runs_as_an_unguarded_script(tmp_path: Path):
    examples = [(page, body) for page in PAGES for body in blocks(page, ("python",))]
    assert len(examples) >= 2
    env = fathom_on_path(tmp_path)
    for i, (page, body) in enumerate(examples):
        home = tmp_path / f"home-{i}"
        script = tmp_path / f"example_{i}.py"
        script.write_text(re.sub(r'"/(tmp/fathom-demo|srv/fathom)"', repr(str(home)), body), encoding="utf-8")
        assert "__main__" not in body
        result = subprocess.run(
            [sys.executable, str(script)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        where = f"{page.name} example {i}"
        assert result.returncode == 0, f"{where}: {result.stderr[-3000:]}"
        assert "parser_crashed" not in result.stdout + result.stderr, where
        assert result.stdout.strip(), where
        with_docs = subprocess.run(
            [sys.executable, "-m", "fathom", "status", "--json", "--home", str(home)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert json.loads(with_docs.stdout)["documents"] >= 10, where  # docs/*.md; images skipped


def test_every_shell_example_runs(tmp_path: Path):
    env = fathom_on_path(tmp_path)
    ran = skipped = 0
    for page in PAGES:
        for i, body in enumerate(blocks(page, ("bash", "sh"))):
            whole = next((why for marker, why in SKIPPED_BLOCKS.items() if marker in body), None)
            if whole is not None:
                skipped += 1
                continue
            script, reasons = runnable(body)
            skipped += len(reasons)
            result = subprocess.run(
                ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
            )
            assert result.returncode == 0, f"{page.name} block {i}:\n{script}\n{result.stderr[-3000:]}"
            ran += len(logical_lines(body)) - len(reasons)
    assert ran >= 15 and skipped >= 8


def test_readme_service_walkthrough_serves_what_the_cli_ingested(tmp_path: Path):
    """The README's key example showed an empty product: the CLI ingested into tenant 'default'
    and the key belonged to 'acme'. Its commands, run as written, must find the documents."""
    (body,) = [b for b in blocks(ROOT / "README.md", ("bash",)) if "keys create" in b]
    port = free_port()
    script = ["set -euo pipefail"]
    for line in logical_lines(body):
        line = line.replace("localhost:8000", f"localhost:{port}")
        if line.startswith("fathom serve"):
            script += [
                f"fathom serve --port {port} > {tmp_path}/serve.log 2>&1 & SERVER=$!",
                "trap 'kill $SERVER' EXIT",
                f"until curl -sf localhost:{port}/readyz > /dev/null; do sleep 0.2; done",
            ]
        else:
            script.append(line)
    work = tmp_path / "work"
    work.mkdir()
    script += [
        f'curl -s -H "Authorization: Bearer $KEY" localhost:{port}/v1/documents > {work}/documents.json',
        f'curl -s -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" '
        f'localhost:{port}/v1/search -d \'{{"query": "hybrid search BM25"}}\' > {work}/search.json',
    ]
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT,
        env=fathom_on_path(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "has no documents yet" not in result.stderr  # the key's tenant has the documents
    assert "data: " in result.stdout and '"abstained"' in result.stdout  # the streamed answer
    documents = json.loads((work / "documents.json").read_text())["documents"]
    sources = {Path(d["source"]).name for d in documents}
    assert {"usage.md", "service.md"} <= sources  # what `fathom ingest docs/` stored ...
    assert '"job_id"' in result.stdout  # ... and the upload with the key became an ingestion job
    hits = json.loads((work / "search.json").read_text())["hits"]
    assert hits and any(Path(h["source"]).name.endswith(".md") for h in hits)
