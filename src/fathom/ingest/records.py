"""Record formats: CSV/TSV rows under their header, JSON and JSON Lines records.

JSON records are read through configurable field names: the text fields become
the record's text and the title field its heading, so a JSONL export of articles
chunks one article at a time. A record with none of the configured fields is
flattened to ``path: value`` lines.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from fathom.errors import IngestError
from fathom.ingest.detect import CSV, JSON, decode_text
from fathom.ingest.document import DocumentBuilder, ParsedDocument
from fathom.ingest.office import render_rows

__all__ = ["parse_csv", "parse_json"]

_MAX_FIELD = 10 * 1024 * 1024
_MAX_DEPTH = 64


def parse_csv(data: bytes) -> ParsedDocument:
    """Parse CSV or TSV (delimiter sniffed): rows grouped under the header row."""
    decoded = decode_text(data)
    text = decoded.text
    sample = text[:65536]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if sample.count("\t") > sample.count(",") else csv.excel
    builder = DocumentBuilder()
    previous = csv.field_size_limit()
    csv.field_size_limit(_MAX_FIELD)
    try:
        render_rows(builder, csv.reader(io.StringIO(text, newline=""), dialect))
    except (csv.Error, ValueError) as exc:
        raise IngestError("the CSV file is malformed", code="ingest.malformed_csv") from exc
    finally:
        csv.field_size_limit(previous)
    return ParsedDocument(
        "", builder.text(), builder.blocks, CSV, [*decoded.warnings, *builder.removed.warnings()]
    )


def _records(text: str) -> Iterator[Any]:
    stripped = text.lstrip()
    try:
        whole = json.loads(stripped)
    except json.JSONDecodeError:
        if not stripped.startswith("{"):
            raise
    else:
        yield whole
        return
    # JSON Lines: one value per line.
    for line in text.splitlines():
        if line.strip():
            yield json.loads(line)


def _leaves(value: Any, path: str, depth: int, out: list[str]) -> None:
    if depth > _MAX_DEPTH:
        raise IngestError("the JSON is nested too deeply", code="ingest.malformed_json")
    if isinstance(value, dict):
        for key, item in value.items():
            _leaves(item, f"{path}.{key}" if path else str(key), depth + 1, out)
    elif isinstance(value, list):
        for item in value:
            _leaves(item, path, depth + 1, out)
    elif isinstance(value, str) and value.strip():
        out.append(f"{path}: {value}" if path else value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out.append(f"{path}: {value}" if path else str(value))


def _field_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(v for v in value if isinstance(v, str))
    return ""


def parse_json(data: bytes, text_fields: Sequence[str], title_field: str) -> ParsedDocument:
    """Parse JSON (an object, or a list of records) or JSON Lines."""
    decoded = decode_text(data)
    builder = DocumentBuilder()
    records = 0
    try:
        for value in _records(decoded.text):
            items = value if isinstance(value, list) else [value]
            for record in items:
                records += 1
                if not isinstance(record, dict):
                    flat: list[str] = []
                    _leaves(record, "", 0, flat)
                    builder.block("\n".join(flat))
                    continue
                heading = record.get(title_field)
                if isinstance(heading, str) and heading.strip():
                    builder.heading(2, heading)
                texts = [_field_text(record[f]) for f in text_fields if f in record and f != title_field]
                texts = [t for t in texts if t.strip()]
                if not texts:
                    flat = []
                    _leaves({k: v for k, v in record.items() if k != title_field}, "", 0, flat)
                    texts = ["\n".join(flat)]
                for text in texts:
                    builder.block(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise IngestError("the JSON is malformed", code="ingest.malformed_json") from exc
    return ParsedDocument(
        "",
        builder.text(),
        builder.blocks,
        JSON,
        [*decoded.warnings, *builder.removed.warnings()],
        {"records": records},
    )
