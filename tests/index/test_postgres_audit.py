"""The audit chain on PostgreSQL: appenders in several threads and two stores (as two servers
would be), with documents written in parallel transactions, never fork a tenant's chain; and
`fathom audit verify` finds a modified event."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import make_url
from typer.testing import CliRunner

from fathom import Fathom
from fathom.cli import app as cli_app
from fathom.store.audit import AuditEvent

pytestmark = [pytest.mark.integration]


def _open(home: Path, url: str) -> Fathom:
    return Fathom(home=home, embedder="hash:64", database_url=url, index_backend="postgres")


def test_the_chain_holds_under_concurrent_appends_and_verify_finds_a_modified_event(
    tmp_path: Path, pg_url: str
):
    errors: list[BaseException] = []
    with _open(tmp_path / "a", pg_url) as first, _open(tmp_path / "b", pg_url) as second:

        def append(instance: Fathom, tenant: str, n: int) -> None:
            try:
                for i in range(15):
                    instance.audit.record(AuditEvent(tenant, "search", details={"thread": n, "i": i}))
            except BaseException as exc:  # reported below
                errors.append(exc)

        def ingest(instance: Fathom, n: int) -> None:
            try:
                for i in range(4):
                    instance.ingest_text(
                        f"# Page {n}-{i}\n\nBadges are renewed in spring {n} {i}.", source=f"p{n}-{i}.md"
                    )
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=append, args=(instance, tenant, n))
            for n, (instance, tenant) in enumerate(
                [(first, "default"), (second, "default"), (first, "globex"), (second, "default")]
            )
        ]
        threads += [
            threading.Thread(target=ingest, args=(instance, n)) for n, instance in enumerate((first, second))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []

        report = first.audit.verify()
        assert report.ok, report.broken
        default = first.audit.events(tenant="default", limit=None)
        assert len(default) == 3 * 15 + 2 * 4  # searches, and a document.create per page
        assert [e.seq for e in default] == list(range(1, len(default) + 1))
        assert report.heads["globex"][0] == 15

        victim = default[10]
    parts = make_url(pg_url)
    with psycopg.connect(
        host=parts.host, port=parts.port, user=parts.username, dbname=parts.database, autocommit=True
    ) as conn:
        conn.execute("UPDATE audit_events SET outcome = 'denied' WHERE id = %s", (victim.id,))
    result = CliRunner().invoke(
        cli_app, ["audit", "verify", "--home", str(tmp_path / "a")], env={"FATHOM_DATABASE_URL": pg_url}
    )
    assert result.exit_code == 1
    assert f"tenant default: event {victim.seq} (id {victim.id}) was modified" in result.output
