"""Text cleaning applied to every extracted document before chunking."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from fathom.normalize import ZERO_WIDTH, count_homoglyph_words

__all__ = ["Removed", "clean_text", "clean_text_counted", "unusual_characters"]

# C0/C1 control characters other than tab, newline and carriage return; NUL included.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_MANY_BLANK_LINES = re.compile(r"\n{4,}")


@dataclass(slots=True)
class Removed:
    """Characters cleaning removed, summed over everything cleaned with this tally."""

    nul: int = 0
    control: int = 0

    def warnings(self) -> list[str]:
        out = []
        if self.nul:
            out.append(f"removed {self.nul} NUL byte(s)")
        if self.control:
            out.append(f"removed {self.control} control character(s)")
        return out


def clean_text_counted(text: str, removed: Removed) -> str:
    """Normalise extracted text: NFC, one newline style, no control characters.

    What was removed is added to ``removed``.
    """
    nul_count = text.count("\x00")
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n")
    text, control_count = _CONTROL.subn("", text)
    removed.nul += nul_count
    removed.control += control_count - nul_count
    text = unicodedata.normalize("NFC", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _MANY_BLANK_LINES.sub("\n\n\n", text)
    return text.strip("\n")


def clean_text(text: str) -> tuple[str, list[str]]:
    """Clean one text (see :func:`clean_text_counted`); returns it with warnings."""
    removed = Removed()
    cleaned = clean_text_counted(text, removed)
    return cleaned, removed.warnings()


def unusual_characters(text: str) -> list[str]:
    """Warnings about invisible and look-alike characters (kept for display, folded for search)."""
    if text.isascii():
        return []
    warnings = []
    invisible = sum(text.count(ch) for ch in ZERO_WIDTH)
    if invisible:
        warnings.append(f"{invisible} zero-width character(s) ignored for search")
    spoofed = count_homoglyph_words(text)
    if spoofed:
        warnings.append(f"{spoofed} word(s) mix look-alike letters of other scripts; folded for search")
    return warnings
