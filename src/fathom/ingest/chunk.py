"""Structure-aware chunking measured in the embedder's tokens.

A document is cut into sections at headings; a section is packed into chunks of
at most ``max_tokens`` tokens from whole blocks (paragraphs, lists, code), then
sentences, then token windows for text with no sentence boundaries. Consecutive
chunks of a section share up to ``overlap`` tokens. A heading with no text of its
own travels with the text that follows it.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fathom.ingest.document import Block
from fathom.ingest.sentences import sentence_spans

__all__ = ["ChunkSpan", "chunk_document", "sentence_spans"]


@dataclass(frozen=True, slots=True)
class ChunkSpan:
    start: int
    end: int
    heading_path: tuple[str, ...]
    token_count: int


class _TokenCounter:
    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.starts = [a for a, _ in spans]

    def count(self, start: int, end: int) -> int:
        return bisect.bisect_left(self.starts, end) - bisect.bisect_left(self.starts, start)

    def cut_points(self, start: int, end: int, size: int) -> list[int]:
        """Offsets that cut ``[start, end)`` into windows of ``size`` tokens."""
        first = bisect.bisect_left(self.starts, start)
        last = bisect.bisect_left(self.starts, end)
        return [self.starts[i] for i in range(first + size, last, size)]


def chunk_document(
    text: str,
    blocks: list[Block],
    token_spans: Callable[[str], list[tuple[int, int]]],
    max_tokens: int,
    overlap: int,
    breaks: Sequence[int] = (),
) -> list[ChunkSpan]:
    """Cut a parsed document into chunks; offsets index into ``text``.

    ``breaks`` are offsets no chunk may cross (page starts), so each chunk cites one page.
    """
    if not text.strip():
        return []
    if not blocks:
        blocks = [Block(0, len(text), "paragraph", ())]
    counter = _TokenCounter(token_spans(text))
    overlap = min(overlap, max_tokens // 2)

    # Group blocks into sections; a run of headings joins the section that follows it.
    sections: list[tuple[tuple[str, ...], list[tuple[int, int]]]] = []
    pending: list[tuple[int, int]] = []
    page_breaks = sorted(breaks)
    page = 0
    for block in blocks:
        new_page = bisect.bisect_right(page_breaks, block.start)
        if new_page != page:
            page = new_page
            if sections and not pending:
                sections.append((block.heading_path, []))  # a fresh section on a new page
        if block.kind == "heading":
            pending.append((block.start, block.end))
            continue
        if sections and not pending and sections[-1][0] == block.heading_path:
            sections[-1][1].append((block.start, block.end))
        else:
            sections.append((block.heading_path, [*pending, (block.start, block.end)]))
        pending = []
    if pending:
        last_heading = next(b for b in reversed(blocks) if b.kind == "heading")
        sections.append((last_heading.heading_path, pending))

    chunks: list[ChunkSpan] = []
    for path, spans in sections:
        if not spans:
            continue
        units = _units(text, spans, counter, max_tokens)
        chunks.extend(_pack(units, path, counter, max_tokens, overlap))
    return chunks


def _units(
    text: str, spans: list[tuple[int, int]], counter: _TokenCounter, max_tokens: int
) -> list[tuple[int, int, int]]:
    """Break a section into (start, end, tokens) units that each fit in a chunk."""
    units: list[tuple[int, int, int]] = []
    for start, end in spans:
        tokens = counter.count(start, end)
        if tokens <= max_tokens:
            units.append((start, end, tokens))
            continue
        for s_start, s_end in sentence_spans(text, start, end):
            s_tokens = counter.count(s_start, s_end)
            if s_tokens <= max_tokens:
                units.append((s_start, s_end, s_tokens))
                continue
            cuts = [s_start, *counter.cut_points(s_start, s_end, max_tokens), s_end]
            for a, b in zip(cuts, cuts[1:], strict=False):
                if b > a:
                    units.append((a, b, counter.count(a, b)))
    return units


def _pack(
    units: list[tuple[int, int, int]],
    path: tuple[str, ...],
    counter: _TokenCounter,
    max_tokens: int,
    overlap: int,
) -> list[ChunkSpan]:
    chunks: list[ChunkSpan] = []
    current: list[tuple[int, int, int]] = []
    tokens = 0
    for unit in units:
        if current and tokens + unit[2] > max_tokens:
            chunks.append(_span(current, path, counter))
            # Carry trailing units of the finished chunk as overlap, if they leave room.
            carried: list[tuple[int, int, int]] = []
            carried_tokens = 0
            for previous in reversed(current):
                if (
                    carried_tokens + previous[2] > overlap
                    or carried_tokens + previous[2] + unit[2] > max_tokens
                ):
                    break
                carried.insert(0, previous)
                carried_tokens += previous[2]
            current, tokens = carried, carried_tokens
        current.append(unit)
        tokens += unit[2]
    if current:
        chunks.append(_span(current, path, counter))
    return chunks


def _span(units: list[tuple[int, int, int]], path: tuple[str, ...], counter: _TokenCounter) -> ChunkSpan:
    start, end = units[0][0], units[-1][1]
    return ChunkSpan(start, end, path, counter.count(start, end))
