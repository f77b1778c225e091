"""OCR cost and accuracy: seconds per scanned page and words read correctly.

    python bench/ocr_pages.py [--pages 6] [--dpi 200 300]

Pages of running text (paragraphs of docs/overview.md and docs/ingest.md, 11 pt DejaVu
Sans, A4, 300 dpi) are drawn as images and saved as an image-only PDF, once clean and
once "scanned" (skewed 0.7 degrees, grey noise, slightly blurred). Each PDF is ingested
with ``ocr = "auto"`` at each ``ocr_dpi``, through the parser sandbox as in use (one
tesseract thread per page). Seconds per page come from the document's ``ocr_seconds``
and ``ocr_cpu_seconds`` (render + OCR, inside the worker; CPU includes tesseract's);
word accuracy is the share of the page's words that tesseract returned in order
(difflib matching over lower-cased words).

Writes bench/results/ocr_pages.json and the table in docs/ingest.md (between the
``ocr-pages`` markers), and prints the table.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bench.machine import machine_info, replace_between_markers
from fathom import Fathom

ROOT = Path(__file__).resolve().parents[1]
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
SCAN_DPI = 300
WORD = re.compile(r"[a-z0-9]+")


def _paragraphs() -> list[str]:
    out = []
    for name in ("overview.md", "ingest.md"):
        for block in (ROOT / "docs" / name).read_text(encoding="utf-8").split("\n\n"):
            text = " ".join(block.split())
            if len(text) > 200 and not text.startswith(("|", "#", "```", "-", "<", "*")):
                out.append(re.sub(r"[`*\[\]]", "", re.sub(r"\]\([^)]*\)", "]", text)))
    return out


def _pages(count: int) -> list[list[str]]:
    lines = [line for p in _paragraphs() for line in [*textwrap.wrap(p, 78), ""]]
    per_page = 52
    return [lines[i * per_page : (i + 1) * per_page] for i in range(count)]


def _draw(lines: list[str], scanned: bool) -> Image.Image:
    font = ImageFont.truetype(str(FONT), size=round(11 / 72 * SCAN_DPI))
    image = Image.new("L", (round(8.27 * SCAN_DPI), round(11.69 * SCAN_DPI)), color=255)
    draw = ImageDraw.Draw(image)
    for row, line in enumerate(lines):
        draw.text((SCAN_DPI * 0.8, SCAN_DPI * 0.8 + row * 60), line, fill=0, font=font)
    if scanned:
        image = image.rotate(0.7, fillcolor=255, resample=Image.Resampling.BILINEAR)
        noise = Image.effect_noise(image.size, 40)
        image = Image.blend(image, noise, 0.15).filter(ImageFilter.GaussianBlur(0.8))
    return image


def _accuracy(expected: str, read: str) -> float:
    want, got = WORD.findall(expected.lower()), WORD.findall(read.lower())
    matcher = difflib.SequenceMatcher(None, want, got, autojunk=False)
    return sum(block.size for block in matcher.get_matching_blocks()) / max(1, len(want))


def _run(pdf: Path, dpi: int, expected: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        limits = {"parser_cpu_seconds": 600, "parser_timeout_seconds": 900}
        with Fathom(home=home, embedder="hash:64", ocr="auto", ocr_dpi=dpi, **limits) as fathom:
            (outcome,) = fathom.ingest([pdf]).outcomes
            assert outcome.status == "added", outcome
            (document,) = fathom.documents()
            pages = document.metadata["ocr_pages"]
            seconds = document.metadata["ocr_seconds"]
            cpu_seconds = document.metadata["ocr_cpu_seconds"]
            text = fathom.document_text(document.doc_id)
    return {
        "dpi": dpi,
        "pages": pages,
        "seconds_per_page": round(seconds / pages, 2),
        "cpu_seconds_per_page": round(cpu_seconds / pages, 2),
        "word_accuracy": round(_accuracy(expected, text), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--dpi", type=int, nargs="+", default=[200, 300])
    args = parser.parse_args()
    pages = _pages(args.pages)
    expected = "\n".join(line for page in pages for line in page)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scanned in (False, True):
            images = [_draw(lines, scanned) for lines in pages]
            pdf = Path(tmp) / ("scanned.pdf" if scanned else "clean.pdf")
            images[0].save(
                pdf, format="PDF", resolution=float(SCAN_DPI), save_all=True, append_images=images[1:]
            )
            for dpi in args.dpi:
                row = {"input": "scanned" if scanned else "clean", **_run(pdf, dpi, expected)}
                rows.append(row)
                print(row, file=sys.stderr)
    result = {"machine": machine_info(), "words": len(WORD.findall(expected.lower())), "runs": rows}
    out = ROOT / "bench" / "results" / "ocr_pages.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    table = [
        "| input | `ocr_dpi` | seconds per page | CPU seconds per page | word accuracy |",
        "|---|---|---|---|---|",
    ]
    table += [
        f"| {row['input']} | {row['dpi']} | {row['seconds_per_page']:.2f} | "
        f"{row['cpu_seconds_per_page']:.2f} | {row['word_accuracy']:.1%} |"
        for row in rows
    ]
    replace_between_markers(ROOT / "docs" / "ingest.md", "ocr-pages", "\n".join(table))
    print("\n".join(table))


if __name__ == "__main__":
    main()
