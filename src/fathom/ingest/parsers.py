"""Parsers: bytes of one format in, a :class:`ParsedDocument` out.

The format comes from the bytes (:mod:`fathom.ingest.detect`), never the name
alone. Plain text and Markdown keep their text as written (so a quote from the
file is found verbatim) and are parsed here; HTML, PDF, Office, record formats
and e-mail are rebuilt from their structure by their own modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePath

from fathom.errors import IngestError
from fathom.ingest.archive import ArchiveLimits
from fathom.ingest.clean import clean_text, unusual_characters
from fathom.ingest.detect import (
    CSV,
    DOCX,
    EML,
    HTML,
    JSON,
    MARKDOWN,
    PDF,
    PPTX,
    TEXT,
    XLSX,
    decode_text,
    detect_format,
)
from fathom.ingest.document import Block, BlockKind, ParsedDocument
from fathom.ingest.ocr import OcrOptions

__all__ = ["ParseOptions", "parse_bytes"]

DEFAULT_JSON_TEXT_FIELDS = ("text", "body", "content", "abstract", "description", "summary")


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """What parsers may be told: record field names, archive caps and OCR."""

    json_text_fields: tuple[str, ...] = DEFAULT_JSON_TEXT_FIELDS
    json_title_field: str = "title"
    archive: ArchiveLimits = field(default_factory=ArchiveLimits)
    ocr: OcrOptions = field(default_factory=OcrOptions)


def parse_bytes(data: bytes, name: str, options: ParseOptions | None = None) -> ParsedDocument:
    """Detect the format of ``data`` and parse it; ``name`` supplies a fallback title.

    Raises:
        IngestError: the content cannot be turned into text (each subclass says why).
    """
    options = options or ParseOptions()
    safe_name = _display_name(name)
    mime = detect_format(data, PurePath(safe_name).suffix)
    parsed = _parse(mime, data, options)
    if not parsed.text.strip():
        raise IngestError("no text could be extracted from this file", code="ingest.no_text")
    if not parsed.title:
        parsed.title = PurePath(safe_name).stem or safe_name
    parsed.warnings.extend(unusual_characters(parsed.text))
    return parsed


def _display_name(name: str) -> str:
    """The last path component of a name, without NULs or control characters."""
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/")
    return PurePath(cleaned).name or "document"


def _parse(mime: str, data: bytes, options: ParseOptions) -> ParsedDocument:
    # Imported here so each worker only loads the libraries of the formats it meets.
    if mime == TEXT:
        return _parse_text(data)
    if mime == MARKDOWN:
        return _parse_markdown(data)
    if mime == HTML:
        from fathom.ingest.html import parse_html

        return parse_html(data)
    if mime == PDF:
        from fathom.ingest.pdf import parse_pdf

        return parse_pdf(data, options.ocr)
    if mime in (DOCX, PPTX, XLSX):
        from fathom.ingest import office

        parser = {DOCX: office.parse_docx, PPTX: office.parse_pptx, XLSX: office.parse_xlsx}[mime]
        return parser(data, options.archive)
    if mime == CSV:
        from fathom.ingest.records import parse_csv

        return parse_csv(data)
    if mime == JSON:
        from fathom.ingest.records import parse_json

        return parse_json(data, options.json_text_fields, options.json_title_field)
    if mime == EML:
        from fathom.ingest.mail import parse_eml

        return parse_eml(data)
    raise IngestError(f"no parser for {mime}", code="ingest.unsupported_format")


# -- plain text -----------------------------------------------------------------------

_TERMINAL = re.compile(r"[.!?;,]$")
_BULLET = re.compile(r"^\s*([-*•·▪◦]|\d+[.)]\s*$)")
_NUMBERED = re.compile(r"^\d+(\.\d+)*[.)]\s+\S")


def _text_heading_level(line: str, prev_blank: bool, next_blank: bool) -> int | None:
    """Heading level of a line of plain text, or None; a cautious heuristic.

    A short line standing alone between blank lines without closing punctuation is a
    title (level 1); a short unindented line ending in a colon opens a section (level
    2, or 3 when numbered, like ``1. API Overview:``).
    """
    stripped = line.strip()
    if not stripped or line[:1].isspace() or _BULLET.match(line) or len(stripped) > 90:
        return None
    words = stripped.split()
    if stripped.endswith(":") and len(words) <= 10 and ":" not in stripped[:-1].replace("://", ""):
        return 3 if _NUMBERED.match(stripped) else 2
    if (
        prev_blank
        and next_blank
        and len(words) <= 14
        and not _TERMINAL.search(stripped)
        and stripped[0].isupper()
        and not stripped.startswith(("©", "http"))
    ):
        return 1
    return None


def _parse_text(data: bytes) -> ParsedDocument:
    decoded = decode_text(data)
    text, cleaning = clean_text(decoded.text)
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    lines = text.split("\n")
    offset = 0
    para_start: int | None = None
    para_end = 0
    title = ""

    def flush() -> None:
        nonlocal para_start
        if para_start is not None:
            blocks.append(Block(para_start, para_end, "paragraph", tuple(h for _, h in headings)))
            para_start = None

    for i, line in enumerate(lines):
        start, end = offset, offset + len(line)
        offset = end + 1
        if not line.strip():
            flush()
            continue
        prev_blank = i == 0 or not lines[i - 1].strip()
        next_blank = i + 1 >= len(lines) or not lines[i + 1].strip()
        level = _text_heading_level(line, prev_blank, next_blank)
        if level is not None:
            flush()
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, line.strip().rstrip(":").strip()))
            blocks.append(Block(start, end, "heading", tuple(h for _, h in headings)))
            if not title and level == 1:
                title = headings[-1][1]
            continue
        if para_start is None:
            para_start = start
        para_end = end
    flush()
    if not title:
        title = next((line.strip() for line in lines if line.strip()), "")[:120]
    return ParsedDocument(title, text, blocks, TEXT, [*decoded.warnings, *cleaning])


# -- Markdown -------------------------------------------------------------------------

_ATX = re.compile(r"^(#{1,6})[ \t]+(.*?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_INLINE = re.compile(r"[*`]+|(?<!\w)_+|_+(?!\w)")


def _parse_markdown(data: bytes) -> ParsedDocument:
    decoded = decode_text(data)
    text, cleaning = clean_text(decoded.text)
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []
    offset = 0
    para_start: int | None = None
    para_end = 0
    kind: BlockKind = "paragraph"
    fence: str | None = None
    title = ""

    def path() -> tuple[str, ...]:
        return tuple(h for _, h in headings)

    def flush() -> None:
        nonlocal para_start
        if para_start is not None:
            blocks.append(Block(para_start, para_end, kind, path()))
            para_start = None

    for line in text.split("\n"):
        start, end = offset, offset + len(line)
        offset = end + 1
        if fence is not None:
            para_end = end
            if line.strip().startswith(fence):
                fence = None
                flush()
            continue
        fence_match = _FENCE.match(line)
        if fence_match:
            flush()
            fence, kind, para_start, para_end = fence_match.group(1), "code", start, end
            continue
        heading = _ATX.match(line)
        if heading:
            flush()
            level = len(heading.group(1))
            label = _MD_INLINE.sub("", heading.group(2)).strip()
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, label))
            blocks.append(Block(start, end, "heading", path()))
            if not title and level == 1:
                title = label
            continue
        if not line.strip():
            flush()
            continue
        if para_start is None:
            para_start, kind = start, "paragraph"
        para_end = end
    flush()
    if not title:
        first_heading = next((b for b in blocks if b.kind == "heading"), None)
        title = first_heading.heading_path[-1] if first_heading else ""
    return ParsedDocument(title, text, blocks, MARKDOWN, [*decoded.warnings, *cleaning])
