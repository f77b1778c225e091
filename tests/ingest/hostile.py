"""Builders for hostile files, made inside the tests (no binaries in the repository)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from tests.files import make_docx, make_pdf


def zero_page_pdf(path: Path) -> Path:
    from pypdf import PdfWriter

    buffer = io.BytesIO()
    PdfWriter().write(buffer)
    path.write_bytes(buffer.getvalue())
    return path


def broken_xref_pdf(path: Path) -> Path:
    make_pdf(path, ["Broken cross-reference table."])
    data = path.read_bytes()
    at = data.rindex(b"xref")
    path.write_bytes(data[:at] + b"xref\n0 9\ngarbage garbage\n" + data[at + 200 :])
    return path


def _replace_entry(path: Path, name: str, content: bytes, extra: dict[str, int] | None = None) -> Path:
    """Rewrite a ZIP-based document with one entry replaced and optional entries of N zero bytes."""
    source = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, content if info.filename == name else source.read(info))
        for extra_name, size in (extra or {}).items():
            with target.open(extra_name, "w") as stream:
                block = b"\0" * (1024 * 1024)
                for _ in range(size // len(block)):
                    stream.write(block)
    path.write_bytes(out.getvalue())
    return path


def zip_bomb_docx(path: Path, megabytes: int = 64) -> Path:
    """A valid Word document carrying an entry of ``megabytes`` MiB of zeros (about 1000:1)."""
    make_docx(path, title="Bomb", sections={"A": ["Nothing to see."]})
    source = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    document = source.read("word/document.xml")
    return _replace_entry(path, "word/document.xml", document, {"word/media/zeros.bin": megabytes << 20})


def billion_laughs_docx(path: Path) -> Path:
    make_docx(path, title="Laughs", sections={"A": ["Nothing to see."]})
    entities = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY lol0 "lol">' + entities + "]>"
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>"
    ).encode()
    return _replace_entry(path, "word/document.xml", bomb)


def nested_html(depth: int) -> bytes:
    return (
        b"<html><body>"
        + b"<div>" * depth
        + b"<p>The treasure is buried under the old oak.</p>"
        + b"</div>" * depth
        + b"</body></html>"
    )
