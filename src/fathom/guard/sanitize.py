"""Output sanitising: generated answers carry no raw HTML and no links or images the sources lack.

A model that read a poisoned document may be steered into writing a Markdown
image whose URL smuggles data out (the browser fetches it when the answer is
shown). Only URLs that appear verbatim in the cited sources survive; other
links keep their text, images disappear, and HTML tags are removed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["sanitize_output"]

_IMAGE = re.compile(r"!\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_LINK = re.compile(r"(?<!!)\[([^\]]+)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--.*?-->", re.DOTALL)
_BARE_URL = re.compile(r"\b(?:https?|ftp|data|javascript):[^\s)\]>\"']+", re.IGNORECASE)
_REFERENCE_DEF = re.compile(r"^\s*\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)


def sanitize_output(text: str, allowed_sources: Iterable[str]) -> tuple[str, int]:
    """Remove raw HTML and any link or image whose URL no allowed source contains.

    Returns:
        The sanitised text and how many things were removed.
    """
    sources = [s for s in allowed_sources if s]
    removed = 0

    def allowed(url: str) -> bool:
        return bool(url) and any(url in source for source in sources)

    def image(match: re.Match[str]) -> str:
        nonlocal removed
        if allowed(match.group(2)):
            return match.group(0)
        removed += 1
        return match.group(1)

    def link(match: re.Match[str]) -> str:
        nonlocal removed
        if allowed(match.group(2)):
            return match.group(0)
        removed += 1
        return match.group(1)

    def tag(_match: re.Match[str]) -> str:
        nonlocal removed
        removed += 1
        return ""

    def bare(match: re.Match[str]) -> str:
        nonlocal removed
        if allowed(match.group(0)):
            return match.group(0)
        removed += 1
        return "[link removed]"

    text = _IMAGE.sub(image, text)
    text = _LINK.sub(link, text)
    text = _REFERENCE_DEF.sub(tag, text)
    text = _TAG.sub(tag, text)
    # Bare URLs outside the kept links: protect kept Markdown links from the bare-URL pass.
    parts = re.split(r"(!?\[[^\]]*\]\([^)]*\))", text)
    text = "".join(p if p.startswith(("[", "![")) else _BARE_URL.sub(bare, p) for p in parts)
    return text, removed
