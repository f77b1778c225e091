"""Text cleaning applied to every extracted document before chunking."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_text"]

# C0/C1 control characters other than tab, newline and carriage return; NUL included.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{4,}")


def clean_text(text: str) -> tuple[str, list[str]]:
    """Normalise extracted text: NFC, one newline style, no control characters.

    Returns:
        The cleaned text and warnings about what was removed.
    """
    warnings: list[str] = []
    nul_count = text.count("\x00")
    if nul_count:
        warnings.append(f"removed {nul_count} NUL byte(s)")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text, removed = _CONTROL.subn("", text)
    if removed - nul_count > 0:
        warnings.append(f"removed {removed - nul_count} control character(s)")
    text = unicodedata.normalize("NFC", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _MANY_BLANK_LINES.sub("\n\n\n", text)
    return text.strip("\n"), warnings
