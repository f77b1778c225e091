"""Issue 17, cold start: the CLI imports only what a command needs.

Each command runs the real console entry point (``fathom.entry.main``) in a fresh Python
process, which then writes the names of every module it imported (``sys.modules`` at exit) to a
file: a command that loaded the model has ``torch`` there, one that opened the full API has
``fathom.api``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest.mock import ANY

import pytest

from tests.service.server import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL_MODULES = {"torch", "sentence_transformers", "transformers"}

# Runs the real console entry point, then records sys.modules (also after a non-zero exit).
_RUNNER = """
import json, sys
sys.argv = ["fathom", *sys.argv[1:]]
from fathom.entry import main
try:
    main()
finally:
    with open({modules!r}, "w") as f:
        json.dump(sorted(sys.modules), f)
"""


def run_cli(
    *args: str, home: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``fathom ARGS`` with FATHOM_HOME=home; returns the process and the modules it imported."""
    modules = home.parent / f"modules-{os.getpid()}-{len(list(home.parent.glob('modules-*')))}.json"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    full_env.update({"FATHOM_HOME": str(home), **(env or {})})
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER.format(modules=str(modules)), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        check=False,
    )
    return result, set(json.loads(modules.read_text()))


def write_docs(folder: Path) -> Path:
    folder.mkdir()
    (folder / "volcano.md").write_text(
        "# Volcanoes\n\n## Eruptions\n\nMount Etna erupted 17 times between 2020 and 2023.\n",
        encoding="utf-8",
    )
    (folder / "tea.txt").write_text(
        "Green tea should steep for two minutes at 80 degrees.\n", encoding="utf-8"
    )
    return folder


def test_help_version_and_status_load_neither_the_model_nor_the_api(tmp_path: Path):
    home = tmp_path / "home"
    for args in (["--help"], ["search", "--help"], ["--version"]):
        result, modules = run_cli(*args, home=home)
        assert result.returncode == 0, result.stderr
        assert not modules & (MODEL_MODULES | {"fathom.api", "sqlalchemy", "fathom.config"}), args
    result, _ = run_cli("--version", home=home)
    assert result.stdout.strip() == "fathom 0.1.0"

    missing, _ = run_cli("status", "--json", home=home)  # a read command never creates a home
    assert missing.returncode == 1 and "error [home.not_found]" in missing.stderr and not home.exists()
    (tmp_path / "empty").mkdir()
    created, modules = run_cli("ingest", str(tmp_path / "empty"), home=home)  # creates the store
    assert created.returncode == 0, created.stderr
    assert "alembic" in modules and not modules & MODEL_MODULES
    first, modules = run_cli("status", "--json", home=home)
    assert first.returncode == 0, first.stderr
    assert not modules & (MODEL_MODULES | {"fathom.api"})
    again, modules = run_cli("status", "--json", home=home)  # at the newest schema: nothing to migrate
    assert json.loads(again.stdout) == json.loads(first.stdout) | {"disk_bytes": ANY}
    assert json.loads(again.stdout)["documents"] == 0
    assert not modules & (MODEL_MODULES | {"fathom.api", "alembic"})


def test_ask_and_search_on_an_empty_home_say_so_without_loading_the_model(tmp_path: Path):
    home = tmp_path / "home"
    for args in (["ask", "How long should green tea steep?"], ["search", "tea", "--json"]):
        result, modules = run_cli(*args, home=home)
        assert result.returncode == 1, result.stdout
        assert "error [store.empty] no documents yet — run `fathom ingest`" in result.stderr
        assert result.stdout == "" and "Traceback" not in result.stderr
        assert not modules & (MODEL_MODULES | {"fathom.api"})


def test_reingesting_unchanged_files_does_not_load_the_model(tmp_path: Path):
    home, docs = tmp_path / "home", write_docs(tmp_path / "docs")
    first, modules = run_cli("ingest", str(docs), "--json", home=home)
    assert json.loads(first.stdout)["summary"]["added"] == 2
    assert "torch" in modules  # the check can see a model load (the default embedder is real)

    again, modules = run_cli("ingest", str(docs), "--json", home=home)
    summary = json.loads(again.stdout)["summary"]
    assert summary["unchanged"] == 2 and not summary.get("added") and not summary.get("updated")
    assert not modules & MODEL_MODULES

    (docs / "tea.txt").write_text("Green tea should steep for three minutes.\n", encoding="utf-8")
    changed, modules = run_cli("ingest", str(docs), "--json", home=home)
    assert json.loads(changed.stdout)["summary"]["updated"] == 1
    assert "torch" in modules  # a changed file is embedded: the model loads when needed


def test_search_and_ask_go_to_a_running_server_when_fathom_url_is_set(tmp_path: Path):
    home, docs = tmp_path / "home", write_docs(tmp_path / "docs")
    hashed = {"FATHOM_EMBEDDER": "hash:64"}  # a model-free embedder: same vectors on both sides
    result, _ = run_cli("ingest", str(docs), home=home, env=hashed)
    assert result.returncode == 0, result.stderr
    created, _ = run_cli("keys", "create", "--tenant", "default", "--json", home=home, env=hashed)
    key = json.loads(created.stdout)["key"]

    server = ServerProcess(home, hashed).wait_ready()
    try:
        remote = {"FATHOM_URL": server.url, "FATHOM_API_KEY": key}
        empty = tmp_path / "empty-home"  # FATHOM_HOME is empty: an answer can only come from the server
        for args in (
            ["search", "How often did Etna erupt?", "-k", "2"],
            ["ask", "How long should tea steep?"],
        ):
            local, _ = run_cli(*args, "--home", str(home), home=empty, env=hashed)
            served, modules = run_cli(*args, home=empty, env=remote)
            assert served.returncode == 0, served.stderr
            assert local.returncode == 0, local.stderr
            assert served.stdout == local.stdout and served.stdout.strip()
            # Answered before the typer app is imported, with the standard library's HTTP client.
            assert not modules & (
                MODEL_MODULES | {"fathom.api", "sqlalchemy", "typer", "fathom.cli", "httpx"}
            )

        # A form the quick path leaves to the full CLI (--k=N) still goes to the server ...
        local, _ = run_cli("search", "Etna", "--k=1", "--home", str(home), home=empty, env=hashed)
        served, modules = run_cli("search", "Etna", "--k=1", home=empty, env=remote)
        assert served.stdout == local.stdout and "fathom.cli" in modules and "fathom.api" not in modules
        # ... and --home always means this home, here locally.
        here, _ = run_cli("search", "Etna", "--home", str(home), home=empty, env=hashed)
        mine, modules = run_cli("search", "Etna", "--home", str(home), home=empty, env={**hashed, **remote})
        assert mine.stdout == here.stdout and "fathom.api" in modules

        local, _ = run_cli("search", "Etna", "--json", "--home", str(home), home=empty, env=hashed)
        served, _ = run_cli("search", "Etna", "--json", home=empty, env=remote)
        local_hits, served_hits = json.loads(local.stdout)["hits"], json.loads(served.stdout)["hits"]
        assert [h["chunk_id"] for h in served_hits] == [h["chunk_id"] for h in local_hits]
        for mine, theirs in zip(local_hits, served_hits, strict=True):
            assert {k: mine[k] for k in theirs} == theirs  # the API's fields, the same values

        asked, _ = run_cli("ask", "How long should green tea steep?", "--json", home=empty, env=remote)
        answer = json.loads(asked.stdout)
        assert "two minutes" in answer["answer"] and answer["citations"][0]["source"].endswith("tea.txt")

        refused, _ = run_cli("search", "Etna", home=empty, env={**remote, "FATHOM_API_KEY": "fk_wrong"})
        assert refused.returncode == 1
        assert "error [auth." in refused.stderr and "Traceback" not in refused.stderr
    finally:
        server.stop()

    gone, _ = run_cli("search", "Etna", home=empty, env=remote)
    assert gone.returncode == 1
    assert "error [remote.unreachable] cannot reach the fathom server" in gone.stderr
