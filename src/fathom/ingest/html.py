"""HTML: the main content only.

Scripts, styles, navigation, headers, footers, forms and hidden elements are
dropped; hidden text (``display:none``, ``hidden``, white-on-white, zero-size or
transparent text) is reported as a warning, because it is a favourite place to
hide instructions meant for a model rather than a reader.
"""

from __future__ import annotations

import re

from fathom.ingest.detect import HTML, decode_text
from fathom.ingest.document import BlockKind, DocumentBuilder, ParsedDocument

__all__ = ["parse_html", "parse_html_text"]

_SKIP_TAGS = {
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "canvas",
    "button",
    "select",
    "head",
    "object",
    "embed",
}
_BLOCK_TAGS = {
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "ul",
    "ol",
    "pre",
    "blockquote",
    "table",
    "tr",
    "td",
    "th",
    "dt",
    "dd",
    "dl",
    "figure",
    "figcaption",
    "caption",
    "br",
    "hr",
    "address",
}
_HIDDEN_STYLE = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0(\.0*)?\s*(px|pt|em|rem|%)?\s*(;|$)"
    r"|opacity\s*:\s*0(\.0*)?\s*(;|$)",
    re.IGNORECASE,
)
_WHITE = r"(white|#fff(fff)?|rgba?\(\s*255\s*,\s*255\s*,\s*255\s*(,\s*1(\.0*)?\s*)?\))"
_WHITE_TEXT = re.compile(r"(^|;|\s)color\s*:\s*" + _WHITE + r"\s*(!important)?\s*(;|$)", re.IGNORECASE)
_WHITE_BACKGROUND = re.compile(r"background(-color)?\s*:\s*" + _WHITE, re.IGNORECASE)
_HEADING = re.compile(r"h[1-6]")


def _page_is_white(style: str) -> bool:
    """A text colour of white is hidden on the default (white) page unless a background is set."""
    return "background" not in style.lower() or _WHITE_BACKGROUND.search(style) is not None


def parse_html(data: bytes) -> ParsedDocument:
    """Parse HTML bytes (any encoding) into its main text."""
    decoded = decode_text(data)
    parsed = parse_html_text(decoded.text)
    parsed.warnings[:0] = decoded.warnings
    return parsed


def parse_html_text(markup: str) -> ParsedDocument:
    """Parse HTML markup into its main text, headings and blocks."""
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, Tag

    soup = BeautifulSoup(markup, "lxml")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    builder = DocumentBuilder()
    buffer: list[str] = []
    hidden = 0
    white = 0

    def flush() -> None:
        text = " ".join("".join(buffer).split())
        buffer.clear()
        if text:
            builder.block(text, "paragraph")

    def block(text: str, kind: BlockKind) -> None:
        flush()
        builder.block(text, kind)

    root = soup.body or soup
    # An explicit stack instead of recursion: deeply nested pages cannot exhaust the stack.
    stack: list[tuple[object, bool]] = [(child, False) for child in reversed(list(root.children))]
    while stack:
        node, closing = stack.pop()
        if closing:
            flush()
            continue
        if isinstance(node, NavigableString):
            if type(node) is NavigableString:  # skip comments, CDATA, doctype
                buffer.append(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name.lower()
        if name in _SKIP_TAGS:
            continue
        style = str(node.get("style", ""))
        if node.has_attr("hidden") or node.get("aria-hidden") == "true" or _HIDDEN_STYLE.search(style):
            hidden += 1
            continue
        if _WHITE_TEXT.search(style) and _page_is_white(style):
            white += 1
            continue
        if _HEADING.fullmatch(name):
            flush()
            builder.heading(int(name[1]), node.get_text(" ", strip=True))
            continue
        if name == "pre":
            block(node.get_text(), "code")
            continue
        if name in _BLOCK_TAGS:
            flush()
            stack.append((node, True))
        stack.extend((child, False) for child in reversed(list(node.children)))
    flush()
    if not title:
        first_heading = next((b for b in builder.blocks if b.kind == "heading"), None)
        title = first_heading.heading_path[-1] if first_heading and first_heading.heading_path else ""
    warnings: list[str] = []
    if hidden:
        warnings.append(f"dropped {hidden} hidden element(s)")
    if white:
        warnings.append(f"dropped {white} element(s) of hidden white-on-white text")
    return ParsedDocument(
        title, builder.text(), builder.blocks, HTML, [*warnings, *builder.removed.warnings()]
    )
