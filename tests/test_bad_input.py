"""A batch full of bad files: each gets a clear outcome, the good ones still ingest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fathom import Fathom
from tests.files import make_pdf

pytestmark = pytest.mark.integration


def _bad_batch(root: Path) -> Path:
    root.mkdir()
    (root / "empty.txt").write_bytes(b"")
    (root / "junk.txt").write_bytes(os.urandom(64 * 1024))
    make_pdf(root / "locked.pdf", ["top secret plans"], password="s3cret")
    # 5 MB on one line, no sentence ends.
    (root / "oneline.txt").write_bytes((b"lorem ipsum dolor sit amet " * 200_000)[: 5 * 1024 * 1024])
    (root / "nul.txt").write_bytes(b"Lighthouse keepers\x00 trim the wick\x00 every evening at dusk.")
    (root / "latin1.txt").write_bytes("Le café ferme à minuit, dit le propriétaire.".encode("latin-1"))
    (root / "good.md").write_text("# Lighthouses\n\nThe Fresnel lens focuses the lamp into a beam.\n")
    return root


def test_bad_files_fail_alone_with_clear_reasons(fathom: Fathom, tmp_path: Path):
    batch = _bad_batch(tmp_path / "batch")
    report = fathom.ingest([batch, tmp_path / "missing-file.txt"])
    by_name = {Path(o.source).name: o for o in report.outcomes}
    assert (by_name["empty.txt"].status, by_name["empty.txt"].error_code) == ("skipped", "ingest.empty")
    assert (by_name["junk.txt"].status, by_name["junk.txt"].error_code) == ("skipped", "ingest.binary")
    assert by_name["locked.pdf"].error_code == "ingest.encrypted_pdf"
    assert by_name["missing-file.txt"].error_code == "ingest.not_found"
    for name in ("empty.txt", "junk.txt", "locked.pdf", "missing-file.txt"):
        assert by_name[name].message, name
    assert by_name["oneline.txt"].status == "added" and by_name["oneline.txt"].chunks > 100
    assert by_name["nul.txt"].status == "added"
    assert any("NUL" in w for w in by_name["nul.txt"].warnings)
    assert by_name["latin1.txt"].status == "added"
    assert any("UTF-8" in w for w in by_name["latin1.txt"].warnings)
    assert by_name["good.md"].status == "added"
    assert not report.ok
    assert fathom.search("Fresnel lens beam", k=1)[0].source.endswith("good.md")
    assert "trim the wick every evening" in fathom.search("lighthouse wick", k=1)[0].text
    assert "café ferme" in fathom.search("café minuit", k=1)[0].text


def test_cli_exit_code_says_some_files_failed(tmp_path: Path):
    batch = tmp_path / "batch"
    batch.mkdir()
    make_pdf(batch / "locked.pdf", ["top secret plans"], password="s3cret")
    (batch / "empty.txt").write_bytes(b"")  # skipped: not a failure
    (batch / "ok.txt").write_text("Kites fly best in steady wind.")
    result = subprocess.run(
        [sys.executable, "-m", "fathom", "ingest", str(batch), "--json", "--home", str(tmp_path / "h")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "FATHOM_EMBEDDER": "hash:64"},
        check=False,
    )
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["added"] == 1 and summary["failed"] == 1 and summary["skipped"] == 1
    assert "Traceback" not in result.stderr
