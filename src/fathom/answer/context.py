"""Context assembly: the retrieved chunks an LLM reads, within a token budget, fenced as data.

Chunks are deduplicated (same chunk, or text contained in a chunk already taken),
cut to the budget in rank order, then laid out with the best evidence at the start
and the end of the context, where models attend most. Each chunk gets the id ``n``
the model cites it by, and its text is fenced as untrusted data, whatever its
screening score: the fence tag carries a random marker chosen for each prompt
(``<document-3f9c0a1b7e2d id="1" ...>`` ... ``</document-3f9c0a1b7e2d>``), which a
document written before the question cannot know, and anything in a chunk that
looks like a ``document`` tag (``</document>``, ``< /document``, ``＜/document``,
``&lt;/document``) is defused as well, so that nothing inside a chunk can close the
fence, open a new one, or pose as instructions.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from fathom.domain import Hit

__all__ = ["ContextChunk", "assemble_context", "estimate_tokens", "fence", "fence_marker"]

# "<" and its look-alikes (full-width, small form, entities), then a document tag's name.
_FENCE_TAG = re.compile(r"(?:<|\uff1c|\ufe64|&lt;?|&#0*60;?|&#x0*3c;?)(\s*/?\s*document)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ContextChunk:
    """A chunk as the model sees it: cited as ``[n]``; ``text`` may be PII-masked."""

    n: int
    hit: Hit
    text: str


def estimate_tokens(text: str) -> int:
    """A tokenizer-free token estimate (about four characters per token for English)."""
    return max(1, (len(text) + 3) // 4)


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


def assemble_context(
    hits: Sequence[Hit],
    budget_tokens: int,
    *,
    transform: Callable[[str], str] = lambda text: text,
) -> list[ContextChunk]:
    """The chunks to put in the prompt, numbered in prompt order (see the module docstring).

    Args:
        hits: retrieved chunks, best first.
        budget_tokens: the most (estimated) tokens the chunks may take together.
        transform: applied to each chunk's text as it enters the prompt (PII masking).
    """
    chosen: list[Hit] = []
    seen: list[str] = []
    used = 0
    for hit in hits:
        key = _normalized(hit.text)
        if not key or any(key in other for other in seen):
            continue
        cost = estimate_tokens(hit.text) + 16  # the fence around it
        if used + cost > budget_tokens:
            if chosen:
                continue  # a smaller chunk further down may still fit
            # Even the best chunk alone is too long: cut it rather than answer from nothing.
            hit = _truncated(hit, budget_tokens - 16)
            cost = budget_tokens
        chosen.append(hit)
        seen.append(key)
        used += cost
    # Best at both ends: ranks 1, 3, 5, ... then ..., 4, 2.
    ordered = chosen[0::2] + chosen[1::2][::-1]
    return [ContextChunk(n, hit, transform(hit.text)) for n, hit in enumerate(ordered, start=1)]


def _truncated(hit: Hit, tokens: int) -> Hit:
    chars = max(tokens, 1) * 4
    text = hit.text[:chars]
    return Hit(
        hit.doc_id,
        hit.chunk_id,
        hit.source,
        hit.title,
        hit.score,
        text,
        hit.start,
        hit.start + len(text),
        hit.heading_path,
    )


def _attribute(value: str) -> str:
    return value.replace('"', "'").replace("<", "‹").replace(">", "›").replace("\n", " ")


def fence_marker(texts: Iterable[str]) -> str:
    """A fresh random fence marker that occurs in none of ``texts``."""
    corpus = "\n".join(texts)
    while True:
        marker = secrets.token_hex(6)
        if marker not in corpus:
            return marker


def fence(chunk: ContextChunk, *, warning: str | None = None, marker: str | None = None) -> str:
    """The chunk as a fenced block of untrusted data, headed by its id and source.

    With ``marker`` (see :func:`fence_marker`) the tag is ``document-<marker>``; without it,
    the plain ``document`` tag of prompt version ``answer-v1``.
    """
    body = _FENCE_TAG.sub(lambda m: "‹" + m.group(1), chunk.text)
    title = _attribute(chunk.hit.title)
    where = _attribute(" / ".join(chunk.hit.heading_path))
    attributes = f'id="{chunk.n}" title="{title}"' + (f' section="{where}"' if where else "")
    if warning:
        attributes += f' warning="{warning}"'
    tag = f"document-{marker}" if marker else "document"
    return f"<{tag} {attributes}>\n{body}\n</{tag}>"
