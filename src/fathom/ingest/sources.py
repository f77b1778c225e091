"""What ``fathom ingest`` is given: files, folders and URLs, sorted into what to read and fetch."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from fathom.config import Settings
from fathom.domain import FileOutcome
from fathom.ingest.fetch import FetchLimits
from fathom.ingest.pipeline import iter_files

__all__ = ["fetch_limits", "split_sources"]


def split_sources(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileOutcome], list[str]]:
    """The files to ingest (folders read recursively), a failed outcome per missing path, and the URLs."""
    files: list[Path] = []
    missing: list[FileOutcome] = []
    urls: list[str] = []
    for raw in paths:
        if isinstance(raw, str) and "://" in raw:
            urls.append(raw)
            continue
        path = Path(raw).expanduser()
        if not path.exists():
            missing.append(
                FileOutcome(
                    str(path.resolve()),
                    "failed",
                    error_code="ingest.not_found",
                    message="no such file or folder",
                )
            )
            continue
        files.extend(iter_files(path))
    return files, missing, urls


def fetch_limits(settings: Settings) -> FetchLimits:
    """The limits of URL ingestion under ``settings``."""
    return FetchLimits(
        allow=tuple(settings.url_allow),
        max_bytes=min(settings.url_max_bytes, settings.max_file_bytes),
        timeout_seconds=settings.url_timeout_seconds,
        max_redirects=settings.url_max_redirects,
    )
