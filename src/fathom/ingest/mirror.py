"""Mirror a folder into the store: once (``fathom sync``) or continuously (``--watch``)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from fathom.domain import FileOutcome, IngestReport
from fathom.errors import NotFound
from fathom.ingest.pipeline import ProgressCallback, iter_files
from fathom.store.database import Store

__all__ = ["FolderMirror"]

# Ingests files (unchanged ones are skipped) and reports each outcome.
IngestFiles = Callable[[list[Path], ProgressCallback | None], IngestReport]


class FolderMirror:
    """Adds new files, updates changed ones and deletes documents whose file is gone.

    Args:
        store: the store of record.
        tenant: the tenant the folder's documents belong to.
        ingest_files: ingests a list of files (the ingest pipeline, indexes caught up).
        catch_up: brings the search backend up to date after deletes.
        debounce_ms: quiet time before a burst of changes is applied (watching).
    """

    def __init__(
        self,
        store: Store,
        tenant: str,
        ingest_files: IngestFiles,
        catch_up: Callable[[], object],
        *,
        debounce_ms: int,
    ) -> None:
        self._store = store
        self._tenant = tenant
        self._ingest_files = ingest_files
        self._catch_up = catch_up
        self._debounce_ms = debounce_ms

    def sync(self, directory: str | Path, *, progress: ProgressCallback | None = None) -> IngestReport:
        """Make the store mirror ``directory``.

        Raises:
            NotFound: ``directory`` is not a folder (``sync.not_a_folder``).
        """
        root = Path(directory).expanduser().resolve()
        if not root.is_dir():
            raise NotFound(f"no folder {str(directory)!r}", code="sync.not_a_folder")
        files = list(iter_files(root))
        report = self._ingest_files(files, progress)
        present = {str(path.resolve()) for path in files if path.exists()}
        prefix = str(root) + os.sep
        for doc, _chunks in self._store.list_documents(self._tenant, source_prefix=prefix):
            if doc.source not in present:
                self._store.delete_document(self._tenant, doc.id)
                report.outcomes.append(FileOutcome(doc.source, "deleted", doc_id=doc.id))
        self._catch_up()
        return report

    def watch(
        self,
        directory: str | Path,
        on_report: Callable[[IngestReport], object],
        *,
        stop: threading.Event | None = None,
    ) -> None:
        """Mirror a folder continuously until ``stop`` is set (or the process is interrupted).

        Starts with a full :meth:`sync`, which is also what makes watching resumable: after
        a crash, the next start reconciles whatever changed meanwhile (unchanged files are
        skipped by content hash, each document commits alone). Then every burst of
        changes (create, modify, rename, delete), once quiet for ``debounce_ms``, is
        applied and reported through ``on_report``.
        """
        import watchfiles

        root = Path(directory).expanduser().resolve()
        on_report(self.sync(root))
        prefix = str(root) + os.sep
        for changes in watchfiles.watch(
            root,
            debounce=self._debounce_ms,
            step=min(50, max(1, self._debounce_ms)),
            stop_event=stop,
            recursive=True,
            raise_interrupt=False,
        ):
            touched: set[Path] = set()
            for _change, raw in changes:
                path = Path(raw)
                relative = path.relative_to(root) if path.is_relative_to(root) else path
                if any(part.startswith(".") for part in relative.parts):
                    continue
                touched.add(path)
            if touched:
                on_report(self._apply_changes(touched, prefix))

    def _apply_changes(self, paths: set[Path], prefix: str) -> IngestReport:
        """Ingest the changed paths that exist; delete documents of those that are gone."""
        existing: list[Path] = []
        for path in sorted(paths):
            if path.is_dir():
                existing.extend(iter_files(path))
            elif path.is_file():
                existing.append(path)
        report = self._ingest_files(existing, None)
        gone = {str(p) for p in paths if not p.exists()}
        if gone:
            for doc, _chunks in self._store.list_documents(self._tenant, source_prefix=prefix):
                if doc.source in gone or any(doc.source.startswith(g + os.sep) for g in gone):
                    self._store.delete_document(self._tenant, doc.id)
                    report.outcomes.append(FileOutcome(doc.source, "deleted", doc_id=doc.id))
            self._catch_up()
        return report
