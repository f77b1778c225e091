"""The form of text that is indexed and embedded, as opposed to the form shown.

Documents keep their text exactly as extracted (quotes and offsets refer to it);
what goes into the search indexes and the embedder is folded: NFKC, zero-width
characters removed, and Cyrillic or Greek look-alike letters inside otherwise
Latin words mapped to the Latin letters they imitate, so "pаypal" written with a
Cyrillic "а" is still found by a search for "paypal". Words written wholly in
another script are left alone.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["ZERO_WIDTH", "count_homoglyph_words", "fold_for_index"]

ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u200e\u200f"
_ZERO_WIDTH_RE = re.compile(f"[{ZERO_WIDTH}]")
_CONFUSABLES = str.maketrans(
    "аеорсухіјѕԁԛԝһӏАВЕКМНОРСТХУІЈЅονρΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",
    "aeopcyxijsdqwhlABEKMHOPCTXYIJSovpABEZHIKMNOPTYX",
)
_CONFUSABLE_CHARS = frozenset("аеорсухіјѕԁԛԝһӏАВЕКМНОРСТХУІЈЅονρΑΒΕΖΗΙΚΜΝΟΡΤΥΧ")
_WORD = re.compile(r"\w+")
_LATIN = re.compile(r"[A-Za-z]")


def _is_spoofed(word: str) -> bool:
    return _LATIN.search(word) is not None and any(ch in _CONFUSABLE_CHARS for ch in word)


def fold_for_index(text: str) -> str:
    """The indexing form of ``text`` (see the module docstring)."""
    if text.isascii():
        return text
    text = _ZERO_WIDTH_RE.sub("", unicodedata.normalize("NFKC", text))
    return _WORD.sub(
        lambda m: m.group().translate(_CONFUSABLES) if _is_spoofed(m.group()) else m.group(), text
    )


def count_homoglyph_words(text: str) -> int:
    """Words that mix Latin letters with look-alike letters of another script."""
    if text.isascii():
        return 0
    return sum(1 for m in _WORD.finditer(_ZERO_WIDTH_RE.sub("", text)) if _is_spoofed(m.group()))
