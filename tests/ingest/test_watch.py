"""`sync --watch`: create, modify, rename and delete are mirrored; a killed watcher resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fathom import Fathom
from fathom.domain import IngestReport

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def _sources(fathom: Fathom) -> dict[str, str]:
    return {Path(d.source).name: d.content_hash for d in fathom.documents()}


def test_watch_mirrors_create_modify_rename_delete(tmp_path: Path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "first.txt").write_text("The ferry leaves at nine.")
    reports: list[IngestReport] = []
    stop = threading.Event()
    with Fathom(home=tmp_path / "home", embedder="hash:64", sync_debounce_ms=200) as fathom:
        watcher = threading.Thread(target=fathom.watch, args=(folder, reports.append), kwargs={"stop": stop})
        watcher.start()
        try:
            _wait_for(lambda: "first.txt" in _sources(fathom))
            time.sleep(0.5)  # let the watcher start listening

            (folder / "second.md").write_text("# Ferry\n\nTickets cost four euros.")
            _wait_for(lambda: "second.md" in _sources(fathom))

            before = _sources(fathom)["first.txt"]
            (folder / "first.txt").write_text("The ferry leaves at ten.")
            _wait_for(lambda: _sources(fathom).get("first.txt") not in (None, before))

            (folder / "second.md").rename(folder / "renamed.md")
            _wait_for(lambda: set(_sources(fathom)) == {"first.txt", "renamed.md"})

            (folder / "first.txt").unlink()
            _wait_for(lambda: set(_sources(fathom)) == {"renamed.md"})

            (folder / ".hidden.txt").write_text("not mirrored")
            time.sleep(1.0)
            assert set(_sources(fathom)) == {"renamed.md"}
        finally:
            stop.set()
            watcher.join(timeout=30)
    assert not watcher.is_alive()
    statuses = [o.status for report in reports for o in report.outcomes]
    assert {"added", "updated", "deleted"} <= set(statuses)


def test_killed_watcher_resumes_where_the_folder_is(tmp_path: Path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("Alpha harbour notes.")
    (folder / "b.txt").write_text("Bravo harbour notes.")
    home = tmp_path / "home"
    env = {**os.environ, "FATHOM_EMBEDDER": "hash:64", "FATHOM_SYNC_DEBOUNCE_MS": "200"}
    command = [sys.executable, "-m", "fathom", "sync", str(folder), "--watch", "--json", "--home", str(home)]

    def documents() -> set[str]:
        with Fathom(home=home, embedder="hash:64") as reader:
            return set(_sources(reader))

    log = (tmp_path / "watch.log").open("wb")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)

    process = start()
    try:
        _wait_for(lambda: documents() == {"a.txt", "b.txt"})
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        # While the watcher is down: one file added, one deleted, one changed.
        (folder / "c.txt").write_text("Charlie harbour notes.")
        (folder / "b.txt").unlink()
        (folder / "a.txt").write_text("Alpha harbour notes, revised.")
        process = start()
        _wait_for(lambda: documents() == {"a.txt", "c.txt"})
        with Fathom(home=home, embedder="hash:64") as reader:
            texts = {Path(d.source).name: reader.document_text(d.doc_id) for d in reader.documents()}
        assert texts["a.txt"] == "Alpha harbour notes, revised."
    finally:
        process.kill()
        process.wait(timeout=30)
        log.close()
    assert "Traceback" not in (tmp_path / "watch.log").read_text()
