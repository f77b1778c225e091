"""Read scaling with real PostgreSQL streaming replication (``database_replica_urls``).

A primary and a streaming replica (``pg_basebackup -R``) run as real PostgreSQL 18 processes;
nothing is mocked. Searches are routed to the replica, fall back to the primary when it is
behind this node's writes, and survive the replica being SIGKILLed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from sqlalchemy import make_url

from fathom import Fathom
from fathom.store.local_postgres import LocalPostgres
from fathom.telemetry import Attribute
from tests.pg import Replica, fresh_database, replicated_servers

pytestmark = [pytest.mark.integration]

PASSWORD = "not-a-real-s3cret"  # trust authentication ignores it; it must never be logged


class Counted:
    """A telemetry sink that keeps the counted events (the ones /metrics turns into counters)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, str]]] = []

    def stage_finished(self, name: str, seconds: float, attributes: Mapping[str, Attribute]) -> None:
        pass

    def counted(self, name: str, labels: Mapping[str, str]) -> None:
        self.events.append((name, dict(labels)))

    def take(self) -> list[tuple[str, dict[str, str]]]:
        events, self.events = self.events, []
        return events


@pytest.fixture(scope="module")
def replicated() -> Iterator[tuple[LocalPostgres, Replica]]:
    with replicated_servers() as servers:
        yield servers


@pytest.fixture
def database(replicated: tuple[LocalPostgres, Replica]) -> Iterator[tuple[str, str]]:
    """(primary URL, replica URL with a password in it) of a fresh database on both."""
    primary, replica = replicated
    with fresh_database(primary) as url:
        name = str(make_url(url).database)
        replica.wait_for(primary, name)  # CREATE DATABASE and the extension reached the replica
        replica_url = f"postgresql+psycopg://postgres:{PASSWORD}@127.0.0.1:{replica.server.port}/{name}"
        yield url, replica_url


def _node(home: Path, url: str, replica_url: str, max_lag_ms: float = 1000) -> tuple[Fathom, Counted]:
    fathom = Fathom(
        home=home,
        embedder="hash:64",
        database_url=url,
        index_backend="postgres",
        database_replica_urls=[replica_url],
        database_replica_retry_seconds=60,
        database_replica_max_lag_ms=max_lag_ms,
        log_json=True,
    )
    counted = Counted()
    fathom.telemetry.add_sink(counted)
    return fathom, counted


def _sources(fathom: Fathom, query: str) -> list[str]:
    return [hit.source for hit in fathom.search(query, k=5)]


def test_a_search_routed_to_the_replica_finds_a_document_committed_on_the_primary(
    replicated: tuple[LocalPostgres, Replica], database: tuple[str, str], tmp_path: Path
) -> None:
    primary, replica = replicated
    url, replica_url = database
    writer, counted = _node(tmp_path / "writer", url, replica_url)
    reader, reader_counted = _node(tmp_path / "reader", url, replica_url)  # a node that never writes
    try:
        writer.ingest_text("The otter cracks shells on its belly.", source="otters.md")
        replica.wait_for(primary, str(make_url(url).database))
        counted.take()
        assert _sources(writer, "otter shells") == ["otters.md"]
        assert _sources(reader, "otter shells") == ["otters.md"]
        # Both the ranking and the chunk read that follows it ran on the replica.
        for events in (counted.take(), reader_counted.take()):
            assert ("replica_read", {"target": "replica"}) in events, events
            assert ("replica_read", {"target": "primary"}) not in events, events
    finally:
        writer.close()
        reader.close()


def test_a_node_reads_its_own_writes_and_others_within_the_lag_bound_while_replay_is_paused(
    replicated: tuple[LocalPostgres, Replica], database: tuple[str, str], tmp_path: Path
) -> None:
    primary, replica = replicated
    url, replica_url = database
    name = str(make_url(url).database)
    hour = 3_600_000.0
    # A lag bound of an hour: only the fence on this node's own writes can send the writer's
    # search to the primary.
    writer, counted = _node(tmp_path / "writer", url, replica_url, max_lag_ms=hour)
    patient, patient_counted = _node(tmp_path / "patient", url, replica_url, max_lag_ms=hour)
    strict, strict_counted = _node(tmp_path / "strict", url, replica_url, max_lag_ms=0)
    try:
        replica.wait_for(primary, name)  # what opening the nodes wrote (their tables, if missing)
        with replica.server.connect(name) as conn:
            conn.execute("SELECT pg_wal_replay_pause()")
        try:
            writer.ingest_text("Herons wait in shallow water for fish.", source="herons.md")
            for events in (counted, patient_counted, strict_counted):
                events.take()
            # The replica has received the write but not replayed it.
            assert _sources(writer, "heron shallow water") == ["herons.md"]
            events = counted.take()
            assert ("replica_fallback", {"reason": "behind"}) in events, events
            assert ("replica_read", {"target": "primary"}) in events, events
            # Another node accepting an hour of lag reads the replica as it stands: not there yet.
            assert _sources(patient, "heron shallow water") == []
            assert ("replica_read", {"target": "replica"}) in patient_counted.take()
            # A node accepting no lag skips the replica that has WAL left to replay.
            assert _sources(strict, "heron shallow water") == ["herons.md"]
            events = strict_counted.take()
            assert ("replica_fallback", {"reason": "behind"}) in events, events
        finally:
            with replica.server.connect(name) as conn:
                conn.execute("SELECT pg_wal_replay_resume()")
        replica.wait_for(primary, name)
        for node, events in ((writer, counted), (patient, patient_counted), (strict, strict_counted)):
            assert _sources(node, "heron shallow water") == ["herons.md"]
            assert ("replica_read", {"target": "replica"}) in events.take()
    finally:
        for node in (writer, patient, strict):
            node.close()


def test_a_search_survives_its_replica_being_killed(
    replicated: tuple[LocalPostgres, Replica],
    database: tuple[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Last in this module: it kills the module's replica.
    primary, replica = replicated
    url, replica_url = database
    node, counted = _node(tmp_path / "node", url, replica_url)
    try:
        node.ingest_text("Beavers build dams and lodges from mud.", source="beavers.md")
        replica.wait_for(primary, str(make_url(url).database))
        assert _sources(node, "beavers dams") == ["beavers.md"]
        assert ("replica_read", {"target": "replica"}) in counted.take()
        capsys.readouterr()

        replica.kill()  # SIGKILL: pooled connections die, new ones are refused
        assert _sources(node, "beavers dams") == ["beavers.md"]  # no error: the primary answered
        events = counted.take()
        assert ("replica_fallback", {"reason": "down"}) in events, events
        assert ("replica_read", {"target": "replica"}) not in events, events
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
        unavailable = [line for line in lines if line.get("event") == "db.replica_unavailable"]
        assert len(unavailable) == 1, lines
        assert unavailable[0]["replica"] == f"127.0.0.1:{replica.server.port}/{make_url(url).database}"
        assert all(PASSWORD not in json.dumps(line) for line in lines)

        # Within the retry interval the dead replica is not tried again: straight to the primary.
        assert _sources(node, "beavers dams") == ["beavers.md"]
        events = counted.take()
        assert ("replica_fallback", {"reason": "down"}) not in events, events
        assert ("replica_read", {"target": "primary"}) in events, events
    finally:
        node.close()
