"""schemathesis against the served OpenAPI schema: every operation, bounded examples, all checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fathom import Fathom
from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_the_api_conforms_to_its_openapi_schema(tmp_path: Path):
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        key, _ = fathom.keys.create(tenant="acme", user="alice", groups=["eng"])
        fathom.ingest_text("# Otters\n\nSea otters hold hands while they sleep.", source="otters.md")
    env = {"FATHOM_EMBEDDER": "hash:64", "FATHOM_RATE_LIMIT_PER_MINUTE": "0", "FATHOM_LOG_LEVEL": "WARNING"}
    server = ServerProcess(home, env).wait_ready()
    schemathesis = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert schemathesis, "schemathesis is a dev dependency"
    try:
        run = subprocess.run(
            [
                schemathesis,
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {key}",
                "--max-examples",
                "10",
                "--seed",
                "1",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=400,
            cwd=tmp_path,
            check=False,
        )
    finally:
        server.stop()
    report = run.stdout[-6000:]
    assert run.returncode == 0, report
    assert "Tested: 27" in run.stdout and "failures" not in run.stdout.split("SUMMARY")[-1].lower(), report
