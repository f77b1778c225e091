"""The typed values that flow through fathom. No framework imports here."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "Answer",
    "Citation",
    "DocumentInfo",
    "FileOutcome",
    "Hit",
    "IngestReport",
    "Principal",
    "StoreStatus",
    "TextDocument",
    "contextual_text",
]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: reads are filtered to what this principal may see.

    A document with an empty ACL is readable by the whole tenant; otherwise the
    principal's user or one of its groups must be listed. ``admin`` sees every
    document of its tenant.
    """

    tenant: str = "default"
    user: str | None = None
    groups: tuple[str, ...] = ()
    admin: bool = False

    def acl_tokens(self) -> list[str]:
        """The ACL index tokens this principal matches ("*" is the tenant-wide token)."""
        tokens = ["*"]
        if self.user:
            tokens.append(f"u:{self.user}")
        tokens.extend(f"g:{group}" for group in self.groups)
        return tokens


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk. ``start``/``end`` are character offsets into the document's text."""

    doc_id: str
    chunk_id: int
    source: str
    title: str
    score: float
    text: str
    start: int
    end: int
    heading_path: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heading_path"] = list(self.heading_path)
        return data


@dataclass(frozen=True, slots=True)
class Citation:
    """An exact quote from a document, with where it lies in the document's text."""

    n: int
    doc_id: str
    chunk_id: int
    source: str
    title: str
    quote: str
    start: int
    end: int
    heading_path: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["heading_path"] = list(self.heading_path)
        return data


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer with inline ``[n]`` markers that refer to ``citations``, or an abstention."""

    answer: str
    citations: tuple[Citation, ...]
    abstained: bool
    hits: tuple[Hit, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "citations": [c.to_dict() for c in self.citations],
            "abstained": self.abstained,
        }


FileStatus = Literal["added", "updated", "unchanged", "deleted", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one source during ingest or sync."""

    source: str
    status: FileStatus
    doc_id: str | None = None
    chunks: int = 0
    error_code: str | None = None
    message: str | None = None
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class IngestReport:
    """The outcome of one ingest or sync run, one entry per source."""

    outcomes: list[FileOutcome] = field(default_factory=list)

    def count(self, status: FileStatus) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def failed(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        statuses: tuple[FileStatus, ...] = ("added", "updated", "unchanged", "deleted", "failed", "skipped")
        return {
            "summary": {status: self.count(status) for status in statuses},
            "files": [asdict(o) for o in self.outcomes],
        }


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    """A stored document, without its text."""

    doc_id: str
    source: str
    title: str
    mime_type: str
    content_hash: str
    chunks: int
    metadata: dict[str, Any]
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True)
class StoreStatus:
    """What ``fathom status`` reports."""

    home: str
    database: str
    documents: int
    chunks: int
    last_sequence: int
    index_positions: dict[str, int]
    index_chunks: dict[str, int]
    disk_bytes: int
    embedder: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class TextDocument:
    """A document given as text rather than as a file (API uploads, evaluation corpora)."""

    source: str
    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def contextual_text(title: str, heading_path: Sequence[str], text: str) -> str:
    """A chunk as the embedder and BM25 see it: its title and heading path, then its text.

    The context lets a passage deep in a manual match a question that names the manual or
    its section.
    """
    context = [title] + [h for h in heading_path if h and h != title]
    return "\n".join([" > ".join(part for part in context if part), text]).strip()
