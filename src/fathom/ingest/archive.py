"""Guarded reading of ZIP-based documents (DOCX, XLSX, PPTX).

Before any Office parser sees an archive, every entry is decompressed here under
caps on the number of entries, the total bytes actually decompressed (not the sizes
the archive claims) and the compression ratio; XML parts that declare a DTD or
entities are refused (no Office format needs them, and they are how billion-laughs
and external-entity attacks start). The parser then reads a rebuilt, uncompressed
copy holding exactly the bytes that were checked.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from fathom.errors import IngestError

__all__ = ["ArchiveLimits", "checked_archive"]

_READ_CHUNK = 64 * 1024
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Caps applied to a ZIP-based document before it is parsed."""

    max_entries: int = 10_000
    max_bytes: int = 200 * 1024 * 1024
    max_ratio: float = 100.0


def _limit_error(what: str) -> IngestError:
    return IngestError(
        f"the document archive {what} (a zip bomb?); it was not parsed", code="ingest.archive_limits"
    )


def checked_archive(data: bytes, limits: ArchiveLimits) -> bytes:
    """Decompress every entry of ``data`` under ``limits``; return a stored (uncompressed) copy.

    Raises:
        IngestError: ``ingest.archive_limits`` when a cap is exceeded,
            ``ingest.xml_entities`` when an XML part declares a DTD or entities,
            ``ingest.malformed_archive`` when the archive cannot be read.
    """
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # zipfile raises many kinds for a damaged archive
        raise IngestError("the document archive is damaged", code="ingest.malformed_archive") from exc
    out = io.BytesIO()
    budget = [limits.max_bytes]
    with archive, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as rebuilt:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise _limit_error(f"has more than {limits.max_entries} entries")
        seen: set[str] = set()
        for info in infos:
            # An empty name made ZipInfo.is_dir() raise IndexError (found by fuzzing).
            if not info.filename or info.filename.endswith("/") or info.filename in seen:
                continue
            seen.add(info.filename)
            try:
                content = _read_entry(archive, info, limits, budget)
            except IngestError:
                raise
            except Exception as exc:  # zipfile and zlib raise many kinds for damaged data
                raise IngestError(
                    "the document archive is damaged or encrypted", code="ingest.malformed_archive"
                ) from exc
            if info.filename.endswith((".xml", ".rels", ".vml")) and _declares_dtd(content):
                raise IngestError(
                    "the document contains XML with a DTD or entity declarations; refused for safety",
                    code="ingest.xml_entities",
                )
            rebuilt.writestr(info.filename, content)
        total = limits.max_bytes - budget[0]
        if total > 1_000_000 and total > limits.max_ratio * len(data):
            raise _limit_error(f"expands more than {limits.max_ratio:g} times its size")
    return out.getvalue()


def _read_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: ArchiveLimits, budget: list[int]
) -> bytes:
    """Decompress one entry, counting real bytes against the archive's remaining ``budget``."""
    parts: list[bytes] = []
    entry_bytes = 0
    with archive.open(info) as stream:
        while block := stream.read(_READ_CHUNK):
            entry_bytes += len(block)
            budget[0] -= len(block)
            if budget[0] < 0:
                raise _limit_error(f"expands to more than {limits.max_bytes} bytes")
            if entry_bytes > 1_000_000 and entry_bytes > limits.max_ratio * max(info.compress_size, 1):
                raise _limit_error(f"has an entry compressed more than {limits.max_ratio:g}:1")
            parts.append(block)
    return b"".join(parts)


def _declares_dtd(content: bytes) -> bool:
    """A DTD must come before the root element, so the head of the part is enough."""
    head = content[:65536]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", errors="replace").encode("utf-8")
    return _DTD.search(head) is not None
