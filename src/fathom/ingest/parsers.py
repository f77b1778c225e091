"""Parsers: bytes of one format in, a :class:`ParsedDocument` out.

Plain text and Markdown keep their text as written (so a quote from the file is
found verbatim); HTML, PDF and DOCX are rebuilt from their structure.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable
from pathlib import PurePath
from typing import Any

from fathom.errors import IngestError
from fathom.ingest.clean import clean_text
from fathom.ingest.detect import DOCX, HTML, MARKDOWN, PDF, TEXT, decode_text, detect_format
from fathom.ingest.document import Block, BlockKind, DocumentBuilder, ParsedDocument

__all__ = ["parse_bytes"]

MAX_DOCX_UNCOMPRESSED = 200 * 1024 * 1024
MAX_DOCX_RATIO = 200


def parse_bytes(data: bytes, name: str) -> ParsedDocument:
    """Detect the format of ``data`` and parse it; ``name`` supplies a fallback title.

    Raises:
        IngestError: the content cannot be turned into text (each subclass says why).
    """
    suffix = PurePath(name).suffix
    mime = detect_format(data, suffix)
    parser = _PARSERS[mime]
    parsed = parser(data)
    if not parsed.text.strip():
        raise IngestError("no text could be extracted from this file", code="ingest.no_text")
    if not parsed.title:
        parsed.title = PurePath(name).stem or name
    return parsed


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


# -- HTML -----------------------------------------------------------------------------

_SKIP_TAGS = {
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "canvas",
    "button",
    "select",
    "head",
}
_BLOCK_TAGS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "pre",
    "blockquote",
    "table",
    "tr",
    "td",
    "th",
    "dt",
    "dd",
    "dl",
    "figure",
    "figcaption",
    "caption",
    "br",
    "hr",
    "address",
}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)


def _parse_html(data: bytes) -> ParsedDocument:
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, Tag

    decoded = decode_text(data)
    soup = BeautifulSoup(decoded.text, "lxml")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    builder = DocumentBuilder()
    buffer: list[str] = []
    hidden = 0

    def flush(kind: BlockKind = "paragraph") -> None:
        text = " ".join("".join(buffer).split())
        buffer.clear()
        if text:
            builder.block(text, kind)

    root = soup.body or soup
    # An explicit stack instead of recursion: deeply nested pages cannot exhaust the stack.
    stack: list[tuple[object, bool]] = [(child, False) for child in reversed(list(root.children))]
    while stack:
        node, closing = stack.pop()
        if closing:
            flush()
            continue
        if isinstance(node, NavigableString):
            if type(node) is NavigableString:  # skip comments, CDATA, doctype
                buffer.append(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name.lower()
        if name in _SKIP_TAGS:
            continue
        if (
            node.has_attr("hidden")
            or node.get("aria-hidden") == "true"
            or _HIDDEN_STYLE.search(str(node.get("style", "")))
        ):
            hidden += 1
            continue
        if re.fullmatch(r"h[1-6]", name):
            flush()
            builder.heading(int(name[1]), node.get_text(" ", strip=True))
            continue
        if name == "pre":
            flush()
            builder.block(node.get_text(), "code")
            continue
        if name in _BLOCK_TAGS:
            flush()
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node.children)))
    flush()
    if not title:
        first_heading = next((b for b in builder.blocks if b.kind == "heading"), None)
        title = first_heading.heading_path[-1] if first_heading and first_heading.heading_path else ""
    warnings = list(decoded.warnings)
    if hidden:
        warnings.append(f"dropped {hidden} hidden element(s)")
    return ParsedDocument(
        title, builder.text(), builder.blocks, HTML, [*warnings, *builder.removed.warnings()]
    )


# -- PDF ------------------------------------------------------------------------------


def _unlock_pdf(reader: Any) -> None:
    from pypdf.errors import PdfReadError, WrongPasswordError

    if not reader.is_encrypted:
        return
    try:
        unlocked = reader.decrypt("")
    except (NotImplementedError, WrongPasswordError, PdfReadError):
        unlocked = 0
    if not unlocked:
        raise IngestError(
            "the PDF is encrypted with a password; remove the password and ingest it again",
            code="ingest.encrypted_pdf",
        )


def _parse_pdf(data: bytes) -> ParsedDocument:
    from pypdf import PdfReader
    from pypdf.errors import FileNotDecryptedError, PdfReadError

    damaged = (
        FileNotDecryptedError,
        PdfReadError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        RecursionError,
        AssertionError,
        OSError,
    )
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
    except damaged as exc:
        raise IngestError("the PDF is damaged and cannot be read", code="ingest.malformed_pdf") from exc
    _unlock_pdf(reader)
    try:
        pages = list(reader.pages)
        page_texts = [page.extract_text() or "" for page in pages]
        metadata_title = (
            str(reader.metadata.title).strip() if reader.metadata and reader.metadata.title else ""
        )
    except damaged as exc:
        raise IngestError("the PDF is damaged and cannot be read", code="ingest.malformed_pdf") from exc
    if not pages:
        raise IngestError("the PDF has no pages", code="ingest.empty")
    builder = DocumentBuilder()
    for page_text in page_texts:
        for paragraph in re.split(r"\n\s*\n", page_text):
            builder.block(paragraph.strip())
    text = builder.text()
    if not text.strip():
        raise IngestError(
            "the PDF has no text layer (a scanned document?); OCR is not enabled", code="ingest.no_text"
        )
    first_line = text.strip().split("\n", 1)[0][:120]
    return ParsedDocument(
        metadata_title or first_line,
        text,
        builder.blocks,
        PDF,
        builder.removed.warnings(),
        {"pages": len(pages)},
    )


# -- DOCX -----------------------------------------------------------------------------

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def _check_archive(data: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if len(infos) > 10_000:
            raise IngestError("the document archive has too many entries", code="ingest.archive_limits")
        total = sum(info.file_size for info in infos)
        compressed = sum(info.compress_size for info in infos) or 1
        if total > MAX_DOCX_UNCOMPRESSED or total / compressed > MAX_DOCX_RATIO:
            raise IngestError(
                "the document expands to far more data than it holds (a zip bomb?)",
                code="ingest.archive_limits",
            )


def _parse_docx(data: bytes) -> ParsedDocument:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    _check_archive(data)
    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as exc:  # python-docx raises many kinds for a damaged file
        raise IngestError(
            "the Word document is damaged and cannot be read", code="ingest.malformed_docx"
        ) from exc
    builder = DocumentBuilder()
    title = (document.core_properties.title or "").strip()
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            text = item.text.strip()
            if not text:
                continue
            style = (item.style.name if item.style is not None else "") or ""
            match = _HEADING_STYLE.match(style)
            if style.lower() == "title":
                title = title or text
                builder.heading(1, text)
            elif match:
                builder.heading(int(match.group(1)) + 1, text)
            elif "list" in style.lower():
                builder.block(f"- {text}", "list")
            else:
                builder.block(text)
        elif isinstance(item, Table):
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in item.rows]
            builder.block("\n".join(rows), "table")
    if not title:
        first_heading = next((b for b in builder.blocks if b.kind == "heading"), None)
        title = first_heading.heading_path[-1] if first_heading and first_heading.heading_path else ""
    return ParsedDocument(title, builder.text(), builder.blocks, DOCX, builder.removed.warnings())


_PARSERS: dict[str, Callable[[bytes], ParsedDocument]] = {
    TEXT: _parse_text,
    MARKDOWN: _parse_markdown,
    HTML: _parse_html,
    PDF: _parse_pdf,
    DOCX: _parse_docx,
}
