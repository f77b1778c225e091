"""Office Open XML: Word (headings, lists, tables), PowerPoint (slides) and Excel (rows).

Every archive first passes :func:`fathom.ingest.archive.checked_archive`; the
parsers only ever see the checked, uncompressed copy.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from typing import Any

from fathom.errors import IngestError
from fathom.ingest.archive import ArchiveLimits, checked_archive
from fathom.ingest.detect import DOCX, PPTX, XLSX
from fathom.ingest.document import DocumentBuilder, ParsedDocument

__all__ = ["parse_docx", "parse_pptx", "parse_xlsx", "render_rows"]

_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)
_ROWS_PER_BLOCK = 12
_MAX_ROWS = 200_000


def _damaged(kind: str, exc: Exception) -> IngestError:
    error = IngestError(f"the {kind} is damaged and cannot be read", code="ingest.malformed_office")
    error.__cause__ = exc
    return error


def _first_heading(builder: DocumentBuilder) -> str:
    first = next((b for b in builder.blocks if b.kind == "heading"), None)
    return first.heading_path[-1] if first and first.heading_path else ""


# -- Word -----------------------------------------------------------------------------


def _run_hidden(run: Any) -> bool:
    """Hidden (``w:vanish``) or white text: invisible to a reader of the document."""
    font = run.font
    if font.hidden:
        return True
    color = font.color
    return bool(color is not None and color.type is not None and str(color.rgb) == "FFFFFF")


def parse_docx(data: bytes, limits: ArchiveLimits) -> ParsedDocument:
    """Parse a Word document: headings become the heading path; lists and tables stay whole."""
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    safe = checked_archive(data, limits)
    try:
        document = docx.Document(io.BytesIO(safe))
        builder = DocumentBuilder()
        title = (document.core_properties.title or "").strip()
        hidden = 0
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                runs = list(item.runs)
                invisible = [r for r in runs if r.text.strip() and _run_hidden(r)]
                if invisible:
                    hidden += len(invisible)
                    text = "".join(r.text for r in runs if not _run_hidden(r)).strip()
                else:
                    text = item.text.strip()
                if not text:
                    continue
                style = (item.style.name if item.style is not None else "") or ""
                match = _HEADING_STYLE.match(style)
                numbered = item._p.pPr is not None and item._p.pPr.numPr is not None
                if style.lower() == "title":
                    title = title or text
                    builder.heading(1, text)
                elif match:
                    builder.heading(int(match.group(1)) + 1, text)
                elif "list" in style.lower() or numbered:
                    builder.block(f"- {text}", "list")
                else:
                    builder.block(text)
            elif isinstance(item, Table):
                rows = [[cell.text.strip() for cell in row.cells] for row in item.rows]
                builder.block(render_table(rows), "table")
    except IngestError:
        raise
    except Exception as exc:  # python-docx raises many kinds for a damaged file
        raise _damaged("Word document", exc) from exc
    warnings = builder.removed.warnings()
    if hidden:
        warnings.append(f"dropped {hidden} run(s) of hidden or white text")
    return ParsedDocument(title or _first_heading(builder), builder.text(), builder.blocks, DOCX, warnings)


def render_table(rows: list[list[str]]) -> str:
    """Rows of cells as ``a | b | c`` lines; merged cells repeated by Word are shown once."""
    lines = []
    for row in rows:
        cells: list[str] = []
        for cell in row:
            if not cells or cell != cells[-1]:
                cells.append(cell)
        lines.append(" | ".join(cells))
    return "\n".join(lines)


# -- PowerPoint -----------------------------------------------------------------------


def parse_pptx(data: bytes, limits: ArchiveLimits) -> ParsedDocument:
    """Parse a presentation: one section per slide (its title as heading), notes included."""
    from pptx import Presentation

    safe = checked_archive(data, limits)
    builder = DocumentBuilder()
    page_starts: list[int] = []
    try:
        presentation = Presentation(io.BytesIO(safe))
        title = (presentation.core_properties.title or "").strip()
        for number, slide in enumerate(presentation.slides, start=1):
            page_starts.append(builder.next_offset)
            slide_title = ""
            title_shape = slide.shapes.title
            if title_shape is not None and title_shape.has_text_frame:
                slide_title = title_shape.text_frame.text.strip()
            builder.heading(2, f"Slide {number}" + (f": {slide_title}" if slide_title else ""))
            for shape in slide.shapes:
                if title_shape is not None and shape.shape_id == title_shape.shape_id:
                    continue
                if shape.has_text_frame:
                    builder.block(shape.text_frame.text)
                elif getattr(shape, "has_table", False) and shape.has_table:
                    rows = [[cell.text.strip() for cell in row.cells] for row in shape.table.rows]
                    builder.block(render_table(rows), "table")
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
                if notes:
                    builder.block(f"Notes: {notes}")
    except IngestError:
        raise
    except Exception as exc:  # python-pptx raises many kinds for a damaged file
        raise _damaged("presentation", exc) from exc
    return ParsedDocument(
        title or _first_heading(builder),
        builder.text(),
        builder.blocks,
        PPTX,
        builder.removed.warnings(),
        {"slides": len(page_starts), "structure": {"page_starts": page_starts}},
    )


# -- Excel and CSV rows ---------------------------------------------------------------


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return " ".join(str(value).split())


def render_rows(builder: DocumentBuilder, rows: Iterable[list[str]]) -> int:
    """Add rows under their header: the first non-empty row names the columns.

    Each row becomes ``Header: value | Header: value`` so any chunk of rows still says
    what its values mean; rows are grouped a dozen to a block. Returns rows added.
    """
    header: list[str] | None = None
    group: list[str] = []
    count = 0
    for raw in rows:
        row = [_cell_text(v) for v in raw]
        if not any(row):
            continue
        if header is None:
            header = row
            continue
        if count >= _MAX_ROWS:
            break
        cells = [
            f"{header[i]}: {value}" if i < len(header) and header[i] else value
            for i, value in enumerate(row)
            if value
        ]
        group.append(" | ".join(cells))
        count += 1
        if len(group) >= _ROWS_PER_BLOCK:
            builder.block("\n".join(group), "table")
            group = []
    if group:
        builder.block("\n".join(group), "table")
    if header is not None and count == 0:
        builder.block(" | ".join(header), "table")
    return count


def parse_xlsx(data: bytes, limits: ArchiveLimits) -> ParsedDocument:
    """Parse a workbook: one section per sheet, rows grouped under the sheet's header row."""
    import openpyxl

    safe = checked_archive(data, limits)
    builder = DocumentBuilder()
    try:
        workbook = openpyxl.load_workbook(io.BytesIO(safe), read_only=True, data_only=True)
        try:
            title = (workbook.properties.title or "").strip()
            for sheet in workbook.worksheets:
                builder.heading(2, str(sheet.title))
                render_rows(
                    builder, ([_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True))
                )
        finally:
            workbook.close()
    except IngestError:
        raise
    except Exception as exc:  # openpyxl raises many kinds for a damaged file
        raise _damaged("spreadsheet", exc) from exc
    return ParsedDocument(title, builder.text(), builder.blocks, XLSX, builder.removed.warnings())
