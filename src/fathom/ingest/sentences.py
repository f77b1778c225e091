"""Sentence boundaries, with exact character offsets into the text they came from.

A line break always ends a sentence (list items, table rows and ``Key: value`` lines are
units of their own). Inside a line, the boundaries come from syntok, a maintained rule-based
segmenter that knows abbreviations ("Dr. Smith", "e.g.", "Fig. 3", "U.S."), decimals,
addresses and enumerations, where a bare ``. `` regex would cut them apart. Only a line
that could hold a second sentence (a ``.``, ``!``, ``?`` or ``…`` followed by a space) goes
through the segmenter; the others are one sentence as they are, which keeps ingest and
answering cheap.

The spans are ``(start, end)`` offsets into the original string, trimmed of surrounding
whitespace, so ``text[start:end]`` is always the verbatim sentence a citation quotes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from syntok import segmenter

__all__ = ["sentence_spans"]

_LINE = re.compile(r"[^\n]+")
# Where a second sentence could start inside a line.
_MAYBE_END = re.compile(r"[.!?…][\"'”’)\]]*\s+\S")


def _starts_after_first(line: str) -> Iterator[int]:
    """Offsets (in ``line``) where the line's second and later sentences start."""
    if _MAYBE_END.search(line) is None:
        return
    first = True
    for paragraph in segmenter.analyze(line):
        for sentence in paragraph:
            if first:
                first = False
                continue
            # A token's offset is where its text starts in ``line``: exact by construction.
            yield sentence[0].offset


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence (or line) spans inside ``text[start:end]``, trimmed of surrounding whitespace."""
    end = len(text) if end is None else end
    out: list[tuple[int, int]] = []
    for line in _LINE.finditer(text, start, end):
        cuts = [
            line.start(),
            *(line.start() + offset for offset in _starts_after_first(line.group())),
            line.end(),
        ]
        for a, b in zip(cuts, cuts[1:], strict=False):
            while a < b and text[a].isspace():
                a += 1
            while b > a and text[b - 1].isspace():
                b -= 1
            if b > a:
                out.append((a, b))
    return out
