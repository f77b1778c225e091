"""The wheel users install: built from the tree, installed into a clean virtual environment.

The clean environment gets the wheel alone (``--no-deps``: no downloads, no torch build); its
dependencies come from the test's own environment through a ``.pth`` line, which adds that
site-packages folder to ``sys.path`` without running its ``.pth`` files, so the editable
install of the checkout is not importable there. What a user would notice is checked: the
distribution's name and requirements, the ``fathom`` command from the wheel's entry point, the
package data (migrations, the web page, ``py.typed``) at work, and that pip finds every
requirement satisfied.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
_SKIP = shutil.ignore_patterns(
    ".git", ".venv*", "node_modules", "__pycache__", "*.egg-info", "build", "dist", ".*_cache", ".fathom-demo"
)


def _run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    run = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, f"{command}: {run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    return run.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a copy of the tree (the checkout gets no build/ or egg-info)."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"
    shutil.copytree(ROOT, source, ignore=_SKIP)
    out = root / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", out, source)
    (built,) = out.glob("*.whl")
    return built


def test_the_wheel_is_fathom_search_with_a_torch_range_and_its_data(wheel: Path):
    assert wheel.name.startswith("fathom_search-")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt")).decode()
    assert metadata["Name"] == "fathom-search"
    torch = [r for r in metadata.get_all("Requires-Dist") or [] if r.startswith("torch")]
    assert torch == ["torch<3,>=2.6"], torch  # a range, never an exact pin
    assert {"langchain", "llama-index", "ocr", "otel", "gguf"} <= set(
        metadata.get_all("Provides-Extra") or []
    )
    assert "fathom = fathom.entry:main" in entry_points
    assert "fathom/py.typed" in names and "fathom/web/static/index.html" in names
    assert any(n.startswith("fathom/store/migrations/versions/") for n in names)
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_the_wheel_installs_into_a_clean_venv_and_works(wheel: Path, tmp_path: Path):
    env_dir = tmp_path / "clean"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    _run(python, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", wheel)
    # The dependencies: this environment's site-packages, after the clean one's own.
    clean_site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    (clean_site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {
        "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FATHOM_HOME": str(tmp_path / "home"),
    }

    where = _run(
        python,
        "-c",
        "import fathom, importlib.metadata as m; print(fathom.__file__, m.version('fathom-search'))",
        env=env,
    )
    assert where.startswith(str(clean_site / "fathom" / "__init__.py")) and where.split()[1] == "0.1.0"
    # pip sees every requirement of the wheel satisfied by what the environment holds (torch included).
    check = subprocess.run(
        [python, "-m", "pip", "check"], capture_output=True, text=True, env=env, check=False
    )
    assert "fathom-search" not in check.stdout, check.stdout
    # The command from the entry point, over the migrations the wheel ships, with the hash embedder.
    fathom = env_dir / "bin" / "fathom"
    (tmp_path / "notes.md").write_text("# Kettle\n\nDescale the office kettle every four weeks.\n")
    env_hash = {**env, "FATHOM_EMBEDDER": "hash:64"}
    _run(fathom, "ingest", tmp_path / "notes.md", env=env_hash)
    hits = json.loads(_run(fathom, "search", "kettle", "--json", env=env_hash))
    assert hits["hits"][0]["source"].endswith("notes.md")
    # The web page ships in the wheel: the app serves it.
    serve_page = (
        "from fastapi.testclient import TestClient; from fathom import Fathom; "
        "from fathom.service import create_app; f = Fathom(embedder='hash:64'); "
        "r = TestClient(create_app(fathom=f)).get('/'); print(r.status_code, 'fathom' in r.text); f.close()"
    )
    page = _run(python, "-c", serve_page, env=env)
    assert page.split() == ["200", "True"]
