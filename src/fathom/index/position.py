"""Durable record of the last change-log sequence an index applied."""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["read_position", "write_position"]


def read_position(path: Path) -> int:
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["sequence"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return 0


def write_position(path: Path, sequence: int) -> None:
    """Atomically replace the position file (write, fsync, rename)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump({"sequence": sequence}, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
