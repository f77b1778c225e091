"""`fathom ingest --cluster ray`: the same store as a plain ingest, and nothing lost when a node dies.

What a user notices: ingesting on a Ray cluster (a local runtime, or a real 2-node cluster of
`ray start` processes on loopback addresses) stores the same documents, chunk texts, offsets and
embeddings as a plain ingest, and search answers the same. When a worker node is SIGKILLed in
the middle, the ingest still ends with every file either stored whole or reported failed by name,
and a rerun stores exactly what is missing; a driver killed mid-run is resumed by a rerun
without duplicates. Without Ray, `--cluster ray` says how to install it.

The CLI runs in subprocesses, as a user runs it. Ray is imported at the top of this module: it
must load before usearch (fathom.ingest.cluster.import_ray says why).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, text

from fathom import Fathom
from fathom.errors import ConfigError
from tests.conftest import require_shared
from tests.ingest.hostile import billion_laughs_docx, zip_bomb_docx

try:
    import ray  # noqa: F401  (before usearch: see the module docstring)
except ImportError:
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("ray is not installed (the cluster extra)", allow_module_level=True)

from fathom.testing.ray_cluster import LoopbackCluster, loopback_cluster

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HASH = "hash:64"
QUERIES = ["kubernetes upgrade rollback", "vacation policy for new staff", "expense report receipts"]
WORDS = [
    "kubernetes",
    "cluster",
    "upgrade",
    "rollback",
    "node",
    "drain",
    "vacation",
    "policy",
    "staff",
    "holiday",
    "expense",
    "report",
    "receipt",
    "travel",
    "budget",
    "invoice",
    "approval",
    "security",
    "incident",
    "response",
    "runbook",
    "database",
    "backup",
    "restore",
    "replica",
    "failover",
    "latency",
    "throughput",
    "index",
    "search",
    "ranking",
]


def fathom_cli(
    *args: str, home: Path, env: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in (env or os.environ).items() if not k.startswith("FATHOM_")}
    base.update({"FATHOM_HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", **(extra or {})})
    if env is None:
        base.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "fathom", *args],
        capture_output=True,
        text=True,
        env=base,
        timeout=240,
        check=False,
    )


def _report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode in (0, 3), result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _corpus(folder: Path, files: int, seed: int = 7) -> Path:
    """Text files of 1 to 12 paragraphs of topical words: a few chunks each."""
    rng = random.Random(seed)
    folder.mkdir()
    for i in range(files):
        paragraphs = [
            " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 90))) + "."
            for _ in range(rng.randint(1, 12))
        ]
        (folder / f"doc{i:04d}.txt").write_text(f"Note {i}\n\n" + "\n\n".join(paragraphs), encoding="utf-8")
    return folder


def _store_rows(where: Path | str) -> dict[str, dict[str, Any]]:
    """Per source: the document's hash and text, and its chunks in order (offsets, text, vector).

    ``where``: a home (its SQLite store) or a database URL.
    """
    url = where if isinstance(where, str) else f"sqlite:///{where / 'fathom.db'}"
    engine = create_engine(url)
    with engine.connect() as db:
        docs = db.execute(text("SELECT id, source, content_hash, text FROM documents")).fetchall()
        out: dict[str, dict[str, Any]] = {}
        for doc_id, source, content_hash, body in docs:
            chunks = db.execute(
                text(
                    "SELECT ordinal, start_offset, end_offset, text, embedding FROM chunks "
                    "WHERE doc_id = :doc ORDER BY ordinal"
                ),
                {"doc": doc_id},
            ).fetchall()
            out[source] = {
                "hash": content_hash,
                "text": body,
                "chunks": [(o, s, e, t) for o, s, e, t, _v in chunks],
                "vectors": np.stack([np.frombuffer(v, dtype=np.float32) for *_x, v in chunks])
                if chunks
                else np.zeros((0, 0)),
            }
    engine.dispose()
    return out


def _assert_same_store(plain: dict[str, dict[str, Any]], cluster: dict[str, dict[str, Any]]) -> None:
    assert sorted(cluster) == sorted(plain)
    for source, expected in plain.items():
        got = cluster[source]
        assert got["hash"] == expected["hash"], source
        assert got["text"] == expected["text"], source
        assert got["chunks"] == expected["chunks"], source
        assert got["vectors"].shape == expected["vectors"].shape, source
        assert np.abs(got["vectors"] - expected["vectors"]).max() <= 1e-4, source


def _search(home: Path, **settings: Any) -> list[list[tuple[str, int, int]]]:
    with Fathom(home=home, **settings) as fathom:
        return [[(h.source, h.start, h.end) for h in fathom.search(q, k=5)] for q in QUERIES]


def _assert_whole(home: Path) -> None:
    """No half-written document: every document's chunks are ordinals 0..n-1 and n >= 1."""
    with sqlite3.connect(home / "fathom.db") as db:
        rows = db.execute(
            "SELECT d.source, COUNT(c.id), COALESCE(MAX(c.ordinal), -1) FROM documents d "
            "LEFT JOIN chunks c ON c.doc_id = d.id GROUP BY d.id"
        ).fetchall()
        sources = [source for source, _n, _m in rows]
        assert len(sources) == len(set(sources)), "a source stored twice"
        for source, count, last in rows:
            assert count >= 1 and last == count - 1, source


# -- without ray, and with a wrong engine ------------------------------------------------------


def test_without_ray_the_option_says_how_to_install_it(tmp_path: Path):
    # A `ray` package that cannot be imported, first on the path: what a missing extra looks like.
    shadow = tmp_path / "shadow"
    (shadow / "ray").mkdir(parents=True)
    (shadow / "ray" / "__init__.py").write_text("raise ImportError('no ray here')\n")
    docs = _corpus(tmp_path / "docs", 2)
    src = str(Path(__file__).resolve().parents[2] / "src")
    result = fathom_cli(
        "ingest",
        "--cluster",
        "ray",
        str(docs),
        home=tmp_path / "home",
        extra={"PYTHONPATH": f"{shadow}:{src}"},
    )
    assert result.returncode != 0
    assert "pip install 'fathom-search[cluster]'" in result.stderr
    assert "cluster.ray_missing" in result.stderr
    assert not (tmp_path / "home" / "fathom.db").exists() or not _store_rows(tmp_path / "home")


def test_an_unknown_engine_is_refused_with_its_code(tmp_path: Path):
    with Fathom(home=tmp_path / "home", embedder=HASH) as fathom, pytest.raises(ConfigError) as caught:
        fathom.ingest([tmp_path], cluster="spark")
    assert caught.value.code == "cluster.unknown"


# -- a local runtime: same store, same search, as a plain ingest ----------------------------------


def test_local_runtime_gives_the_same_store_and_search_as_a_plain_ingest(tmp_path: Path):
    """The real packaged model on the smallest seeds document (to keep the test short)."""
    seeds = require_shared("corpus", "seeds")
    docs = tmp_path / "docs"
    docs.mkdir()
    for path in sorted(seeds.iterdir(), key=lambda p: p.stat().st_size)[:1]:
        (docs / path.name).write_bytes(path.read_bytes())
    # Poisoned files fail alone, with the same codes, in the cluster's parser sandbox too.
    billion_laughs_docx(docs / "laughs.docx")
    zip_bomb_docx(docs / "bomb.docx", megabytes=16)
    (docs / "empty.txt").write_text("")
    plain = _report(fathom_cli("ingest", "--json", str(docs), home=tmp_path / "plain"))
    cluster = _report(
        fathom_cli("ingest", "--json", "--cluster", "ray", str(docs), home=tmp_path / "cluster")
    )
    assert cluster["summary"] == plain["summary"]
    assert plain["summary"]["added"] == 1

    def codes(report: dict[str, Any]) -> dict[str, str | None]:
        return {Path(f["source"]).name: f["error_code"] for f in report["files"]}

    assert codes(cluster) == codes(plain)
    assert codes(cluster)["laughs.docx"] == "ingest.xml_entities"
    assert codes(cluster)["bomb.docx"] == "ingest.archive_limits"
    _assert_same_store(_store_rows(tmp_path / "plain"), _store_rows(tmp_path / "cluster"))
    assert _search(tmp_path / "cluster") == _search(tmp_path / "plain")
    # Unchanged files are skipped by the driver, as today.
    again = _report(fathom_cli("ingest", "--json", "--cluster", "ray", str(docs), home=tmp_path / "cluster"))
    assert again["summary"]["unchanged"] == 1 and again["summary"]["added"] == 0


# -- a real 2-node cluster: a worker node killed mid-run -------------------------------------------


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[LoopbackCluster]:
    with loopback_cluster(2, (2,)) as cluster:
        yield cluster


def _ensure_two_nodes(cluster: LoopbackCluster) -> None:
    if len(cluster.nodes) < 2:
        cluster.add_node(2)


def _wait_for_documents(home: Path, at_least: int, process: subprocess.Popen[str], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(home / "fathom.db", timeout=5) as db:
                count = int(db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])
        except sqlite3.Error:
            count = 0
        if count >= at_least:
            return count
        time.sleep(0.05)
    return -1


def _spawn_ingest(docs: Path, home: Path, env: Mapping[str, str]) -> subprocess.Popen[str]:
    full = {k: v for k, v in env.items() if not k.startswith("FATHOM_")}
    full.update({"FATHOM_HOME": str(home), "FATHOM_EMBEDDER": HASH})
    return subprocess.Popen(
        [sys.executable, "-m", "fathom", "ingest", "--json", "--cluster", "ray", str(docs)],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_worker_node_killed_mid_ingest_loses_nothing(two_nodes: LoopbackCluster, tmp_path: Path):
    _ensure_two_nodes(two_nodes)
    docs = _corpus(tmp_path / "docs", 240)
    plain_home = tmp_path / "plain"
    plain = _report(
        fathom_cli("ingest", "--json", str(docs), home=plain_home, extra={"FATHOM_EMBEDDER": HASH})
    )
    assert plain["summary"]["added"] == 240

    home = tmp_path / "cluster"
    process = _spawn_ingest(docs, home, two_nodes.env)
    committed = _wait_for_documents(home, 20, process, timeout=120)
    assert committed > 0, "the ingest ended before a node could be killed"
    assert two_nodes.kill_node(two_nodes.nodes[-1]) > 0
    stdout, stderr = process.communicate(timeout=240)
    first = _report(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    statuses = {f["status"] for f in first["files"]}
    assert statuses <= {"added", "failed"}
    failed = {f["source"] for f in first["files"] if f["status"] == "failed"}
    assert all(f["error_code"] == "ingest.cluster_failed" for f in first["files"] if f["status"] == "failed")
    assert first["summary"]["added"] + len(failed) == 240
    _assert_whole(home)
    # What the report calls failed is exactly what is missing from the store.
    assert set(_store_rows(home)) == set(_store_rows(plain_home)) - failed

    rerun = _report(
        fathom_cli(
            "ingest",
            "--json",
            "--cluster",
            "ray",
            str(docs),
            home=home,
            env=two_nodes.env,
            extra={"FATHOM_EMBEDDER": HASH},
        )
    )
    assert rerun["summary"]["added"] == len(failed)
    assert rerun["summary"]["unchanged"] == 240 - len(failed)
    _assert_whole(home)
    _assert_same_store(_store_rows(plain_home), _store_rows(home))
    assert _search(home, embedder=HASH) == _search(plain_home, embedder=HASH)


def test_a_killed_driver_is_resumed_by_a_rerun_without_duplicates(two_nodes: LoopbackCluster, tmp_path: Path):
    _ensure_two_nodes(two_nodes)
    docs = _corpus(tmp_path / "docs", 160, seed=11)
    home = tmp_path / "cluster"
    process = _spawn_ingest(docs, home, two_nodes.env)
    committed = _wait_for_documents(home, 10, process, timeout=120)
    assert committed > 0, "the ingest ended before the driver could be killed"
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    _assert_whole(home)
    stored = len(_store_rows(home))
    assert 0 < stored < 160

    rerun = _report(
        fathom_cli(
            "ingest",
            "--json",
            "--cluster",
            "ray",
            str(docs),
            home=home,
            env=two_nodes.env,
            extra={"FATHOM_EMBEDDER": HASH},
        )
    )
    assert rerun["summary"]["unchanged"] == stored
    assert rerun["summary"]["added"] == 160 - stored
    _assert_whole(home)
    plain_home = tmp_path / "plain"
    _report(fathom_cli("ingest", "--json", str(docs), home=plain_home, extra={"FATHOM_EMBEDDER": HASH}))
    _assert_same_store(_store_rows(plain_home), _store_rows(home))

    # `fathom sync --cluster ray` mirrors the folder: a changed file is re-ingested on the
    # cluster, a removed one deleted, the rest left alone.
    (docs / "doc0000.txt").unlink()
    (docs / "doc0001.txt").write_text("A rewritten note about the kubernetes rollback runbook.")
    synced = _report(
        fathom_cli(
            "sync",
            "--json",
            "--cluster",
            "ray",
            str(docs),
            home=home,
            env=two_nodes.env,
            extra={"FATHOM_EMBEDDER": HASH},
        )
    )
    assert synced["summary"]["deleted"] == 1
    assert synced["summary"]["updated"] == 1
    assert synced["summary"]["unchanged"] == 158
    _assert_whole(home)


def test_postgres_backend_through_the_cluster_matches_a_plain_ingest(
    two_nodes: LoopbackCluster, local_postgres: Any, tmp_path: Path
):
    """The postgres backend (its writers commit in parallel) fed by the 2-node cluster stores
    and searches like a plain ingest into the postgres backend."""
    from tests.pg import fresh_database

    _ensure_two_nodes(two_nodes)
    docs = _corpus(tmp_path / "docs", 120, seed=5)
    with fresh_database(local_postgres) as plain_url, fresh_database(local_postgres) as cluster_url:
        homes = {"plain": (tmp_path / "plain", plain_url), "cluster": (tmp_path / "cluster", cluster_url)}
        for name, (home, url) in homes.items():
            extra = {"FATHOM_EMBEDDER": HASH, "FATHOM_DATABASE_URL": url, "FATHOM_INDEX_BACKEND": "postgres"}
            args = ["ingest", "--json", *(["--cluster", "ray"] if name == "cluster" else []), str(docs)]
            report = _report(fathom_cli(*args, home=home, env=two_nodes.env, extra=extra))
            assert report["summary"]["added"] == 120
        rows = {name: _store_rows(url) for name, (_home, url) in homes.items()}
        _assert_same_store(rows["plain"], rows["cluster"])
        searches = [
            _search(home, embedder=HASH, database_url=url, index_backend="postgres")
            for home, url in homes.values()
        ]
        # pgvector's HNSW graph depends on the order rows arrived in (the cluster commits in
        # completion order), so near-ties among these look-alike notes may swap places: the
        # same passages come back, the best first.
        for plain_hits, cluster_hits in zip(*searches, strict=True):
            assert cluster_hits[0] == plain_hits[0], (plain_hits, cluster_hits)
            assert len(set(cluster_hits) & set(plain_hits)) >= 4, (plain_hits, cluster_hits)
