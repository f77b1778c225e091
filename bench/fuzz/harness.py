"""One atheris harness for every parser: ``python bench/fuzz/harness.py FORMAT [atheris args]``.

Each run feeds mutated bytes to :func:`fathom.ingest.parsers.parse_bytes` under the
file name of one format (so detection and that format's parser are exercised) and
treats any exception other than a :class:`fathom.errors.FathomError` as a finding.
Seeds are built in memory for each format. ``run.sh`` runs every harness for a
bounded time and writes a summary to ``bench/results/fuzz.json``.
"""

from __future__ import annotations

import contextlib
import io
import sys

import atheris

with atheris.instrument_imports(
    include=["fathom", "pypdf", "docx", "pptx", "openpyxl", "bs4", "csv", "email"]
):
    import bs4  # noqa: F401  (imported here so that it is instrumented)
    import docx  # noqa: F401
    import openpyxl  # noqa: F401
    import pptx  # noqa: F401
    import pypdf  # noqa: F401

    from fathom.errors import FathomError
    from fathom.ingest import html, mail, office, pdf, records  # noqa: F401
    from fathom.ingest.parsers import parse_bytes

FORMATS = ("text", "markdown", "html", "pdf", "docx", "pptx", "xlsx", "csv", "json", "eml")
NAMES = {
    "text": "f.txt",
    "markdown": "f.md",
    "html": "f.html",
    "pdf": "f.pdf",
    "docx": "f.docx",
    "pptx": "f.pptx",
    "xlsx": "f.xlsx",
    "csv": "f.csv",
    "json": "f.jsonl",
    "eml": "f.eml",
}


def seed(kind: str) -> bytes:
    """A small valid file of ``kind``, the starting point of mutation."""
    if kind == "pdf":
        from reportlab.pdfgen import canvas

        buffer = io.BytesIO()
        pdf = canvas.Canvas(buffer)
        pdf.drawString(50, 800, "Header line")
        pdf.drawString(50, 780, "Revenue grew by 12 percent.")
        pdf.showPage()
        pdf.save()
        return buffer.getvalue()
    if kind == "docx":
        import docx

        document = docx.Document()
        document.add_heading("Title", 1)
        document.add_paragraph("Body text.")
        document.add_table(rows=1, cols=2).cell(0, 0).text = "cell"
        buffer = io.BytesIO()
        document.save(buffer)
        return buffer.getvalue()
    if kind == "pptx":
        import pptx

        presentation = pptx.Presentation()
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = "Roadmap"
        buffer = io.BytesIO()
        presentation.save(buffer)
        return buffer.getvalue()
    if kind == "xlsx":
        import openpyxl

        workbook = openpyxl.Workbook()
        workbook.active.append(["Name", "City"])
        workbook.active.append(["Ann", "Oslo"])
        buffer = io.BytesIO()
        workbook.save(buffer)
        return buffer.getvalue()
    return {
        "text": b"Title\n\nSection:\nSome words. More words!\n",
        "markdown": b"# H\n\ntext\n\n```py\ncode\n```\n## H2\n- item\n",
        "html": b"<html><head><title>t</title></head><body><h1>H</h1><p style='color:#fff'>x</p>"
        b"<div hidden>y</div><pre>code</pre><table><tr><td>1</td></tr></table></body></html>",
        "csv": b'name,age\nann,3\n"b,ob",4\n',
        "json": b'{"title": "A", "text": "alpha", "n": [1, {"x": "y"}]}\n{"text": "b"}\n',
        "eml": b"From: a@x.test\r\nTo: b@y.test\r\nSubject: Hi\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/html\r\n\r\n<p>Hello</p>\r\n",
    }[kind]


def main() -> None:
    kind = sys.argv[1]
    name = NAMES[kind]

    def test_one(data: bytes) -> None:
        with contextlib.suppress(FathomError):
            parse_bytes(data, name)

    corpus = sys.argv[2] if len(sys.argv) > 2 and not sys.argv[2].startswith("-") else None
    if corpus:
        import pathlib

        path = pathlib.Path(corpus)
        path.mkdir(parents=True, exist_ok=True)
        (path / "seed").write_bytes(seed(kind))
    atheris.Setup([sys.argv[0], *sys.argv[2:]], test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
