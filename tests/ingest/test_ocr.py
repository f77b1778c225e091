"""OCR of scanned PDFs (issue 5): real image-only PDFs, read by the real tesseract in the sandbox.

The PDFs are drawn here: text rendered into an image with Pillow and a DejaVu font, the
image saved as a PDF page by Pillow, so the file has no text layer at all.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path

import pytest

from fathom import Fathom
from tests.files import make_pdf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
PAGE_ONE = ["Lighthouse keepers log", "The foghorn sounds every thirty seconds", "when visibility is poor."]
PAGE_TWO = ["Harbour pilots board", "incoming tankers beyond", "the northern breakwater."]


def _missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def drawing_tools() -> None:
    """Every test draws its scans with Pillow and DejaVu Sans."""
    if importlib.util.find_spec("PIL") is None:
        _missing("Pillow is not installed (pip install -e '.[dev]')")
    if not FONT.exists():
        _missing(f"the font {FONT} is not installed (apt-get install fonts-dejavu-core)")


@pytest.fixture
def ocr_tools() -> None:
    """The tests that render pages or read them need the renderer and tesseract."""
    if importlib.util.find_spec("pypdfium2") is None:
        _missing("pypdfium2 is not installed (pip install -e '.[dev]' or '.[ocr]')")
    if shutil.which("tesseract") is None:
        _missing("the tesseract binary is not installed (apt-get install tesseract-ocr; .ci/run does)")


def scanned_pdf(path: Path, pages: list[list[str]], dpi: int = 200) -> Path:
    """An image-only PDF: each page is a greyscale picture of its lines, with no text layer."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(str(FONT), size=dpi // 5)  # about 14 pt at this resolution
    images = []
    for lines in pages:
        image = Image.new("L", (int(8.27 * dpi), int(11.69 * dpi)), color=255)  # A4
        draw = ImageDraw.Draw(image)
        for row, line in enumerate(lines):
            draw.text((dpi, dpi + row * dpi // 3), line, fill=0, font=font)
        images.append(image)
    images[0].save(path, format="PDF", resolution=float(dpi), save_all=True, append_images=images[1:])
    return path


@pytest.mark.usefixtures("ocr_tools")
def test_scanned_pdf_is_read_by_ocr_with_page_numbers(tmp_path: Path):
    pdf = scanned_pdf(tmp_path / "scan.pdf", [PAGE_ONE, PAGE_TWO])
    with Fathom(home=tmp_path / "home", embedder="hash:64", ocr="auto") as fathom:
        (outcome,) = fathom.ingest([pdf]).outcomes
        assert (outcome.status, outcome.error_code) == ("added", None), outcome.message
        assert any("2 page(s) read by OCR" in w for w in outcome.warnings), outcome.warnings

        (document,) = fathom.documents()
        assert document.metadata["ocr_pages"] == 2
        assert document.metadata["ocr_seconds"] > 0
        text = fathom.document_text(document.doc_id)
        assert "foghorn" in text and "breakwater" in text

        foghorn = fathom.search("foghorn thirty seconds visibility", k=1)
        assert foghorn and foghorn[0].page == 1
        assert "foghorn" in foghorn[0].text
        pilots = fathom.search("pilots tankers northern breakwater", k=1)
        assert pilots and pilots[0].page == 2
        assert "tankers" in pilots[0].text


@pytest.mark.usefixtures("ocr_tools")
def test_ocr_reads_only_the_pages_without_a_text_layer(tmp_path: Path):
    from pypdf import PdfReader, PdfWriter

    typed = make_pdf(tmp_path / "typed.pdf", ["The anchor winch is greased on Mondays."])
    scanned = scanned_pdf(tmp_path / "scanned.pdf", [PAGE_TWO])
    writer = PdfWriter()
    for source in (typed, scanned):
        for page in PdfReader(source).pages:
            writer.add_page(page)
    mixed = tmp_path / "mixed.pdf"
    with mixed.open("wb") as out:
        writer.write(out)
    typed.unlink()
    scanned.unlink()

    with Fathom(home=tmp_path / "home", embedder="hash:64", ocr="auto") as fathom:
        (outcome,) = fathom.ingest([mixed]).outcomes
        assert outcome.status == "added", outcome.message
        (document,) = fathom.documents()
        assert document.metadata["ocr_pages"] == 1
        assert fathom.search("anchor winch greased", k=1)[0].page == 1
        assert fathom.search("pilots tankers breakwater", k=1)[0].page == 2


def test_ocr_off_keeps_no_text(tmp_path: Path):
    pdf = scanned_pdf(tmp_path / "scan.pdf", [PAGE_ONE])
    with Fathom(home=tmp_path / "home", embedder="hash:64") as fathom:
        assert fathom.settings.ocr == "off"
        (outcome,) = fathom.ingest([pdf]).outcomes
        assert (outcome.status, outcome.error_code) == ("no_text", "ingest.no_text")
        assert 'ocr = "auto"' in (outcome.message or "")


def test_missing_tesseract_fails_the_scan_only(tmp_path: Path):
    folder = tmp_path / "batch"
    folder.mkdir()
    scanned_pdf(folder / "scan.pdf", [PAGE_ONE])
    make_pdf(folder / "typed.pdf", ["Tide tables are printed every spring."])
    (folder / "notes.txt").write_text("The ferry leaves at seven.")
    missing = str(tmp_path / "no-such-tesseract")
    with Fathom(home=tmp_path / "home", embedder="hash:64", ocr="auto", ocr_command=missing) as fathom:
        outcomes = {Path(o.source).name: o for o in fathom.ingest([folder]).outcomes}
        scan = outcomes["scan.pdf"]
        assert (scan.status, scan.error_code) == ("failed", "ingest.ocr_unavailable")
        assert "apt-get install tesseract-ocr" in (scan.message or "")
        assert outcomes["typed.pdf"].status == "added"  # a PDF with a text layer needs no OCR
        assert outcomes["notes.txt"].status == "added"
        assert fathom.search("ferry seven", k=1)[0].source.endswith("notes.txt")


@pytest.mark.usefixtures("ocr_tools")
def test_ocr_max_pages_fails_with_a_clear_code(tmp_path: Path):
    pdf = scanned_pdf(tmp_path / "scan.pdf", [PAGE_ONE, PAGE_TWO])
    with Fathom(home=tmp_path / "home", embedder="hash:64", ocr="auto", ocr_max_pages=1) as fathom:
        (outcome,) = fathom.ingest([pdf]).outcomes
        assert (outcome.status, outcome.error_code) == ("failed", "ingest.ocr_too_many_pages")
        assert "ocr_max_pages" in (outcome.message or "")


@pytest.mark.usefixtures("ocr_tools")
def test_ocr_runs_under_the_parser_cpu_limit(tmp_path: Path):
    pdf = scanned_pdf(tmp_path / "scan.pdf", [PAGE_ONE, PAGE_TWO, PAGE_ONE, PAGE_TWO])
    with Fathom(
        home=tmp_path / "home", embedder="hash:64", ocr="auto", ocr_dpi=600, parser_cpu_seconds=1
    ) as fathom:
        (outcome,) = fathom.ingest([pdf]).outcomes
        assert (outcome.status, outcome.error_code) == ("failed", "ingest.parser_timeout")
        assert "OCR" in (outcome.message or "")


@pytest.mark.usefixtures("ocr_tools")
def test_wall_time_limit_kills_tesseract_with_the_worker(tmp_path: Path):
    # A stand-in tesseract that hangs, uniquely named so the check below sees only this test's.
    binary = tmp_path / "hanging-tesseract"
    binary.write_text("#!/bin/sh\nsleep 30\n")
    binary.chmod(0o755)
    pdf = scanned_pdf(tmp_path / "scan.pdf", [PAGE_ONE])
    settings = {"ocr_command": str(binary), "parser_timeout_seconds": 2.0}
    with Fathom(home=tmp_path / "home", embedder="hash:64", ocr="auto", **settings) as fathom:
        (outcome,) = fathom.ingest([pdf]).outcomes
        assert (outcome.status, outcome.error_code) == ("failed", "ingest.parser_timeout")
    deadline = time.monotonic() + 5
    while _running(binary) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(binary), "tesseract outlived the worker killed at the wall-time limit"


def _running(binary: Path) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(binary).encode() in cmdline.read_bytes():
                return True
        except OSError:
            continue
    return False


@pytest.mark.usefixtures("ocr_tools")
def test_parse_bytes_outside_the_sandbox_keeps_page_starts(tmp_path: Path):
    from fathom.domain import page_at
    from fathom.ingest.ocr import OcrOptions
    from fathom.ingest.parsers import ParseOptions, parse_bytes

    data = scanned_pdf(tmp_path / "scan.pdf", [PAGE_ONE, PAGE_TWO]).read_bytes()
    parsed = parse_bytes(data, "scan.pdf", ParseOptions(ocr=OcrOptions(mode="auto", dpi=200)))
    starts = parsed.metadata["structure"]["page_starts"]
    assert len(starts) == 2 and parsed.metadata["ocr_pages"] == 2
    assert page_at(starts, parsed.text.index("foghorn")) == 1
    assert page_at(starts, parsed.text.index("tankers")) == 2
    assert "\f" not in parsed.text  # no page separators from tesseract
