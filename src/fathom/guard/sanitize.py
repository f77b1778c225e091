"""Output sanitising: generated answers carry no raw HTML and no links or images the sources lack.

A model that read a poisoned document may be steered into writing a Markdown
image whose URL smuggles data out (a renderer fetches it as soon as the answer
is shown) or a link that does so when followed. The answer is parsed with a
CommonMark parser (markdown-it-py, tables and strikethrough on), so every form a
renderer would turn into a fetch or a link is seen as the renderer sees it:
inline and reference-style links and images (any title quoting, angle-bracket
destinations, entity-encoded URLs, nested brackets), autolinks, reference
definitions, inline and block HTML, and bare URLs in text and code.

The rules:

- A URL survives only if it is ``http``, ``https`` or ``mailto`` and occurs
  *whole* in one of the allowed sources (the passages given to the model and
  their source names): not a prefix of a longer URL there, not merely a host.
  ``data:``, ``javascript:``, relative and protocol-relative (``//host``) URLs
  never survive.
- A link with a refused URL keeps its text (a link whose text is a number keeps
  it as the ``[n]`` citation it was meant to be); an image with a refused URL
  disappears, alt text included (alt text is words the model chose to hide, and
  an answer reads the same without it); an autolink or bare URL becomes
  ``[link removed]``.
- Raw HTML is removed: inline tags go (the text between them stays); an HTML
  block keeps only its text.
- Code spans and code blocks stay code, but a refused URL inside them is removed
  too: a renderer does not fetch it, but a reader or an agent may follow it.

When nothing needs removing the text is returned exactly as given. Otherwise it
is rebuilt from the parse tree as plain Markdown (kept links inline, reference
definitions dropped) and parsed again until nothing is left to remove; a text
still unclean after a few rounds loses every character that can open a link,
image or tag.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from markdown_it import MarkdownIt
from markdown_it.tree import SyntaxTreeNode

__all__ = ["LINK_REMOVED", "sanitize_output"]

LINK_REMOVED = "[link removed]"
_MAX_ROUNDS = 4
_KEPT_SCHEMES = ("http://", "https://", "mailto:")

_MARKDOWN = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])
# Parse every destination as a link, whatever its scheme, so that each one is judged here
# (markdown-it would otherwise leave `javascript:` links as text for a laxer renderer to link).
_MARKDOWN.validateLink = lambda url: True  # type: ignore[method-assign]

# Bare URLs: any scheme with "//", the schemes that need none, GFM's "www." autolinks and
# protocol-relative hosts. Trailing punctuation is trimmed off a match before it is judged.
_BARE_URL = re.compile(
    r"(?<![A-Za-z0-9+.-])(?:[A-Za-z][A-Za-z0-9+.-]{0,31}://|(?:data|javascript|vbscript|mailto|file):)"
    r"[^\s<>\"'`]*"
    r"|(?<![\w.@/-])www\.[^\s<>\"'`]+"
    r"|(?<![\w:/.@-])//[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+[^\s<>\"'`]*",
    re.IGNORECASE,
)
_TRAILING = ".,;:!?*_~'\""
_URL_BODY = re.compile(r"[\w/.~%:@!$&'*+,;=?#\[\]()-]")
_AFTER_URL = frozenset(" \t\r\n<>\"'`()[]{}|\\^")
_TAG = re.compile(r"<!--.*?-->|<!\[CDATA\[.*?\]\]>|<[!?/]?[A-Za-z][^<>]*>?", re.DOTALL)
# Text that reads as a tag once entities are decoded ("&lt;img src=...&gt;").
_TAG_IN_TEXT = re.compile(r"<[!?/]?[A-Za-z][^<>]*>")
_CITATION_TEXT = re.compile(r"\d{1,3}")


def sanitize_output(text: str, allowed_sources: Iterable[str]) -> tuple[str, int]:
    """Remove raw HTML and every link, image or URL that the allowed sources do not contain.

    See the module docstring for the rules.

    Returns:
        The sanitised text (``text`` itself when nothing was removed) and how many
        links, images, URLs, definitions and HTML pieces were removed.
    """
    policy = _Policy([source for source in allowed_sources if source])
    total = 0
    for _round in range(_MAX_ROUNDS):
        rebuilt, removed = _Rebuild(policy).document(text)
        if not removed:
            return text, total
        text, total = rebuilt, total + removed
    return _neutralised(text, policy), total + 1


class _Policy:
    """Which URLs may stay: kept schemes only, and only when a source contains them whole."""

    def __init__(self, sources: list[str]) -> None:
        self._sources = sources

    def allows(self, url: str) -> bool:
        url = url.strip()
        if not url.lower().startswith(_KEPT_SCHEMES):
            return False
        forms = {url, _MARKDOWN.normalizeLinkText(url), _MARKDOWN.normalizeLink(url)}
        if url.lower().startswith("mailto:"):
            forms = {form[len("mailto:") :] for form in forms}
        return any(_occurs_whole(form, source) for form in forms if form for source in self._sources)

    def scrub(self, text: str) -> tuple[str, int]:
        """``text`` with its refused bare URLs replaced by :data:`LINK_REMOVED`."""
        removed = 0

        def replace(match: re.Match[str]) -> str:
            nonlocal removed
            url, tail = _trimmed(match.group(0))
            if self.allows(url):
                return match.group(0)
            removed += 1
            return LINK_REMOVED + tail

        return _BARE_URL.sub(replace, text), removed


def _occurs_whole(url: str, source: str) -> bool:
    """Whether ``url`` occurs in ``source`` as a whole URL, not as part of a longer one."""
    start = source.find(url)
    while start >= 0:
        end = start + len(url)
        before_ok = start == 0 or not _URL_BODY.match(source[start - 1]) or source[start - 1] in "([<'\""
        after = source[end : end + 1]
        after_ok = (
            not after
            or after in _AFTER_URL
            or (after in _TRAILING and (end + 1 == len(source) or source[end + 1] in _AFTER_URL))
        )
        if before_ok and after_ok:
            return True
        start = source.find(url, start + 1)
    return False


def _trimmed(url: str) -> tuple[str, str]:
    """Split trailing punctuation and unbalanced closing brackets off a bare URL."""
    end = len(url)
    while end > 0:
        last = url[end - 1]
        opening = {")": "(", "]": "["}.get(last)
        unbalanced = opening is not None and url.count(opening, 0, end) < url.count(last, 0, end)
        if last in _TRAILING or unbalanced:
            end -= 1
        else:
            break
    return url[:end], url[end:]


def _neutralised(text: str, policy: _Policy) -> str:
    """Last resort: no ``<``/``>``, no ``](`` or ``]:``, no refused URLs; nothing can link then."""
    text = text.replace("<", "").replace(">", "").replace("](", "] (").replace("]:", "] :")
    return policy.scrub(text)[0]


class _Rebuild:
    """One round: the text rebuilt from its parse tree without what the policy refuses."""

    def __init__(self, policy: _Policy) -> None:
        self._policy = policy
        self.removed = 0

    def document(self, text: str) -> tuple[str, int]:
        env: dict[str, object] = {}
        root = SyntaxTreeNode(_MARKDOWN.parse(text, env))
        references = env.get("references")
        if isinstance(references, dict):
            # Definitions are never written back (kept links are written inline); one with a
            # refused URL counts as removed even if nothing uses it.
            for definition in references.values():
                if not self._policy.allows(str(definition.get("href", ""))):
                    self.removed += 1
        return self._blocks(root.children, tight=False), self.removed

    # -- blocks --------------------------------------------------------------------------

    def _blocks(self, nodes: list[SyntaxTreeNode], *, tight: bool) -> str:
        parts = [part for part in (self._block(node) for node in nodes) if part]
        return ("\n" if tight else "\n\n").join(parts)

    def _block(self, node: SyntaxTreeNode) -> str:
        kind = node.type
        if kind == "paragraph":
            return self._inline_of(node)
        if kind == "heading":
            level = int(node.tag[1]) if node.tag[1:].isdigit() else 1
            return "#" * level + " " + self._inline_of(node).replace("\n", " ")
        if kind == "blockquote":
            body = self._blocks(node.children, tight=False)
            return "\n".join(f"> {line}" if line else ">" for line in body.split("\n"))
        if kind in ("bullet_list", "ordered_list"):
            return self._list(node)
        if kind in ("fence", "code_block"):
            return self._code_block(node)
        if kind == "hr":
            return "---"
        if kind == "html_block":
            self.removed += 1
            return self._scrub(html.unescape(_TAG.sub("", node.content)).strip())
        if kind == "table":
            return self._table(node)
        if kind == "inline":
            return self._inline(node.children)
        return self._blocks(node.children, tight=False) if node.children else self._scrub(node.content)

    def _inline_of(self, node: SyntaxTreeNode) -> str:
        return "".join(self._inline(child.children) for child in node.children if child.type == "inline")

    def _list(self, node: SyntaxTreeNode) -> str:
        items = node.children
        tight = all(p.hidden for item in items for p in item.children if p.type == "paragraph")
        start = int(str(node.attrs.get("start", 1)))
        out: list[str] = []
        for i, item in enumerate(items):
            ordered = f"{start + i}{item.markup or '.'}"
            marker = (node.markup or "-") if node.type == "bullet_list" else ordered
            body = self._blocks(item.children, tight=tight).split("\n")
            pad = " " * (len(marker) + 1)
            lines = [f"{marker} {body[0]}".rstrip()] + [pad + line if line else "" for line in body[1:]]
            out.append("\n".join(lines))
        return ("\n" if tight else "\n\n").join(out)

    def _code_block(self, node: SyntaxTreeNode) -> str:
        content = self._scrub(node.content)
        longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
        fence = "`" * max(3, longest + 1)
        info = self._scrub(node.info.strip()) if node.type == "fence" else ""
        return f"{fence}{info}\n{content.rstrip(chr(10))}\n{fence}"

    def _table(self, node: SyntaxTreeNode) -> str:
        rows: list[str] = []
        for section in node.children:
            for row in section.children:
                cells = [
                    self._inline_of(cell).replace("|", "\\|").replace("\n", " ") for cell in row.children
                ]
                rows.append("| " + " | ".join(cells) + " |")
                if section.type == "thead":
                    rows.append("|" + "|".join("---" for _ in cells) + "|")
        return "\n".join(rows)

    # -- inline --------------------------------------------------------------------------

    def _inline(self, nodes: list[SyntaxTreeNode]) -> str:
        return "".join(self._span(node) for node in nodes)

    def _span(self, node: SyntaxTreeNode) -> str:
        kind = node.type
        if kind == "text":
            content, tags = _TAG_IN_TEXT.subn("", node.content)
            self.removed += tags
            return self._scrub(content)
        if kind in ("softbreak", "hardbreak"):
            return "\n"
        if kind == "code_inline":
            content = self._scrub(node.content)
            longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
            ticks = "`" * (longest + 1)
            pad = " " if content.startswith("`") or content.endswith("`") else ""
            return f"{ticks}{pad}{content}{pad}{ticks}"
        if kind in ("em", "strong", "s"):
            return f"{node.markup}{self._inline(node.children)}{node.markup}"
        if kind == "link":
            return self._link(node)
        if kind == "image":
            src = str(node.attrs.get("src", ""))
            if self._policy.allows(src):
                return f"![{self._inline(node.children)}]({_destination(src)})"
            self.removed += 1
            return ""
        if kind == "html_inline":
            self.removed += 1
            return ""
        return self._inline(node.children) if node.children else self._scrub(node.content)

    def _link(self, node: SyntaxTreeNode) -> str:
        href = str(node.attrs.get("href", ""))
        allowed = self._policy.allows(href)
        if node.markup in ("autolink", "linkify"):
            if allowed:
                return f"<{href}>"
            self.removed += 1
            return LINK_REMOVED
        label = self._inline(node.children)
        if allowed:
            return f"[{label}]({_destination(href)})"
        self.removed += 1
        # "[1]" hijacked by a reference definition is still the citation it was written as.
        return f"[{label}]" if _CITATION_TEXT.fullmatch(label) else label

    def _scrub(self, text: str) -> str:
        clean, removed = self._policy.scrub(text)
        self.removed += removed
        return clean


def _destination(url: str) -> str:
    return f"<{url}>" if any(ch in url for ch in " ()") else url
