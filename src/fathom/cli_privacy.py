"""``fathom compact`` (erase from files what deletes left behind) and ``fathom erase`` (one user's
data), described in docs/privacy.md."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from fathom.cli_common import HomeOption, JsonOption, errors, open_home, out

__all__ = ["compact", "erase"]


def compact(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Apply retention, then erase deleted data from every file: rewrite indexes, vacuum the store.

    Run it after deletes; searches wait while a partition is rewritten.
    """
    with errors():
        fathom = open_home(home, create=False)
        try:
            done = fathom.compact()
        finally:
            fathom.close()
    report = {
        "expired": done.expired,
        "partitions": done.partitions,
        "store": done.store.dialect,
        "vacuumed": done.store.vacuumed,
        "wal_frames_left": done.store.wal_frames_left,
        "busy": done.store.busy,
    }
    if as_json:
        out.print_json(json.dumps(report))
        return
    expired = ", ".join(f"{n} {kind}" for kind, n in done.expired.items() if n)
    if expired:
        out.print(f"past retention, removed: {expired}")
    out.print(
        f"compacted: {done.partitions} index partitions rewritten, {done.store.dialect} store vacuumed"
        + (", WAL checkpointed" if done.store.dialect == "sqlite" and not done.store.busy else "")
    )
    if done.store.busy:
        out.print("the WAL is still in use by another process: run `fathom compact` again once it is idle")


def erase(
    tenant: Annotated[str, typer.Option("--tenant", help="The user's tenant.")],
    user: Annotated[str, typer.Option("--user", help="The user whose data is erased.")],
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Erase a user's questions, answers, conversations and feedback (GDPR Art. 17); audited.

    The audit log records that the erasure happened and how many rows went, not what they held.
    Run `fathom compact` afterwards to clear the rows from the SQLite WAL (docs/privacy.md).
    """
    from fathom.store.erasure import erase_user

    with errors():
        fathom = open_home(home, create=False)
        try:
            counts = erase_user(fathom.store, tenant, user)
        finally:
            fathom.close()
    if as_json:
        out.print_json(json.dumps({"tenant": tenant, "user": user, **counts}))
        return
    out.print(
        f"erased {user} in {tenant}: {counts['conversations']} conversations, "
        f"{counts['answers']} answers, {counts['feedback']} feedback"
    )
