"""``fathom audit``: export the audit trail and verify its hash chains (docs/audit.md).

Both read the store of record directly (no indexes, no model), and import it only when they run.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from fathom.cli_common import EXIT_FAILED, HomeOption, JsonOption, errors, out
from fathom.cli_output import print_error
from fathom.errors import InvalidQuery

if TYPE_CHECKING:
    from fathom.store.audit import AuditLog

__all__ = ["audit_app"]

audit_app = typer.Typer(
    name="audit",
    help="The audit trail: who searched, asked, changed or deleted what (hash-chained per tenant).",
    no_args_is_help=True,
)

_AGO = re.compile(r"^(\d+)([dhm])$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class ExportFormat(StrEnum):
    jsonl = "jsonl"


def parse_moment(value: str, option: str) -> datetime:
    """An ISO 8601 time (UTC unless it has an offset) or an age such as ``7d``, ``12h``, ``30m``.

    Raises:
        InvalidQuery: neither (code ``audit.invalid_time``).
    """
    ago = _AGO.match(value.strip())
    if ago:
        return datetime.now(UTC) - timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidQuery(
            f"{option} must be an ISO 8601 time (2026-12-01T09:00:00Z) or an age such as 7d, 12h or 30m",
            code="audit.invalid_time",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@contextmanager
def _open(home: Path | None) -> Iterator[AuditLog]:
    from fathom.config import load_settings
    from fathom.store.audit import AuditLog
    from fathom.store.database import Store

    settings = load_settings(home)
    store = Store(settings.resolved_database_url, lock_dir=settings.home)
    try:
        yield AuditLog(store, settings)
    finally:
        store.close()


@audit_app.command("export")
def audit_export(
    since: Annotated[
        str, typer.Option("--since", help="From this time on: ISO 8601 or an age (7d, 12h, 30m).")
    ],
    until: Annotated[str | None, typer.Option("--until", help="Before this time (same forms).")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant (default: all).")] = None,
    action: Annotated[str | None, typer.Option("--action", help="Only this action, e.g. search.")] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only this key id, token subject or user.")
    ] = None,
    output_format: Annotated[
        ExportFormat, typer.Option("--format", help="jsonl: one JSON event per line, oldest first.")
    ] = ExportFormat.jsonl,
    home: HomeOption = None,
) -> None:
    """Print audit events as JSON lines (never document text, keys or tokens)."""
    with errors():
        start = parse_moment(since, "--since")
        end = parse_moment(until, "--until") if until is not None else None
        with _open(home) as log:
            events = log.stream(tenant=tenant, since=start, until=end, actor=actor, action=action)
            for record in events:
                sys.stdout.write(json.dumps(record.to_dict(), ensure_ascii=False, sort_keys=True) + "\n")
    sys.stdout.flush()


@audit_app.command("verify")
def audit_verify(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's chain.")] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check every tenant's hash chain; exit 1 at the first modified or missing event.

    Prints each chain's head (sequence and hash): kept elsewhere, it also shows later removal
    of the newest events or a rewrite of the whole chain.
    """
    with errors(), _open(home) as log:
        report = log.verify(tenant)
    broken = report.broken
    if as_json:
        heads = {t or None: {"seq": seq, "hash": digest} for t, (seq, digest) in report.heads.items()}
        body = {
            "ok": report.ok,
            "events": report.events,
            "heads": [{"tenant": t, **head} for t, head in heads.items()],
            "broken": None
            if broken is None
            else {
                "tenant": broken.tenant or None,
                "seq": broken.seq,
                "id": broken.event_id,
                "reason": broken.reason,
            },
        }
        out.print_json(json.dumps(body))
    else:
        for name, (seq, digest) in sorted(report.heads.items()):
            out.print(f"{escape(name or '(no tenant)')}: {seq} events, head {digest}", highlight=False)
    if broken is not None:
        print_error("audit.broken", broken.message())
        raise typer.Exit(EXIT_FAILED)
    if not as_json:
        out.print(f"ok: {report.events} events, {len(report.heads)} chains intact", highlight=False)
