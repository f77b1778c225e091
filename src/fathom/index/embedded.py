"""The embedded search backend: tantivy (BM25) and usearch (vectors) on the node, one pair per tenant.

On disk, under the home's ``index/`` folder::

    embedded.version            layout of this folder (another layout is cleared and rebuilt)
    embedded.position           the last change-log sequence applied to every partition
    tenants/<slug>/TENANT       the tenant's name (the slug is a hash of it)
    tenants/<slug>/lexical/     tantivy index of the tenant's chunks
    tenants/<slug>/dense.*      usearch snapshot and journal of the tenant's vectors

One partition per tenant makes isolation structural: a query reads only its tenant's
partition, so no count, race or filter bug can hand it another tenant's chunk, and BM25
statistics (document frequencies, lengths) are the tenant's own. Within a partition, ACL and
metadata filters are resolved inside the query: tantivy filters BM25 in its own query, and the
dense search ranks only the chunks the same tantivy snapshot lets through, under the partition's
lock, so a search sees both indexes at one applied batch.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import structlog

from fathom.index.backend import Candidates, SearchRequest
from fathom.index.dense import UsearchIndex
from fathom.index.lexical import TantivyIndex
from fathom.index.position import read_position, write_position
from fathom.index.types import IndexableChunk, ScoredId

__all__ = ["EmbeddedBackend"]

log = structlog.get_logger(__name__)

# Bumped when the folder's layout changes; another layout (or another choice of what the BM25
# body holds, ``lexical_context``) is removed on open and rebuilt by replaying the change log
# (version 1: one index pair per tenant; before it, one pair shared by every tenant).
_LAYOUT = "1"
# What earlier layouts left in the folder, removed when the layout changes.
_OLD_LAYOUT = ("lexical", "lexical.position", "lexical.version", "dense.position")


class _ReadWriteLock:
    """Many searches at once, or one writer alone (writers are not starved by a stream of reads)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._waiting_writers = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._waiting_writers:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._waiting_writers += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._waiting_writers -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


class _Partition:
    """One tenant's lexical and dense index, and the lock that keeps them one snapshot."""

    def __init__(self, tenant: str, lexical: TantivyIndex, dense: UsearchIndex) -> None:
        self.tenant = tenant
        self.lexical = lexical
        self.dense = dense
        self.lock = _ReadWriteLock()

    def refresh(self) -> None:
        """Pick up what another process applied to this partition's files."""
        if self.dense.stale():
            with self.lock.writing():
                self.lexical.refresh()
                self.dense.refresh()


def tenant_slug(tenant: str) -> str:
    """The folder name of a tenant's partition: a hash, so no tenant name reaches a path."""
    return hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:24]


class EmbeddedBackend:
    """tantivy + usearch per tenant under ``directory`` (see the module docstring).

    Args:
        directory: the home's ``index/`` folder.
        title_boost, heading_boost, context_in_body: lexical settings (see ``Settings``).
        exact_below, journal_limit, threads: dense settings (see ``Settings``).
    """

    name = "embedded"

    def __init__(
        self,
        directory: Path,
        *,
        title_boost: float = 0.0,
        heading_boost: float = 0.0,
        context_in_body: bool = True,
        exact_below: int = 50_000,
        journal_limit: int = 20_000,
        threads: int = 1,
    ) -> None:
        self._dir = directory
        self._tenants_dir = directory / "tenants"
        self._position_file = directory / "embedded.position"
        self._lexical_options = {
            "title_boost": title_boost,
            "heading_boost": heading_boost,
            "context_in_body": context_in_body,
        }
        self._dense_options = {"exact_below": exact_below, "journal_limit": journal_limit, "threads": threads}
        self._partitions: dict[str, _Partition] = {}
        self._open_lock = threading.Lock()
        self._dir.mkdir(parents=True, exist_ok=True)
        self._upgrade_layout()

    # -- layout ------------------------------------------------------------------------

    def _upgrade_layout(self) -> None:
        version_file = self._dir / "embedded.version"
        try:
            current = version_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            current = None
        layout = f"{_LAYOUT}-{'context' if self._lexical_options['context_in_body'] else 'text'}"
        if current == layout:
            return
        # Another layout: drop it, and replaying the change log from 0 rebuilds this one.
        for name in (*_OLD_LAYOUT, "tenants", "embedded.position"):
            path = self._dir / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        for path in self._dir.glob("dense.*"):
            path.unlink(missing_ok=True)
        if current is not None or any(self._dir.iterdir()):
            log.info("index.layout_changed", layout=layout)
        version_file.write_text(layout, encoding="utf-8")

    def _partition(self, tenant: str, *, create: bool) -> _Partition | None:
        partition = self._partitions.get(tenant)
        if partition is not None:
            return partition
        with self._open_lock:
            partition = self._partitions.get(tenant)
            if partition is not None:
                return partition
            folder = self._tenants_dir / tenant_slug(tenant)
            if not folder.exists():
                if not create:
                    return None
                folder.mkdir(parents=True)
                (folder / "TENANT").write_text(tenant, encoding="utf-8")
            partition = _Partition(
                tenant,
                TantivyIndex(folder / "lexical", **self._lexical_options),  # type: ignore[arg-type]
                UsearchIndex(folder / "dense.usearch", **self._dense_options),
            )
            self._partitions[tenant] = partition
            return partition

    def _all_partitions(self) -> list[_Partition]:
        if self._tenants_dir.exists():
            for folder in sorted(self._tenants_dir.iterdir()):
                try:
                    tenant = (folder / "TENANT").read_text(encoding="utf-8")
                except FileNotFoundError:
                    continue
                self._partition(tenant, create=False)
        return list(self._partitions.values())

    # -- writing -----------------------------------------------------------------------

    def applied_sequence(self) -> int:
        return read_position(self._position_file)

    def apply(self, removed: Mapping[int, str], added: Sequence[IndexableChunk], sequence: int) -> None:
        removed_by_tenant: dict[str, list[int]] = defaultdict(list)
        for chunk_id, tenant in removed.items():
            removed_by_tenant[tenant].append(chunk_id)
        added_by_tenant: dict[str, list[IndexableChunk]] = defaultdict(list)
        for chunk in added:
            added_by_tenant[chunk.tenant_id].append(chunk)
        for tenant in sorted(set(removed_by_tenant) | set(added_by_tenant)):
            partition = self._partition(tenant, create=bool(added_by_tenant.get(tenant)))
            if partition is None:  # removals from a tenant that was never indexed here
                continue
            gone = sorted(removed_by_tenant.get(tenant, ()))
            new = added_by_tenant.get(tenant, [])
            with partition.lock.writing():
                # Each index persists the batch before recording it; a crash in between is
                # repaired by replaying the batch, which removes before it adds.
                partition.lexical.apply(gone, new, sequence)
                partition.dense.apply(gone, new, sequence)
        write_position(self._position_file, sequence)

    def compact(self, chunks_of: Callable[[Sequence[int]], list[IndexableChunk]]) -> int:
        """Rewrite every partition from its live chunks so no deleted chunk stays in a file.

        ``chunks_of`` reads chunks from the store of record (ids gone from it are left out).
        Searches wait while a partition is rewritten. Returns the partitions rewritten.
        """
        partitions = self._all_partitions()
        for partition in partitions:
            with partition.lock.writing():
                live = chunks_of(sorted(partition.lexical.chunk_ids()))
                partition.lexical.rewrite(live)
                partition.dense.rewrite()
        return len(partitions)

    def clear(self) -> None:
        with self._open_lock:
            for partition in self._partitions.values():
                with partition.lock.writing():
                    partition.lexical.clear()
                    partition.dense.clear()
            self._partitions.clear()
            shutil.rmtree(self._tenants_dir, ignore_errors=True)
            self._position_file.unlink(missing_ok=True)

    def close(self) -> None:
        self._partitions.clear()

    # -- reading -----------------------------------------------------------------------

    def size(self) -> int:
        return sum(partition.dense.size() for partition in self._all_partitions())

    def chunk_ids(self) -> set[int]:
        """Every chunk id in every partition, after checking that both indexes hold the same ids."""
        ids: set[int] = set()
        for partition in self._all_partitions():
            partition.refresh()
            with partition.lock.reading():
                lexical, dense = partition.lexical.chunk_ids(), partition.dense.chunk_ids()
            if lexical != dense:
                log.warning("index.partition_mismatch", lexical=len(lexical), dense=len(dense))
            ids |= lexical | dense
        return ids

    def sizes(self) -> dict[str, int]:
        """Chunks in the lexical and in the dense indexes (all tenants), for ``fathom status``."""
        partitions = self._all_partitions()
        return {
            "lexical": sum(p.lexical.size() for p in partitions),
            "dense": sum(p.dense.size() for p in partitions),
        }

    def search(self, request: SearchRequest) -> Candidates:
        where = request.where
        partition = self._partition(where.tenant, create=False)
        if partition is None or request.depth <= 0:
            return Candidates([], [])
        partition.refresh()
        lexical: list[ScoredId] = []
        dense: list[ScoredId] = []
        with partition.lock.reading():
            started = time.perf_counter()
            searcher = partition.lexical.searcher()
            if request.text:
                lexical = partition.lexical.search(request.text, request.depth, where, searcher)
            lexical_done = time.perf_counter()
            if request.vector is not None:
                # The dense side ranks only what the same tantivy snapshot lets through; a query
                # whose filter cannot exclude any chunk of the tenant (an admin's, without
                # metadata terms) needs no filter in a one-tenant partition.
                allowed = (
                    partition.lexical.allowed(where, searcher) if where.restricts_within_tenant else None
                )
                dense = partition.dense.search(request.vector, request.depth, allowed)
            dense_done = time.perf_counter()
        return Candidates(
            lexical,
            dense,
            {"lexical": (lexical_done - started) * 1000, "dense": (dense_done - lexical_done) * 1000},
        )

    def document_frequencies(self, tenant: str, terms: Sequence[str]) -> tuple[int, dict[str, int]]:
        partition = self._partition(tenant, create=False)
        if partition is None:
            return 0, dict.fromkeys(terms, 0)
        return partition.lexical.document_frequencies(terms)
