"""Builders for real files of each format, made inside the tests."""

from __future__ import annotations

import io
from pathlib import Path


def make_pdf(path: Path, pages: list[str], *, password: str | None = None, title: str | None = None) -> Path:
    from pypdf import PdfReader, PdfWriter
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    if title:
        pdf.setTitle(title)
    for page in pages:
        y = 800
        for line in page.split("\n"):
            pdf.drawString(50, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    data = buffer.getvalue()
    if password is not None:
        writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
        writer.encrypt(user_password=password, owner_password=password, algorithm="AES-128")
        out = io.BytesIO()
        writer.write(out)
        data = out.getvalue()
    path.write_bytes(data)
    return path


def make_docx(
    path: Path, *, title: str, sections: dict[str, list[str]], table: list[list[str]] | None = None
) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(title, level=0)
    for heading, paragraphs in sections.items():
        document.add_heading(heading, level=1)
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    document.save(str(path))
    return path


# A small Markdown runbook with three sections, for the service's and the web page's tests.
RUNBOOK = (
    "# Operations runbook\n\n"
    "## Backups\n\n"
    "Backups run nightly at 02:00 and are kept for thirty days. "
    "Restores are tested every quarter by the on-call engineer.\n\n"
    "## Key rotation\n\n"
    "Signing keys are rotated every ninety days. The previous key stays valid for one week "
    "so that tokens already issued keep working.\n\n"
    "## Failover\n\n"
    "Promote the replica, then repoint the DNS record at it."
)
