"""PDF: the text layer page by page, with page numbers kept for citations.

Lines repeated at the top or bottom of most pages (running headers, footers,
page numbers) are removed. Pages without a text layer (scans) are read by OCR
when ``ocr = "auto"`` (:mod:`fathom.ingest.ocr`); otherwise a document with pages
but no text fails with ``ingest.no_text`` so it is reported instead of silently empty.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from pathlib import PurePath
from typing import Any

from fathom.errors import IngestError
from fathom.ingest.detect import PDF
from fathom.ingest.document import DocumentBuilder, ParsedDocument
from fathom.ingest.ocr import OcrOptions, OcrResult, ocr_pdf_pages

__all__ = ["parse_pdf", "strip_running_lines"]

_EDGE_LINES = 2
_DIGITS = re.compile(r"\d+")


def _unlock_pdf(reader: Any) -> None:
    from pypdf.errors import PdfReadError, WrongPasswordError

    if not reader.is_encrypted:
        return
    try:
        unlocked = reader.decrypt("")
    except (NotImplementedError, WrongPasswordError, PdfReadError, ValueError, KeyError, TypeError):
        unlocked = 0
    if not unlocked:
        raise IngestError(
            "the PDF is encrypted with a password; remove the password and ingest it again",
            code="ingest.encrypted_pdf",
        )


def _line_key(line: str) -> str:
    return _DIGITS.sub("#", " ".join(line.split()).lower())


def strip_running_lines(pages: list[str]) -> tuple[list[str], int]:
    """Remove lines that repeat at the top or bottom of most pages; returns pages and lines removed.

    Digits are ignored when comparing, so "Page 3 of 9" matches "Page 4 of 9".
    """
    if len(pages) < 3:
        return pages, 0
    split = [page.split("\n") for page in pages]
    counts: Counter[str] = Counter()
    for lines in split:
        content = [i for i, line in enumerate(lines) if line.strip()]
        edges = set(content[:_EDGE_LINES] + content[-_EDGE_LINES:])
        counts.update({_line_key(lines[i]) for i in edges})
    threshold = max(3, (len(pages) + 1) // 2)
    running = {key for key, n in counts.items() if n >= threshold and key}
    if not running:
        return pages, 0
    removed = 0
    out: list[str] = []
    for lines in split:
        content = [i for i, line in enumerate(lines) if line.strip()]
        edges = set(content[:_EDGE_LINES] + content[-_EDGE_LINES:])
        keep = []
        for i, line in enumerate(lines):
            if i in edges and _line_key(line) in running:
                removed += 1
                continue
            keep.append(line)
        out.append("\n".join(keep))
    return out, removed


# Titles that PDF producers write when the author gave none (reportlab writes "untitled", Word
# "Microsoft Word - report.docx"): not a title, so the first line or the file name is used instead.
_PLACEHOLDER_TITLE = re.compile(
    r"(?i)^(?:untitled(?:[\s_-]*\d+)?|untitled document|no title|title|document\d*|\(anonymous\)|"
    r"unknown|\s*)$"
)
_OFFICE_PREFIX = re.compile(r"(?i)^microsoft (?:word|powerpoint|excel) - ")


def _real_title(raw: str) -> str:
    """The metadata title when it names the document, else ""."""
    title = raw.strip()
    if _OFFICE_PREFIX.match(title):
        title = PurePath(_OFFICE_PREFIX.sub("", title)).stem.strip()
    return "" if _PLACEHOLDER_TITLE.match(title) else title


def parse_pdf(data: bytes, ocr: OcrOptions | None = None) -> ParsedDocument:
    """Parse PDF bytes; ``metadata["page_starts"]`` holds the text offset where each page begins.

    With ``ocr.mode == "auto"``, pages whose text layer is empty are rendered and read by
    OCR; ``metadata["ocr_pages"]`` counts them and a warning gives the time it took.
    """
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    damaged = (
        PyPdfError,  # includes PdfReadError, LimitReachedError (found by fuzzing: a page-tree loop)
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        RecursionError,
        AssertionError,
        OSError,
        ZeroDivisionError,
        NotImplementedError,
        UnicodeDecodeError,
        LookupError,
        OverflowError,
    )
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        _unlock_pdf(reader)
        pages = list(reader.pages)
        page_texts = [page.extract_text() or "" for page in pages]
        metadata_title = _real_title(
            str(reader.metadata.title) if reader.metadata and reader.metadata.title else ""
        )
    except IngestError:
        raise
    except damaged as exc:
        raise IngestError("the PDF is damaged and cannot be read", code="ingest.malformed_pdf") from exc
    if not pages:
        raise IngestError("the PDF has no pages", code="ingest.empty")
    read: OcrResult | None = None
    if ocr is not None and ocr.mode == "auto":
        empty = [i for i, page_text in enumerate(page_texts) if not page_text.strip()]
        if empty:
            read = ocr_pdf_pages(data, empty, ocr)
            for index, page_text in read.texts.items():
                page_texts[index] = page_text
    page_texts, running = strip_running_lines(page_texts)
    builder = DocumentBuilder()
    page_starts: list[int] = []
    for page_text in page_texts:
        page_starts.append(builder.next_offset)
        for paragraph in re.split(r"\n\s*\n", page_text):
            builder.block(paragraph.strip(), "table" if _looks_tabular(paragraph) else "paragraph")
    text = builder.text()
    if not text.strip():
        if read is not None:
            raise IngestError("the PDF has no text layer and OCR found no text in it", code="ingest.no_text")
        raise IngestError(
            'the PDF has no text layer (a scanned document?); OCR is not enabled (ocr = "auto" reads scans)',
            code="ingest.no_text",
        )
    first_line = text.strip().split("\n", 1)[0][:120]
    warnings = builder.removed.warnings()
    if running:
        warnings.append(f"removed {running} repeated header/footer line(s)")
    metadata: dict[str, Any] = {"pages": len(pages), "structure": {"page_starts": page_starts}}
    if read is not None and read.texts:
        count = len(read.texts)
        warnings.append(
            f"{count} page(s) read by OCR in {read.seconds:.1f} s ({read.seconds / count:.1f} s per page); "
            "OCR text may contain misread words"
        )
        metadata["ocr_pages"] = count
        metadata["ocr_seconds"] = round(read.seconds, 2)
        metadata["ocr_cpu_seconds"] = round(read.cpu_seconds, 2)
    return ParsedDocument(metadata_title or first_line, text, builder.blocks, PDF, warnings, metadata)


def _looks_tabular(paragraph: str) -> bool:
    """Several lines with column gaps: kept as one table block so its rows stay together."""
    lines = [line for line in paragraph.split("\n") if line.strip()]
    gapped = sum(1 for line in lines if re.search(r"\S {2,}\S", line.strip()))
    return len(lines) >= 3 and gapped >= len(lines) * 0.6
