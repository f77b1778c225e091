"""``fathom compact``: erase from files what deletes left behind (docs/privacy.md)."""

from __future__ import annotations

import json

from fathom.cli_common import HomeOption, JsonOption, errors, open_home, out

__all__ = ["compact"]


def compact(home: HomeOption = None, as_json: JsonOption = False) -> None:
    """Apply retention, then erase deleted data from every file: rewrite indexes, vacuum the store.

    Run it after deletes; searches wait while a partition is rewritten.
    """
    with errors():
        fathom = open_home(home)
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
