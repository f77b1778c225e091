"""Regression tests for what fuzzing (bench/fuzz) found: each input now fails with a clear code."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from fathom.errors import IngestError
from fathom.ingest.parsers import parse_bytes
from tests.files import make_docx


def _bump_zip_version(data: bytes, version: int) -> bytes:
    """Set "version needed to extract" of every central-directory entry, as a mutation would."""
    out = bytearray(data)
    at = out.find(b"PK\x01\x02")
    while at != -1:
        struct.pack_into("<H", out, at + 6, version)
        at = out.find(b"PK\x01\x02", at + 4)
    return bytes(out)


@pytest.mark.parametrize("name", ["a.docx", "a.xlsx", "a.pptx"])
def test_zip_with_unsupported_version_is_refused(tmp_path: Path, name: str):
    data = make_docx(tmp_path / "a.docx", title="T", sections={"S": ["text"]}).read_bytes()
    with pytest.raises(IngestError) as info:
        parse_bytes(_bump_zip_version(data, 235), name)
    assert info.value.code == "ingest.unsupported_format"


def test_pdf_page_tree_that_contains_itself_is_malformed():
    data = (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [2 0 R] /Count 1 >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )
    with pytest.raises(IngestError) as info:
        parse_bytes(data, "loop.pdf")
    assert info.value.code == "ingest.malformed_pdf"


def test_archive_entry_with_an_empty_name_is_skipped(tmp_path: Path):
    import io
    import zipfile

    data = make_docx(tmp_path / "a.docx", title="T", sections={"S": ["text"]}).read_bytes()
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        target.writestr(zipfile.ZipInfo(""), b"x")  # made ZipInfo.is_dir() raise IndexError
    assert "text" in parse_bytes(out.getvalue(), "a.docx").text
