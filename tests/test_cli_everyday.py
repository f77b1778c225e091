"""Issue 17, the CLI's everyday rough edges, as a user meets them: a real ``fathom`` process each
time (a pseudo-terminal where the output depends on one), the model-free ``hash:`` embedder."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from fathom import Fathom
from tests.files import make_pdf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HASHED = {"FATHOM_EMBEDDER": "hash:64"}


def _env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATHOM_")}
    return {**env, "FATHOM_HOME": str(home), **HASHED, **(extra or {})}


def fathom_cli(
    *args: str, home: Path, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "fathom", *args],
        capture_output=True,
        text=True,
        env=_env(home, env),
        timeout=300,
        check=False,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def in_terminal(*args: str, home: Path, env: dict[str, str] | None = None) -> tuple[int, str]:
    """Run ``fathom ARGS`` with a pseudo-terminal as stdin, stdout and stderr; (status, output)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "fathom", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**_env(home, env), "COLUMNS": "120", "TERM": "xterm"},
        close_fds=True,
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the terminal closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    os.close(leader)
    status = process.wait(timeout=300)
    return status, b"".join(chunks).decode("utf-8", errors="replace")


def _plain(terminal_output: str) -> str:
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal_output).replace("\r", "\n")


def test_a_folder_with_images_archives_binaries_and_empty_files_is_ingested_with_skips(tmp_path: Path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.md").write_text("# Tides\n\nHigh tide is at noon today.\n", encoding="utf-8")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2048))
    with zipfile.ZipFile(folder / "bundle.zip", "w") as archive:
        archive.writestr("inside.md", "# Inside\n\nText inside an archive.\n")
    (folder / "program.bin").write_bytes(os.urandom(8192))
    (folder / "empty.txt").write_bytes(b"")
    home = tmp_path / "home"

    result = fathom_cli("ingest", str(folder), "--json", home=home)
    report = json.loads(result.stdout)
    assert report["summary"]["added"] == 1 and report["summary"]["skipped"] == 4
    assert report["summary"]["failed"] == 0
    skipped = {Path(f["source"]).name: f for f in report["files"] if f["status"] == "skipped"}
    assert {name: f["error_code"] for name, f in skipped.items()} == {
        "photo.png": "ingest.unsupported_format",
        "bundle.zip": "ingest.unsupported_format",
        "program.bin": "ingest.binary",
        "empty.txt": "ingest.empty",
    }
    assert "PNG image" in skipped["photo.png"]["message"]
    assert "unpack it" in skipped["bundle.zip"]["message"]  # archives are not opened: what to do

    (folder / "later.md").write_text("# Later\n\nA second note.\n", encoding="utf-8")
    text = fathom_cli("ingest", str(folder), "--no-progress", home=home)
    assert text.stdout.strip() == "1 added, 1 unchanged, 4 skipped"
    assert re.search(
        r"skipped .*photo\.png: this is a PNG image.*\(ingest\.unsupported_format\)", text.stderr
    )
    assert "empty.txt: the file is empty (ingest.empty)" in text.stderr

    # A document that fails is still a failure: exit status 3.
    make_pdf(folder / "locked.pdf", ["secret"], password="pw")
    failed = fathom_cli("ingest", str(folder), "--no-progress", home=home, check=False)
    assert failed.returncode == 3 and "ingest.encrypted_pdf" in failed.stderr


def _ingest_notes(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        (folder / f"note{i:02d}.md").write_text(
            f"# Note {i}\n\nLine one of note {i}.\nLine two of note {i}.\nLine three.\n", encoding="utf-8"
        )


def test_documents_list_show_and_open(tmp_path: Path):
    home, folder = tmp_path / "home", tmp_path / "notes"
    _ingest_notes(folder, 17)  # 17 ids: two of them share a first character
    fathom_cli("ingest", str(folder), "--no-progress", home=home)
    time.sleep(0.05)
    (folder / "note03.md").write_text("# Note 3, revised\n\nThe newest text.\n", encoding="utf-8")
    fathom_cli("ingest", str(folder), "--no-progress", home=home)

    listed = json.loads(fathom_cli("documents", "list", "--json", home=home).stdout)
    assert listed["total"] == 17 and len(listed["documents"]) == 17
    assert listed["documents"][0]["source"].endswith("note03.md")  # newest first
    updated = [d["updated_at"] for d in listed["documents"]]
    assert updated == sorted(updated, reverse=True)
    page = json.loads(
        fathom_cli("documents", "list", "--limit", "5", "--offset", "5", "--json", home=home).stdout
    )
    assert [d["doc_id"] for d in page["documents"]] == [d["doc_id"] for d in listed["documents"][5:10]]

    table = fathom_cli("documents", "list", "-n", "3", home=home)
    newest = listed["documents"][0]
    assert newest["doc_id"][:12] in table.stdout and "Note 3, revised" in table.stdout
    assert "1-3 of 17, newest first; --offset 3 for more" in table.stderr

    shown = fathom_cli("documents", "show", newest["doc_id"][:8], home=home)
    assert newest["doc_id"] in shown.stdout and "everyone in the tenant" in shown.stdout
    assert "The newest text." in shown.stdout and "text/markdown" in shown.stdout
    as_json = json.loads(fathom_cli("documents", "show", newest["source"], "--json", home=home).stdout)
    assert as_json["doc_id"] == newest["doc_id"] and as_json["preview"].startswith("# Note 3, revised")
    assert as_json["acl"] == {"users": [], "groups": []}

    firsts = [d["doc_id"][0] for d in listed["documents"]]
    shared = next(c for c in firsts if firsts.count(c) > 1)
    ambiguous = fathom_cli("documents", "show", shared, home=home, check=False)
    assert ambiguous.returncode == 1 and "error [document.ambiguous]" in ambiguous.stderr
    unknown = fathom_cli("documents", "show", "zzzz", home=home, check=False)
    assert unknown.returncode == 1 and "error [document.not_found]" in unknown.stderr
    assert "Traceback" not in unknown.stderr + ambiguous.stderr

    # Not on a terminal: the path, for scripts.
    opened = fathom_cli("documents", "open", newest["doc_id"][:12], home=home)
    assert opened.stdout.strip() == newest["source"]
    # On a terminal: the desktop's opener gets the original.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "opened.txt"
    opener = bin_dir / "xdg-open"
    opener.write_text(f'#!/bin/sh\necho "$1" > {record}\n')
    opener.chmod(0o755)
    path = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    status, output = in_terminal("documents", "open", newest["doc_id"][:12], home=home, env={"PATH": path})
    assert status == 0, output
    assert record.read_text().strip() == newest["source"]
    ingested_text = Fathom(home=home, embedder="hash:64")
    try:
        outcome = ingested_text.ingest_text("# Memo\n\nNo file behind me.", source="memos/memo.md")
    finally:
        ingested_text.close()
    missing = fathom_cli("documents", "open", outcome.doc_id or "", home=home, check=False)
    assert missing.returncode == 1 and "error [document.original_missing]" in missing.stderr


def test_keys_revoke_takes_what_keys_list_prints_or_its_start(tmp_path: Path):
    home = tmp_path / "home"
    with Fathom(home=home, embedder="hash:64") as fathom:
        ids = [fathom.keys.create(tenant="default", user=f"u{i}")[1].key_id for i in range(17)]
    # A table on a narrow terminal shortens the ids ("0dbe9ecc…"): what it prints is accepted.
    listing = fathom_cli("keys", "list", home=home, env={"COLUMNS": "80"}).stdout
    printed = re.search(r"│ ([0-9a-f]+…?) +│[^\n]*│ u1 +│", listing)
    assert printed and ids[1].startswith(printed.group(1).rstrip("…")), listing
    assert len(printed.group(1).rstrip("…")) >= 11, listing  # enough of the id to be unambiguous
    revoked = fathom_cli("keys", "revoke", printed.group(1), home=home)
    assert revoked.stdout.strip() == f"revoked {ids[1]}"

    target = ids[0]
    start = next(target[:n] for n in range(6, 33) if sum(k.startswith(target[:n]) for k in ids) == 1)
    assert fathom_cli("keys", "revoke", start, home=home).stdout.strip() == f"revoked {target}"
    listed = json.loads(fathom_cli("keys", "list", "--json", home=home).stdout)["keys"]
    assert sorted(k["key_id"] for k in listed if k["revoked"]) == sorted([ids[1], target])
    unknown_start = fathom_cli("keys", "revoke", "zzzz", home=home, check=False)
    assert unknown_start.returncode == 1 and "error [key.not_found]" in unknown_start.stderr
    unknown = fathom_cli("keys", "revoke", "nosuchkey", home=home, check=False)
    assert unknown.returncode == 1 and "error [key.not_found]" in unknown.stderr


def test_keys_create_warns_when_its_tenant_has_no_documents(tmp_path: Path):
    home, folder = tmp_path / "home", tmp_path / "notes"
    _ingest_notes(folder, 1)
    fathom_cli("ingest", str(folder), "--no-progress", home=home)
    mine = fathom_cli("keys", "create", "--user", "alice", home=home)
    assert mine.stdout.startswith("fth_") and "for tenant default" in mine.stderr
    assert "warning" not in mine.stderr
    other = fathom_cli("keys", "create", "--tenant", "acme", "--json", home=home)
    assert json.loads(other.stdout)["tenant"] == "acme"
    assert "warning tenant 'acme' has no documents yet" in other.stderr
    assert "FATHOM_TENANT=acme" in other.stderr


def test_a_home_that_is_a_file_or_missing_is_one_clear_line_and_never_created(tmp_path: Path):
    a_file = tmp_path / "home.txt"
    a_file.write_text("not a folder")
    for args in (
        ["status"],
        ["search", "x"],
        ["documents", "list"],
        ["keys", "list"],
        ["ingest", "x"],
        ["serve"],
        ["chat"],
    ):
        result = fathom_cli(*args, "--home", str(a_file), home=tmp_path / "unused", check=False)
        assert result.returncode == 1, args
        assert f"error [home.not_a_folder] the home {a_file} is a file" in result.stderr, args
        assert "Traceback" not in result.stderr

    missing = tmp_path / "typo"
    for args in (["status"], ["documents", "list"], ["keys", "list"], ["keys", "revoke", "abc"], ["reindex"]):
        result = fathom_cli(*args, "--home", str(missing), home=tmp_path / "unused", check=False)
        assert result.returncode == 1, args
        assert f"error [home.not_found] no fathom home at {missing}" in result.stderr, args
        assert "Traceback" not in result.stderr
    searched = fathom_cli("search", "x", "--home", str(missing), home=tmp_path / "unused", check=False)
    assert "error [store.empty] no documents yet" in searched.stderr
    assert not missing.exists() and not (tmp_path / "unused").exists()


def test_serve_prints_its_addresses_on_start(tmp_path: Path):
    import httpx

    home = tmp_path / "home"
    process = subprocess.Popen(
        [sys.executable, "-m", "fathom", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=_env(home),
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(
            r"fathom serve: web page (http://127\.0\.0\.1:\d+)/  API \1/v1  docs \1/docs  MCP \1/mcp\n", first
        )
        assert match, first
        base = match.group(1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                page = httpx.get(f"{base}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        refused = fathom_cli("serve", "--port", port, home=home, check=False)
    assert (
        refused.returncode == 1
        and "error [serve.cannot_listen] cannot listen on 127.0.0.1:" in refused.stderr
    )
    assert "Traceback" not in refused.stderr


def _documents(home: Path) -> int:
    try:
        with sqlite3.connect(f"file:{home / 'fathom.db'}?mode=ro", uri=True, timeout=5) as db:
            return int(db.execute("select count(*) from documents").fetchone()[0])
    except sqlite3.Error:
        return 0


def test_ctrl_c_during_ingest_keeps_what_was_stored_and_says_how_to_resume(tmp_path: Path):
    home, folder = tmp_path / "home", tmp_path / "many"
    folder.mkdir()
    paragraph = "Harbour pilots board the ships at the outer buoy before the tide turns. " * 30
    for i in range(400):
        (folder / f"doc{i:03d}.md").write_text(f"# Doc {i}\n\n" + (paragraph + "\n\n") * 8, encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "fathom", "ingest", str(folder), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(home),
    )
    deadline = time.monotonic() + 240
    while _documents(home) == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the ingest finished before it could be interrupted"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    kept = _documents(home)
    assert 0 < kept < 400
    assert re.search(r"interrupted: \d+ documents? stored by this run are kept", stderr), stderr
    assert f"To resume, run the same command again (fathom ingest {folder} --no-progress)" in stderr
    assert "Traceback" not in stderr

    resumed = json.loads(fathom_cli("ingest", str(folder), "--json", home=home).stdout)["summary"]
    assert resumed["unchanged"] == kept and resumed["added"] == 400 - kept


def test_progress_shows_totals_and_rates_from_the_start(tmp_path: Path):
    home, folder = tmp_path / "home", tmp_path / "notes"
    _ingest_notes(folder, 30)
    status, output = in_terminal("ingest", str(folder), home=home)
    assert status == 0, output
    plain = _plain(output)
    assert "/?" not in plain
    files_lines = [line for line in plain.splitlines() if line.startswith("files")]
    assert files_lines and all("/30" in line for line in files_lines)  # the total from the first frame
    assert re.search(r"files .*30/30 +[\d,.]+/s", plain), plain
    # The chunks line gets its total as files are parsed: 30 one-chunk notes, 30 chunks.
    assert re.search(r"chunks .*30/30 +[\d,.]+/s", plain), plain


def test_help_has_no_type_noise():
    for args in (["ingest", "--help"], ["serve", "--help"], ["documents", "list", "--help"]):
        result = subprocess.run(
            [sys.executable, "-m", "fathom", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "COLUMNS": "100"},
            timeout=60,
            check=True,
        )
        assert "<bool>" not in result.stdout and "{" not in result.stdout and "<int" not in result.stdout
    ingest = subprocess.run(
        [sys.executable, "-m", "fathom", "ingest", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "[OPTIONS] PATHS..." in ingest
    reference = (Path(__file__).parents[1] / "docs" / "cli.md").read_text(encoding="utf-8")
    assert "<bool>" not in reference and "{paths}" not in reference
