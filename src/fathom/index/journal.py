"""An append-only, checksummed journal of dense-index changes since the last snapshot.

Each record is one applied batch: the change-log sequence it reaches, the keys it
removes and the keys and vectors it adds. A record is ``length | crc32 | payload``;
reading stops at the first record that is incomplete or fails its checksum, which is
what a process killed in the middle of an append leaves behind (a torn tail).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["JournalRecord", "append_record", "read_records", "truncate"]

_FRAME = struct.Struct("<II")  # payload length, crc32 of the payload
_HEAD = struct.Struct("<qIII")  # sequence, removed count, added count, dimension


@dataclass(frozen=True, slots=True)
class JournalRecord:
    """One applied batch: remove ``removed``, then add ``keys`` with ``vectors``."""

    sequence: int
    removed: np.ndarray  # uint64
    keys: np.ndarray  # uint64
    vectors: np.ndarray  # float32, shape (len(keys), dim)


def _encode(record: JournalRecord) -> bytes:
    removed = np.ascontiguousarray(record.removed, dtype="<u8")
    keys = np.ascontiguousarray(record.keys, dtype="<u8")
    vectors = np.ascontiguousarray(record.vectors, dtype="<f4")
    dim = int(vectors.shape[1]) if vectors.ndim == 2 and len(keys) else 0
    payload = b"".join(
        (
            _HEAD.pack(record.sequence, len(removed), len(keys), dim),
            removed.tobytes(),
            keys.tobytes(),
            vectors.tobytes() if len(keys) else b"",
        )
    )
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _decode(payload: bytes) -> JournalRecord | None:
    if len(payload) < _HEAD.size:
        return None
    sequence, n_removed, n_added, dim = _HEAD.unpack_from(payload)
    offset = _HEAD.size
    if len(payload) != offset + 8 * n_removed + 8 * n_added + 4 * n_added * dim:
        return None
    removed = np.frombuffer(payload, dtype="<u8", count=n_removed, offset=offset)
    offset += 8 * n_removed
    keys = np.frombuffer(payload, dtype="<u8", count=n_added, offset=offset)
    offset += 8 * n_added
    vectors = np.frombuffer(payload, dtype="<f4", count=n_added * dim, offset=offset).reshape(n_added, dim)
    return JournalRecord(
        sequence=int(sequence),
        removed=removed.astype(np.uint64),
        keys=keys.astype(np.uint64),
        vectors=vectors.astype(np.float32),
    )


def read_records(path: Path, start: int = 0) -> Iterator[tuple[JournalRecord, int]]:
    """Complete records from byte ``start`` on, each with the offset just after it.

    A missing file has no records. Reading stops silently at a torn or corrupt tail.
    """
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read()
    except FileNotFoundError:
        return
    offset = 0
    while offset + _FRAME.size <= len(data):
        length, checksum = _FRAME.unpack_from(data, offset)
        end = offset + _FRAME.size + length
        if end > len(data):
            return
        payload = data[offset + _FRAME.size : end]
        if zlib.crc32(payload) != checksum:
            return
        record = _decode(payload)
        if record is None:
            return
        yield record, start + end
        offset = end


def append_record(path: Path, record: JournalRecord, expected_size: int) -> int:
    """Durably append ``record`` after byte ``expected_size``; returns the new size.

    Anything past ``expected_size`` (a torn record a killed process left) is cut off
    first, so a new record never follows garbage.
    """
    data = _encode(record)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if os.fstat(fd).st_size != expected_size:
            os.ftruncate(fd, expected_size)
        os.lseek(fd, expected_size, os.SEEK_SET)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    return expected_size + len(data)


def truncate(path: Path) -> None:
    """Create ``path`` empty (or empty it), durably."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
