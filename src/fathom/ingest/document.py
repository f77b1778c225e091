"""The parsed form of a document: one text, and structural blocks that point into it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from fathom.ingest.clean import Removed, clean_text_counted

__all__ = ["Block", "DocumentBuilder", "ParsedDocument"]

BlockKind = Literal["heading", "paragraph", "code", "table", "list"]


@dataclass(frozen=True, slots=True)
class Block:
    """A span ``[start, end)`` of the document text, under a heading path."""

    start: int
    end: int
    kind: BlockKind
    heading_path: tuple[str, ...]


@dataclass(slots=True)
class ParsedDocument:
    title: str
    text: str
    blocks: list[Block]
    mime_type: str
    warnings: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


class DocumentBuilder:
    """Builds a document's text block by block, tracking the heading path.

    Every piece is cleaned as it is added, so block offsets point into the final text.
    """

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._headings: list[tuple[int, str]] = []
        self.blocks: list[Block] = []
        self.removed = Removed()

    @property
    def heading_path(self) -> tuple[str, ...]:
        return tuple(text for _level, text in self._headings)

    @property
    def next_offset(self) -> int:
        """Where the next block's text will start."""
        return self._length + 2 if self._parts else 0

    def heading(self, level: int, text: str) -> None:
        text = " ".join(clean_text_counted(text, self.removed).split())
        if not text:
            return
        while self._headings and self._headings[-1][0] >= level:
            self._headings.pop()
        self._headings.append((level, text[:300]))
        self._append(text, "heading")

    def block(self, text: str, kind: BlockKind = "paragraph") -> None:
        text = clean_text_counted(text, self.removed)
        if text.strip():
            self._append(text, kind)

    def _append(self, text: str, kind: BlockKind) -> None:
        if self._parts:
            self._parts.append("\n\n")
            self._length += 2
        start = self._length
        self._parts.append(text)
        self._length += len(text)
        self.blocks.append(Block(start, self._length, kind, self.heading_path))

    def text(self) -> str:
        return "".join(self._parts)
