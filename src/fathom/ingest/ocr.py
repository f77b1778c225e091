"""OCR of PDF pages without a text layer: pypdfium2 renders a page, tesseract reads it.

Optional: the renderer comes with the ``ocr`` extra (``pip install 'fathom-search[ocr]'``) and
the engine is the ``tesseract`` binary (Debian: ``apt-get install tesseract-ocr``). With
``ocr = "auto"`` and either missing, a PDF that needs OCR fails with
``ingest.ocr_unavailable`` and a message that says what to install.

OCR runs in the parser worker, under its limits: tesseract is a child process with
the worker's memory limit, the CPU seconds the file has left, and a parent-death
signal, so a worker killed at the wall-time limit takes its tesseract with it.

    ingest.ocr_unavailable       the renderer, the binary or its language data is missing
    ingest.ocr_too_many_pages    more pages need OCR than ``ocr_max_pages`` allows
    ingest.ocr_failed            tesseract or the renderer failed on this file
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import math
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from fathom.errors import IngestError

__all__ = ["OcrOptions", "OcrResult", "ocr_pdf_pages"]

OcrMode = Literal["off", "auto"]

# A page rendered larger than this (a poster-sized page at 300 dpi) is scaled down to it:
# 40 Mpx of 8-bit grey is 40 MB for the image and a few times that inside tesseract.
MAX_PIXELS = 40_000_000
_PR_SET_PDEATHSIG = 1
_INSTALL = (
    "install the tesseract binary (Debian/Ubuntu: apt-get install tesseract-ocr) "
    "and the OCR extra (pip install 'fathom-search[ocr]'), or set ocr = \"off\""
)


@dataclass(frozen=True, slots=True)
class OcrOptions:
    """How PDF pages without a text layer are read (see the ``ocr*`` settings)."""

    mode: OcrMode = "off"
    command: str = "tesseract"
    language: str = "eng"
    dpi: int = 300
    max_pages: int = 100


@dataclass(slots=True)
class OcrResult:
    """Text read from each page (by 0-based index), and the wall and CPU seconds OCR took
    (CPU: rendering in the worker plus tesseract's own time)."""

    texts: dict[int, str] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def _unavailable(what: str) -> IngestError:
    return IngestError(
        f"this PDF has pages without a text layer and OCR is on, but {what}; {_INSTALL}",
        code="ingest.ocr_unavailable",
    )


def _pdfium() -> Any:
    try:
        import pypdfium2
    except ImportError as exc:
        raise _unavailable("the PDF renderer pypdfium2 is not installed") from exc
    return pypdfium2


def _cpu_seconds_left(children_at_start: float) -> int | None:
    """CPU seconds the current file has left under the worker's ``RLIMIT_CPU``; None if unlimited.

    The worker's own time counts against its soft limit already; tesseract's time (its
    children) is subtracted here so the limit covers the whole file.
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_CPU)
    if soft == resource.RLIM_INFINITY:
        return None
    used = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - children_at_start
    return math.floor(soft - used)


def _child_setup(cpu_seconds: int | None) -> Callable[[], None]:
    libc: Any = None
    with contextlib.suppress(OSError):
        libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        if libc is not None:  # die with the worker when it is killed at the wall-time limit
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if cpu_seconds is not None:
            _, hard = resource.getrlimit(resource.RLIMIT_CPU)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, hard))

    return setup


def _timeout() -> IngestError:
    return IngestError(
        "parsing took longer than the time limit (OCR of this PDF needs more CPU seconds: "
        "raise parser_cpu_seconds and parser_timeout_seconds)",
        code="ingest.parser_timeout",
    )


def _tesseract(image: bytes, binary: str, options: OcrOptions, children_at_start: float) -> str:
    left = _cpu_seconds_left(children_at_start)
    if left is not None and left < 1:
        raise _timeout()
    command = [binary, "stdin", "stdout", "-l", options.language, "--dpi", str(options.dpi)]
    command += ["-c", "page_separator="]
    # One thread per tesseract: the parser workers already use the cores in parallel.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(
            command,
            input=image,
            capture_output=True,
            env=env,
            check=False,
            preexec_fn=_child_setup(left),  # the worker runs no other threads
        )
    except FileNotFoundError as exc:
        raise _unavailable(f"the tesseract binary {binary!r} was not found") from exc
    except OSError as exc:
        raise IngestError(f"tesseract could not be started ({exc})", code="ingest.ocr_failed") from exc
    if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        raise _timeout()
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace").strip()
        if "Failed loading language" in stderr or "Error opening data file" in stderr:
            raise _unavailable(f"tesseract has no data for the language {options.language!r}")
        last = stderr.splitlines()[-1] if stderr else f"exit status {done.returncode}"
        raise IngestError(f"tesseract failed on a page: {last[:200]}", code="ingest.ocr_failed")
    return done.stdout.decode("utf-8", "replace")


def _has_content(page: Any) -> bool:
    """A page with no objects at all is blank: nothing for OCR to read."""
    return next(iter(page.get_objects(max_depth=1)), None) is not None


def _render(page: Any, dpi: int) -> bytes:
    width, height = page.get_size()  # in points, 1/72 inch
    scale = dpi / 72
    pixels = width * height * scale * scale
    if pixels > MAX_PIXELS:
        scale *= math.sqrt(MAX_PIXELS / pixels)
    bitmap = page.render(scale=scale, grayscale=True)
    out = io.BytesIO()
    bitmap.to_pil().convert("L").save(out, format="PPM")  # raw greyscale PGM: no encoding cost
    return out.getvalue()


def ocr_pdf_pages(data: bytes, page_indexes: Sequence[int], options: OcrOptions) -> OcrResult:
    """Render and OCR the given 0-based pages of a PDF; blank pages are skipped.

    Raises:
        IngestError: ``ingest.ocr_unavailable``, ``ingest.ocr_too_many_pages``,
            ``ingest.ocr_failed`` or ``ingest.parser_timeout`` (see the module docstring).
    """
    pdfium = _pdfium()
    binary = shutil.which(options.command)
    if binary is None:
        raise _unavailable(f"the tesseract binary {options.command!r} was not found")
    children_at_start = _cpu(resource.RUSAGE_CHILDREN)
    own_at_start = _cpu(resource.RUSAGE_SELF)
    result = OcrResult()
    started = time.monotonic()
    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        raise IngestError("the PDF pages could not be rendered for OCR", code="ingest.ocr_failed") from exc
    try:
        pages = [i for i in page_indexes if _has_content(document[i])]
        if len(pages) > options.max_pages:
            raise IngestError(
                f"{len(pages)} pages of this PDF have no text layer and need OCR, more than "
                f"ocr_max_pages ({options.max_pages}); raise ocr_max_pages (and the parser time "
                "limits) to read it",
                code="ingest.ocr_too_many_pages",
            )
        for index in pages:
            try:
                image = _render(document[index], options.dpi)
            except pdfium.PdfiumError as exc:
                raise IngestError(
                    f"page {index + 1} of the PDF could not be rendered for OCR", code="ingest.ocr_failed"
                ) from exc
            result.texts[index] = _tesseract(image, binary, options, children_at_start)
    finally:
        document.close()
    result.seconds = time.monotonic() - started
    result.cpu_seconds = (
        _cpu(resource.RUSAGE_SELF) - own_at_start + _cpu(resource.RUSAGE_CHILDREN) - children_at_start
    )
    return result


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime
