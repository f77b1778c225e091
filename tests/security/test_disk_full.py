"""Item 13: a full disk is a clear ``storage.full`` error on writes; reads keep working; nothing partial.

Before the fix, ingesting a large document on a nearly full home printed a raw traceback (with
document text in it), and when the store commit fit but the index did not, even ``status``
and ``search`` crashed until space was freed. Here a real size-limited filesystem does the
filling: a tmpfs mounted for the test (we run as root in the sandbox; where mounting is not
permitted the tests skip, CI included, since no other mechanism gives a real ENOSPC without
extra packages). The CLI runs as a user runs it, in a subprocess.

Three ways to be full: the store's filesystem (the SQLite write fails and rolls back), the
indexes' filesystem only (the document commits whole, the indexes lag behind and catch up
once space is freed), and a disk with zero bytes left (SQLite cannot even create its WAL
index, so reads go through a read-only view).
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fathom import Fathom
from fathom.service import create_app

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMALL = "# Harbour rules\n\nThe harbour opens at six in the morning and moorings are free the first night.\n"
WORDS = ["vessel", "tide", "pilot", "anchor", "berth", "cargo", "crane", "dock", "quay", "ferry", "buoy"]


def big_document(path: Path, paragraphs: int = 800) -> Path:
    """About 300 KB of Markdown: far more than the space the tests leave."""
    rng = random.Random(7)
    body = "\n\n".join(
        " ".join(rng.choice(WORDS) for _ in range(60)) + f" paragraph{i}." for i in range(paragraphs)
    )
    path.write_text(f"# Port logbook\n\n{body}\n", encoding="utf-8")
    return path


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount size-limited tmpfs filesystems (``mount(megabytes)``); unmounted afterwards."""
    mounted: list[Path] = []

    def mount(megabytes: int) -> Path:
        if os.geteuid() != 0 or shutil.which("mount") is None:
            pytest.skip("mounting a size-limited tmpfs needs root and mount(8)")
        target = tmp_path / f"disk{len(mounted)}"
        target.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a size-limited tmpfs here: {result.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", "-l", str(target)], check=False)


def fill(disk: Path, leave: int) -> None:
    """Take all but ``leave`` bytes of the filesystem (``leave=0``: every last byte)."""
    fillers = len(list(disk.glob("filler-*")))
    with (disk / f"filler-{fillers}").open("wb", buffering=0) as handle:
        free = shutil.disk_usage(disk).free
        if free > leave:
            os.posix_fallocate(handle.fileno(), 0, free - leave)
        if leave == 0:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC


def free_space(disk: Path) -> None:
    for filler in disk.glob("filler-*"):
        filler.unlink()


def cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    environment.update(FATHOM_HOME=str(home), FATHOM_EMBEDDER="hash:64", **env)
    return subprocess.run(
        [sys.executable, "-m", "fathom", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
        check=False,
    )


def ok_json(*args: str, home: Path, **env: str) -> Any:
    result = cli(*args, "--json", home=home, **env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def assert_storage_full(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert "error [storage.full] the disk is full" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "paragraph" not in result.stderr  # no document text in errors


def test_full_store_fails_the_write_cleanly_and_reads_keep_working(small_disk, tmp_path: Path) -> None:
    disk = small_disk(16)
    home = disk / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "harbour.md").write_text(SMALL, encoding="utf-8")
    big = big_document(docs / "logbook.md")
    assert ok_json("ingest", str(docs / "harbour.md"), home=home)["summary"]["added"] == 1
    before = ok_json("status", home=home)

    fill(disk, leave=128 * 1024)
    assert_storage_full(cli("ingest", str(big), "--json", home=home))

    # Nothing partial: the store and its change log are as they were, and reads work.
    after = ok_json("status", home=home)
    for field in ("documents", "chunks", "last_sequence", "index_positions"):
        assert after[field] == before[field], field
    hits = ok_json("search", "harbour moorings", home=home)["hits"]
    assert hits and hits[0]["source"].endswith("harbour.md")

    # Not a byte left: SQLite cannot open its WAL index; reads go through a read-only view.
    fill(disk, leave=0)
    assert ok_json("status", home=home)["documents"] == 1
    assert ok_json("search", "harbour moorings", home=home)["hits"]
    (docs / "ferry.md").write_text("# Ferry\n\nThe ferry leaves at noon.\n", encoding="utf-8")
    assert_storage_full(cli("ingest", str(docs / "ferry.md"), "--json", home=home))

    free_space(disk)
    assert ok_json("ingest", str(docs / "ferry.md"), home=home)["summary"]["added"] == 1
    assert ok_json("status", home=home)["documents"] == 2


def test_full_index_disk_keeps_the_document_whole_and_catches_up_later(small_disk, tmp_path: Path) -> None:
    disk = small_disk(8)
    home = disk / "home"  # the indexes live here; the store of record elsewhere, with room
    store = {"FATHOM_DATABASE_URL": f"sqlite:///{tmp_path / 'fathom.db'}"}
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "harbour.md").write_text(SMALL, encoding="utf-8")
    big = big_document(docs / "logbook.md")
    assert ok_json("ingest", str(docs / "harbour.md"), home=home, **store)["summary"]["added"] == 1

    fill(disk, leave=128 * 1024)
    assert_storage_full(cli("ingest", str(big), "--json", home=home, **store))

    status = ok_json("status", home=home, **store)
    assert status["documents"] == 2  # committed whole in the store of record ...
    assert min(status["index_positions"].values()) < status["last_sequence"]  # ... not yet indexed
    hits = ok_json("search", "harbour moorings", home=home, **store)["hits"]
    assert hits and hits[0]["source"].endswith("harbour.md")

    free_space(disk)
    hits = ok_json("search", "paragraph567", home=home, **store)["hits"]
    assert hits and hits[0]["source"].endswith("logbook.md")
    status = ok_json("status", home=home, **store)
    assert set(status["index_positions"].values()) == {status["last_sequence"]}


def test_http_upload_on_a_full_disk_is_507_and_search_still_answers(small_disk, tmp_path: Path) -> None:
    disk = small_disk(16)
    with Fathom(home=disk / "home", embedder="hash:64") as fathom:
        client = TestClient(create_app(fathom=fathom), raise_server_exceptions=False)
        with client:
            key, _ = fathom.keys.create(tenant="acme", user="alice", groups=(), admin=False)
            headers = {"Authorization": f"Bearer {key}"}
            fill(disk, leave=0)
            response = client.post(
                "/v1/documents", json={"text": big_document(tmp_path / "big.md").read_text()}, headers=headers
            )
            assert response.status_code == 507, response.text
            assert response.json()["error"]["code"] == "storage.full"
            assert client.post("/v1/search", json={"query": "harbour"}, headers=headers).status_code == 200
            free_space(disk)


def test_every_disguise_of_a_full_disk_is_recognised(tmp_path: Path) -> None:
    from fathom.store.space import is_storage_full  # new with the fix: imported here so the rest runs on main

    class PgError(Exception):
        sqlstate = "53100"

    full = [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        sqlite3.OperationalError("database or disk is full"),
        PgError("could not extend file"),
        ValueError("An IO error occurred: 'No space left on device (os error 28)'"),
    ]
    wrapped = RuntimeError("commit failed")
    wrapped.__cause__ = full[0]
    for error in [*full, wrapped]:
        assert is_storage_full(error), error
    others = [
        OSError(errno.EACCES, "Permission denied"),
        ValueError("bad query"),
        sqlite3.OperationalError("database is locked"),
    ]
    for error in others:
        assert not is_storage_full(error), error
    # A generic engine I/O failure counts only when the disk it wrote to is nearly full.
    killed = ValueError("An index writer was killed. A worker thread hit an error (io::Error most likely)")
    assert not is_storage_full(killed, tmp_path) or shutil.disk_usage(tmp_path).free < 64 * 1024 * 1024
