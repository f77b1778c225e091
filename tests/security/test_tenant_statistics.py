"""Ranking statistics are per tenant: another tenant's uploads never change a score.

With one BM25 index for every tenant, document frequencies counted other tenants' chunks, so a
tenant could watch its own scores move as another tenant ingested (an oracle for what others
write, and a way to push a competitor's results around).
"""

from __future__ import annotations

from pathlib import Path

from fathom import Fathom
from fathom.domain import Principal, TextDocument

OURS = [
    ("runbook.md", "# Failover\n\nPromote the replica when the primary database fails its health checks."),
    ("backup.md", "# Backups\n\nNightly backups of the database are kept for thirty days."),
    ("oncall.md", "# On call\n\nThe on-call engineer answers pages within fifteen minutes."),
]
FILLER = [
    (
        f"note{i}.md",
        f"# Note {i}\n\nThe database team met on day {i} about replica lag and thirty other topics.",
    )
    for i in range(12)
]
# Theirs repeat one of our query words, so a shared index would change its document frequency.
THEIRS = [(f"theirs{i}.md", f"Thirty thirty items, batch {i}.") for i in range(200)]
QUERIES = ["database failover replica", "backups kept thirty days", "on-call engineer pages"]


def _scores(fathom: Fathom, principal: Principal) -> list[list[tuple[str, float]]]:
    return [
        [(hit.source, hit.score) for hit in fathom.search(query, k=5, principal=principal)]
        for query in QUERIES
    ]


def test_another_tenants_ingest_changes_no_score(tmp_path: Path):
    home = tmp_path / "home"
    reader = Principal(tenant="acme", user="alice")
    with Fathom(home=home, embedder="hash:64", tenant="acme") as acme:
        for source, text in OURS + FILLER:
            acme.ingest_text(text, source=source)
        before = _scores(acme, reader)
        admin_before = _scores(acme, Principal(tenant="acme", admin=True))
        with Fathom(home=home, embedder="hash:64", tenant="globex") as globex:
            globex.ingest_texts(TextDocument(source=source, text=text) for source, text in THEIRS)
        after = _scores(acme, reader)
        admin_after = _scores(acme, Principal(tenant="acme", admin=True))
    for old, new in ((before, after), (admin_before, admin_after)):
        for old_hits, new_hits in zip(old, new, strict=True):
            assert [s for s, _ in old_hits] == [s for s, _ in new_hits]
            for (_, a), (_, b) in zip(old_hits, new_hits, strict=True):
                assert abs(a - b) <= 1e-6, (old_hits, new_hits)
