"""Vector search with usearch: an HNSW snapshot plus a small journaled delta.

Persistence is incremental so that a commit costs what it changed, not the size of
the index. On disk, next to ``dense.position``:

- ``dense.<generation>.usearch`` — a usearch snapshot, memory-mapped read-only when opened;
- ``dense.<generation>.journal`` — every batch applied since that snapshot, appended and
  fsynced before the batch's position is recorded (see :mod:`fathom.index.journal`).

In memory, batches since the snapshot live in an exact-searched *delta* (added vectors)
and a set of *tombstones* (snapshot keys removed or replaced). When the journal holds
``journal_limit`` entries, they are merged into the HNSW graph and written as the next
generation's snapshot (compaction). Searches merge the snapshot's and the delta's
results, so they see every applied batch. A crash at any point leaves either the old
generation or the new one complete; replaying the change log's tail repairs the rest.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, cast

import numpy as np
import structlog
from threadpoolctl import ThreadpoolController
from usearch.index import Index

from fathom.errors import ConfigError
from fathom.index.journal import JournalRecord, append_record, read_records, truncate
from fathom.index.position import read_position, write_position
from fathom.index.types import IndexableChunk, ScoredId

__all__ = ["AllowedChunks", "UsearchIndex"]


class AllowedChunks(Protocol):
    """The chunks a filter lets a query see, resolved lazily so no query costs O(corpus).

    Dense search asks for the cheap bound first, then either every id (a small set, ranked
    exactly) or which of its HNSW candidates pass (a large set).
    """

    def upper_bound(self) -> int:
        """At least as many chunks as pass the filter, computed without scanning them."""
        ...

    def count(self) -> int:
        """How many chunks pass (costs time in proportion to their number)."""
        ...

    def ids(self) -> list[int]:
        """Every chunk id that passes (costs time in proportion to their number)."""
        ...

    def keep(self, chunk_ids: Sequence[int]) -> set[int]:
        """The ids among ``chunk_ids`` that pass."""
        ...


# Query-time products run with one BLAS thread: a second thread saves about 0.4 ms on a
# 14k x 384 product, but OpenBLAS's idle threads then spin for milliseconds on the cores
# the next query's embedding needs (SciFact search p50 20 -> 14 ms on 2 cores).
_BLAS = ThreadpoolController()


def _one_blas_thread() -> contextlib.AbstractContextManager[object]:
    limited: contextlib.AbstractContextManager[object] = _BLAS.limit(limits=1, user_api="blas")
    return limited


log = structlog.get_logger(__name__)

# A filter passing at most this many chunks is counted (cheap below it) to learn whether
# it excludes anything at all.
_COUNT_LIMIT = 50_000
# A filter passing at most this many chunks has their vectors fetched and ranked exactly;
# above it the nearest candidates are checked against the filter, widening as needed.
_FETCH_LIMIT = 1_000
# Widening stops here and ranks the filter's chunks exactly when they are few enough.
_WIDEN_FACTOR = 64

Candidates = Callable[[int], list[ScoredId]]


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return cast(np.ndarray, vectors / np.where(norms == 0, 1.0, norms))


class _Delta:
    """Vectors added since the snapshot, searched exactly (kept unit-length)."""

    def __init__(self) -> None:
        self.rows: dict[int, int] = {}
        self.keys = np.zeros(0, dtype=np.uint64)
        self.vectors = np.zeros((0, 0), dtype=np.float32)
        self.alive = np.zeros(0, dtype=bool)
        self.used = 0

    def __len__(self) -> int:
        return len(self.rows)

    def remove(self, key: int) -> bool:
        row = self.rows.pop(key, None)
        if row is None:
            return False
        self.alive[row] = False
        return True

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        need = self.used + len(keys)
        if need > len(self.keys) or self.vectors.shape[1] != vectors.shape[1]:
            capacity = max(need, 2 * len(self.keys), 1024)
            grown = np.zeros((capacity, vectors.shape[1]), dtype=np.float32)
            if self.used:
                grown[: self.used] = self.vectors[: self.used]
            self.vectors = grown
            self.keys = np.concatenate([self.keys[: self.used], np.zeros(capacity - self.used, np.uint64)])
            self.alive = np.concatenate([self.alive[: self.used], np.zeros(capacity - self.used, bool)])
        self.vectors[self.used : need] = _unit(vectors)
        self.keys[self.used : need] = keys
        self.alive[self.used : need] = True
        for offset, key in enumerate(keys.tolist()):
            self.rows[int(key)] = self.used + offset
        self.used = need

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        mask = self.alive[: self.used]
        return self.keys[: self.used][mask], self.vectors[: self.used][mask]

    def ranked(self, query: np.ndarray) -> Candidates:
        """A candidate source: the ``want`` best live delta vectors, best first."""
        with _one_blas_thread():
            scores = self.vectors[: self.used] @ query if self.used else np.zeros(0, np.float32)
        scores = np.where(self.alive[: self.used], scores, -np.inf)
        live = int(self.alive[: self.used].sum())

        def take(want: int) -> list[ScoredId]:
            want = min(want, live)
            if want <= 0:
                return []
            top = np.argpartition(-scores, want - 1)[:want]
            top = top[np.argsort(-scores[top])]
            return [(int(self.keys[i]), float(scores[i])) for i in top]

        return take


class UsearchIndex:
    """The embedded dense index: a usearch HNSW snapshot and a journaled delta.

    Args:
        path: ``index/dense.usearch``; generation files are named after its stem.
        exact_below: below this many vectors the snapshot is searched exactly.
        journal_limit: vectors changed since the snapshot that trigger a compaction.
        threads: threads that merge vectors into the HNSW graph during a compaction.
    """

    name = "dense"

    def __init__(
        self, path: Path, *, exact_below: int = 50_000, journal_limit: int = 20_000, threads: int = 1
    ) -> None:
        self._path = path
        self._dir = path.parent
        self._stem = path.stem
        self._position_file = path.with_suffix(".position")
        self._exact_below = exact_below
        self._journal_limit = max(1, journal_limit)
        self._threads = max(1, threads)
        self._pattern = re.compile(rf"^{re.escape(self._stem)}\.(\d+)\.usearch$")
        self._lock = threading.RLock()
        self._reset(generation=0)
        self.refresh()

    # -- files ---------------------------------------------------------------------------

    def _snapshot_path(self, generation: int) -> Path:
        return self._dir / f"{self._stem}.{generation:08d}.usearch"

    def _journal_path(self, generation: int) -> Path:
        return self._dir / f"{self._stem}.{generation:08d}.journal"

    def _latest_generation(self) -> int:
        """The newest complete snapshot's generation (0 when there is none)."""
        try:
            names = os.listdir(self._dir)
        except FileNotFoundError:
            return 0
        generations = [int(m.group(1)) for n in names if (m := self._pattern.match(n))]
        if not generations and self._path.exists():
            # A home written before journaling: its single file becomes generation 1.
            with contextlib.suppress(FileNotFoundError):
                os.replace(self._path, self._snapshot_path(1))
            return 1
        return max(generations, default=0)

    def _fsync_dir(self) -> None:
        fd = os.open(self._dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # -- state ---------------------------------------------------------------------------

    def _reset(self, generation: int) -> None:
        self._generation = generation
        self._main: Index | None = None
        self._tombstones: set[int] = set()
        self._delta = _Delta()
        self._main_writable = False
        self._journal_size = 0
        self._dim: int | None = None
        self._loaded_sequence = -1

    def _load(self, sequence: int) -> None:
        generation = self._latest_generation()
        if generation != self._generation or self._loaded_sequence < 0:
            self._reset(generation)
            snapshot = self._snapshot_path(generation)
            if snapshot.exists():
                # Memory-mapped: opening costs no copy, and only the pages searches touch
                # become resident.
                self._main = Index.restore(str(snapshot), view=True)
                self._dim = None if self._main is None else int(self._main.ndim)
        self._read_journal()
        self._loaded_sequence = sequence

    def _read_journal(self) -> None:
        """Apply the journal's complete records past the offset read so far."""
        for record, end in read_records(self._journal_path(self._generation), self._journal_size):
            self._apply_record(record)
            self._journal_size = end

    def stale(self) -> bool:
        """Whether another process applied batches since we loaded (cheap: one small file read)."""
        return read_position(self._position_file) != self._loaded_sequence

    def refresh(self) -> None:
        """Pick up batches and compactions another process applied since we loaded."""
        with self._lock:
            sequence = read_position(self._position_file)
            if sequence != self._loaded_sequence or self._latest_generation() != self._generation:
                self._load(sequence)

    def _checked_dim(self, dim: int) -> None:
        if self._dim is not None and self._dim != dim:
            raise ConfigError(
                f"the dense index holds {self._dim}-dimensional vectors but the embedder makes "
                f"{dim}-dimensional ones; run `fathom reindex`"
            )

    def _apply_record(self, record: JournalRecord) -> None:
        fresh: list[int] = []
        for key in np.concatenate([record.removed, record.keys]).tolist():
            # A key in the delta has no live snapshot copy (it was tombstoned when added).
            if not self._delta.remove(key) and key not in self._tombstones:
                fresh.append(key)
        if self._main is not None and fresh:
            keys = np.asarray(fresh, dtype=np.uint64)
            present = keys[np.asarray(self._main.contains(keys), dtype=bool)]
            self._tombstones.update(int(k) for k in present)
        if len(record.keys):
            self._dim = int(record.vectors.shape[1])
            self._delta.add(record.keys, record.vectors)

    def _journal_full(self) -> bool:
        entries = len(self._delta) + len(self._tombstones)
        # Removes and re-adds of the same keys grow the file without growing the delta.
        bytes_limit = 2 * self._journal_limit * (16 + 4 * (self._dim or 0))
        return entries >= self._journal_limit or self._journal_size >= bytes_limit

    # -- writing -------------------------------------------------------------------------

    def applied_sequence(self) -> int:
        return read_position(self._position_file)

    def apply(self, removed: Sequence[int], added: Sequence[IndexableChunk], sequence: int) -> None:
        with self._lock:
            if self._latest_generation() != self._generation:
                self._load(read_position(self._position_file))
            else:
                # Complete records a killed writer appended without recording its position
                # are kept (a reader may have seen them); only a torn tail gets cut off.
                self._read_journal()
            if removed or added:
                vectors = (
                    np.stack([c.embedding for c in added]).astype(np.float32)
                    if added
                    else np.zeros((0, self._dim or 0), dtype=np.float32)
                )
                if added:
                    self._checked_dim(int(vectors.shape[1]))
                record = JournalRecord(
                    sequence=sequence,
                    removed=np.asarray(removed, dtype=np.uint64),
                    keys=np.asarray([c.chunk_id for c in added], dtype=np.uint64),
                    vectors=vectors,
                )
                self._dir.mkdir(parents=True, exist_ok=True)
                journal = self._journal_path(self._generation)
                self._journal_size = append_record(journal, record, self._journal_size)
                self._apply_record(record)
                if self._journal_full():
                    self._compact()
            # Recorded only once the batch is durable in the journal (or a snapshot): a
            # crash before this line replays the batch, which apply makes idempotent.
            write_position(self._position_file, sequence)
            self._loaded_sequence = sequence

    def _compact(self) -> None:
        """Merge the delta into the HNSW graph and write it as the next generation."""
        try:
            self._merge_and_save()
        except BaseException:
            # The in-memory graph may hold half a merge: start again from the disk.
            self._loaded_sequence = -1
            self._load(read_position(self._position_file))
            raise

    def rewrite(self) -> None:
        """Write the live vectors into a new graph and file, dropping every removed one.

        usearch marks a removed vector deleted but keeps its bytes in the graph it saves; a
        rebuilt graph holds only the vectors still present (``fathom compact``).
        """
        with self._lock:
            self._load(read_position(self._position_file))
            try:
                self._merge_and_save(rebuild=True)
            except BaseException:
                self._loaded_sequence = -1
                self._load(read_position(self._position_file))
                raise

    def _merge_and_save(self, *, rebuild: bool = False) -> None:
        keys, vectors = self._delta.live()
        main = self._main if self._main_writable else None
        if main is None and self._main is not None:
            # Readers map the snapshot read-only; the writer merges into a loaded copy.
            main = Index.restore(str(self._snapshot_path(self._generation)))
        if rebuild and main is not None and self._dim is not None:
            old_keys = np.asarray(main.keys, dtype=np.uint64)
            live = np.asarray([int(k) not in self._tombstones for k in old_keys.tolist()], dtype=bool)
            kept = old_keys[live]
            kept_vectors = (
                np.asarray(main.get(kept), dtype=np.float32).reshape(len(kept), self._dim)
                if len(kept)
                else np.zeros((0, self._dim), dtype=np.float32)
            )
            keys = np.concatenate([kept, np.asarray(keys, dtype=np.uint64)])
            vectors = np.concatenate(
                [kept_vectors, np.asarray(vectors, dtype=np.float32).reshape(-1, self._dim)]
            )
            main, self._tombstones = None, set()
        if main is None:
            if self._dim is None:
                return
            main = Index(ndim=self._dim, metric="cos", dtype="f32", multi=False)
        if self._tombstones:
            main.remove(np.asarray(sorted(self._tombstones), dtype=np.uint64))
        if len(keys):
            main.add(keys, vectors, threads=self._threads)
        generation = self._generation + 1
        snapshot = self._snapshot_path(generation)
        tmp = snapshot.with_suffix(".tmp")
        main.save(str(tmp))
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        truncate(self._journal_path(generation))
        os.replace(tmp, snapshot)
        self._fsync_dir()
        # The new generation is complete and durable: older ones (a crash may have left
        # more than one) are garbage.
        for name in os.listdir(self._dir):
            match = re.match(rf"^{re.escape(self._stem)}\.(\d+)\.(usearch|journal|tmp)$", name)
            if match and int(match.group(1)) < generation:
                (self._dir / name).unlink(missing_ok=True)
        log.debug("dense.compacted", generation=generation, vectors=len(main))
        # The writer keeps its in-memory copy (no re-read); readers map the new file.
        self._generation = generation
        self._main = main
        self._main_writable = True
        self._tombstones = set()
        self._delta = _Delta()
        self._journal_size = 0

    def clear(self) -> None:
        with self._lock:
            for name in os.listdir(self._dir) if self._dir.exists() else []:
                if name.startswith(f"{self._stem}.") and name.endswith((".usearch", ".journal", ".tmp")):
                    (self._dir / name).unlink(missing_ok=True)
            self._position_file.unlink(missing_ok=True)
            self._reset(generation=0)
            self._loaded_sequence = 0

    # -- reading -------------------------------------------------------------------------

    def size(self) -> int:
        main = 0 if self._main is None else int(len(self._main))
        return main - len(self._tombstones) + len(self._delta)

    def chunk_ids(self) -> set[int]:
        main = set() if self._main is None else {int(k) for k in np.asarray(self._main.keys)}
        return (main - self._tombstones) | set(self._delta.rows)

    def search(self, vector: np.ndarray, limit: int, allowed: AllowedChunks | None) -> list[ScoredId]:
        """Nearest chunks by cosine similarity, only among ``allowed`` unless it is None.

        None means the caller's filter passes every chunk of this index by construction (a
        tenant admin's query in a one-tenant index). The filter is never dropped because of
        what it or the index happens to count: counts taken from two structures can disagree
        while a change is being applied, and a dropped filter would return chunks it excludes.
        """
        with self._lock:
            if self.size() == 0 or limit <= 0:
                return []
            if self._dim is not None:
                self._checked_dim(len(vector))
            query = _unit(np.asarray(vector, dtype=np.float32))
            if (
                allowed is not None
                and allowed.upper_bound() <= _COUNT_LIMIT
                and allowed.count() <= _FETCH_LIMIT
            ):
                # A small allowed set is ranked exactly.
                return self._exact_among(query, allowed.ids(), limit)
            main = self._widening(self._main_candidates(query), limit, allowed, self._main_size())
            delta = self._widening(self._delta.ranked(query), limit, allowed, len(self._delta))
            if main is None or delta is None:
                # The filter is far more selective than its estimate: rank its chunks exactly.
                assert allowed is not None
                return self._exact_among(query, allowed.ids(), limit)
            hits = main + delta
            hits.sort(key=lambda pair: -pair[1])
            return hits[:limit]

    def _main_size(self) -> int:
        return 0 if self._main is None else int(len(self._main))

    def _main_candidates(self, query: np.ndarray) -> Candidates:
        main = self._main
        size = self._main_size()
        exact = size < self._exact_below

        def take(want: int) -> list[ScoredId]:
            if main is None or size == 0:
                return []
            matches = main.search(query, min(want, size), exact=exact, threads=1)
            return [
                (int(k), 1.0 - float(d))
                for k, d in zip(matches.keys, matches.distances, strict=True)
                if int(k) not in self._tombstones
            ]

        return take

    def _widening(
        self, candidates: Candidates, limit: int, allowed: AllowedChunks | None, size: int
    ) -> list[ScoredId] | None:
        """The ``limit`` best candidates that pass ``allowed``, fetching more until enough.

        None when a filter turns out to pass so few chunks that ranking them all exactly
        is cheaper than walking most of the graph.
        """
        want = limit * 2 if allowed is None else limit * 4
        while True:
            found = candidates(want)
            if allowed is not None and found:
                keep = allowed.keep([k for k, _ in found])
                found = [pair for pair in found if pair[0] in keep]
            if len(found) >= limit or want >= size:
                return found[:limit]
            if allowed is not None and want >= limit * _WIDEN_FACTOR and allowed.count() <= _COUNT_LIMIT:
                return None
            want *= 4

    def _exact_among(self, query: np.ndarray, ids: Sequence[int], limit: int) -> list[ScoredId]:
        """Rank exactly these chunk ids (those the index holds)."""
        if not ids:
            return []
        delta_rows = [self._delta.rows[k] for k in ids if k in self._delta.rows]
        main_keys = [k for k in ids if k not in self._delta.rows and k not in self._tombstones]
        keys: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        if delta_rows:
            rows = np.asarray(delta_rows)
            keys.append(self._delta.keys[rows])
            vectors.append(self._delta.vectors[rows])
        if main_keys and self._main is not None:
            wanted = np.asarray(main_keys, dtype=np.uint64)
            wanted = wanted[np.asarray(self._main.contains(wanted), dtype=bool)]
            if len(wanted):
                got = self._main.get(wanted, dtype="f32")
                keys.append(wanted)
                vectors.append(_unit(np.stack(cast(Sequence[np.ndarray], got))))
        if not keys:
            return []
        all_keys = np.concatenate(keys)
        with _one_blas_thread():
            scores = np.concatenate(vectors) @ query
        top = np.argsort(-scores)[:limit]
        return [(int(all_keys[i]), float(scores[i])) for i in top]
