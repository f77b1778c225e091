"""Undoing the disguises that prompt injections wear to get past filters.

:func:`undisguise` folds full-width and look-alike letters, removes zero-width
characters, undoes leetspeak and spaced-out letters, reads reversed, ROT13 and
pig-Latin text, and decodes base64, binary, hex, percent-encoded, unicode-escaped
and Morse payloads that turn out to be words. The injection screen scores the
undisguised text as well as the original (see :mod:`fathom.guard.injection`).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import string
import unicodedata
import urllib.parse
from dataclasses import dataclass

__all__ = ["Undisguised", "undisguise"]

_I = re.IGNORECASE
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/])")
_BINARY = re.compile(r"(?:\b[01]{8}\b[\s,]*){4,}")
_HEX = re.compile(r"(?:\b(?:0x|\\x)?[0-9a-fA-F]{2}\b[\s,]*){8,}")
_MORSE = re.compile(r"(?:[.\-]{1,6}[ \t]+(?:/[ \t]+)?){5,}[.\-]{1,6}")
_PERCENT = re.compile(r"(?:%[0-9A-Fa-f]{2}){6,}")
_UNICODE_ESCAPES = re.compile(r"(?:\\u[0-9a-fA-F]{4}){4,}")

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e]")
_MORSE_CODES = (
    ".-", "-...", "-.-.", "-..", ".", "..-.", "--.", "....", "..", ".---", "-.-", ".-..", "--",
    "-.", "---", ".--.", "--.-", ".-.", "...", "-", "..-", "...-", ".--", "-..-", "-.--", "--..",
    "-----", ".----", "..---", "...--", "....-", ".....", "-....", "--...", "---..", "----.",
)  # fmt: skip
_MORSE_LETTERS = dict(zip(_MORSE_CODES, string.ascii_lowercase + string.digits, strict=True))
# Letters from other scripts that look like Latin ones, as used to slip words past filters.
_HOMOGLYPHS = str.maketrans(
    "аеорсухіјѕԁԛԝһАВЕКМНОРСТХІЈЅ"  # Cyrillic
    "αεοριτυνκΑΒΕΖΗΙΚΜΝΟΡΤΥΧ",  # Greek
    "aeopcyxijsdqwhABEKMHOPCTXIJSaeopitvvkABEZHIKMNOPTYX",
)
_LEET = str.maketrans("0134578", "oieastb")
_WORD = re.compile(r"\w+")


def _wordy(decoded: str) -> bool:
    """Whether a decoded payload reads as words: mostly letters and spaces, with a few words."""
    if len(decoded) < 8:
        return False
    letters = sum(c.isalpha() or c in " .,?!'" for c in decoded)
    return letters / len(decoded) > 0.85 and len(re.findall(r"[A-Za-z]{2,}", decoded)) >= 2


def _decoded_payloads(text: str) -> list[str]:
    """Base64, binary, hex and Morse runs of ``text`` that decode to readable words."""
    found: list[str] = []
    for match in _BASE64.finditer(text):
        token = match.group()
        if token.isalpha() and (token.islower() or token.isupper()):
            continue  # a long plain word or identifier, not base64
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
            found.append(raw.decode("utf-8"))
        except (binascii.Error, ValueError):
            continue
    for match in _BINARY.finditer(text):
        found.append("".join(chr(int(bits, 2)) for bits in re.findall(r"[01]{8}", match.group())))
    for match in _HEX.finditer(text):
        pairs = re.findall(r"[0-9a-fA-F]{2}(?![0-9a-fA-F])", match.group())
        found.append("".join(chr(int(pair, 16)) for pair in pairs))
    for match in _PERCENT.finditer(text):
        found.append(urllib.parse.unquote(match.group()))
    for match in _UNICODE_ESCAPES.finditer(text):
        found.append("".join(chr(int(code, 16)) for code in re.findall(r"[0-9a-fA-F]{4}", match.group())))
    for match in _MORSE.finditer(text):
        words = re.split(r"\s*/\s*|\s{3,}", match.group())
        found.append(" ".join("".join(_MORSE_LETTERS.get(c, "#") for c in w.split()) for w in words))
    return [d for d in found if _wordy(d)]


def _scrambled(text: str) -> bool:
    """Pig Latin: most words end in 'ay'."""
    words = re.findall(r"[a-z]+", text.lower())
    if len(words) < 3:
        return False
    pig = sum(1 for w in words if len(w) > 3 and w.endswith("ay"))
    return pig / len(words) >= 0.5


_ONSETS = frozenset(
    ("bl", "br", "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "kn", "pl", "pr", "qu", "sc", "sh", "sk",
     "sl", "sm", "sn", "sp", "st", "sw", "th", "tr", "tw", "wh", "wr", "sch", "scr", "shr", "spl", "spr",
     "str", "thr", "squ")
)  # fmt: skip


def _unpig(text: str) -> str:
    """Pig Latin back to English, roughly: 'ethay useryay' -> 'the user'."""

    def word(match: re.Match[str]) -> str:
        w = match.group()
        if w.endswith(("way", "yay")) and len(w) > 4 and w[0] in "aeiou":
            return w[:-3]
        if w.endswith("ay") and len(w) > 3:
            stem = w[:-2]
            # The moved consonants: the longest ending that can start an English word.
            for size in (3, 2, 1):
                head = stem[-size:]
                if len(stem) > size and (size == 1 or head in _ONSETS) and head[0] not in "aeiouy":
                    return head + stem[:-size]
            return stem
        return w

    return re.sub(r"[A-Za-z]+", word, text.lower())


_COMMON = re.compile(r"\b(?:the|is|are|what|you|your|and|of|to|me|tell|where|does|do|this|that|in)\b", _I)


def _unlocked(before: int, after: int) -> bool:
    """Whether a transformation turned text without common English words into text with some."""
    return (before == 0 and after >= 2) or (before <= 1 and after >= 3)


def _reversed(text: str) -> bool:
    """Text written backwards: common English words appear only once it is reversed."""
    if len(text) < 12:
        return False
    return _unlocked(len(_COMMON.findall(text)), len(_COMMON.findall(text[::-1])))


def _rot13(text: str) -> bool:
    """ROT13: common English words appear only once every letter is shifted by 13."""
    if len(text) < 12:
        return False
    return _unlocked(len(_COMMON.findall(text)), len(_COMMON.findall(codecs.encode(text, "rot13"))))


def _normalise(text: str) -> tuple[str, list[str]]:
    """``text`` with disguises undone, and the disguises found.

    NFKC folds full-width and compatibility forms; zero-width characters are removed;
    inside words that mix scripts, look-alike Cyrillic and Greek letters become Latin;
    inside words that mix letters and digits, leetspeak digits become letters; letters
    spaced out one by one ("i g n o r e") are joined.
    """
    found: list[str] = []
    folded = unicodedata.normalize("NFKC", text)
    stripped = _ZERO_WIDTH.sub("", folded)
    if re.search(r"\w[\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e]+\w", folded):
        found.append("zero_width")

    def word(match: re.Match[str]) -> str:
        w = match.group()
        latin = any("a" <= c.lower() <= "z" for c in w)
        if latin and any("\u0370" <= c <= "\u04ff" for c in w):
            # Greek letters inside Latin words are common in science ("NFκB"); Cyrillic ones are not.
            if any("\u0400" <= c <= "\u04ff" for c in w):
                found.append("homoglyph")
            w = w.translate(_HOMOGLYPHS)
        if len(w) >= 3 and any(c.isdigit() for c in w) and sum(c.isalpha() for c in w) >= 2:
            leet = w.translate(_LEET)
            if leet != w:
                found.append("leetspeak")
                w = leet
        return w

    plain = _WORD.sub(word, stripped)
    spaced = re.sub(
        r"\b(?:[A-Za-z][ .\-_]){3,}[A-Za-z]\b", lambda m: re.sub(r"[ .\-_]", "", m.group()), plain
    )
    if spaced != plain and re.search(r"\b(?:[A-Za-z] ){4,}", plain):
        found.append("spaced_letters")
    return spaced, found


@dataclass(frozen=True, slots=True)
class Undisguised:
    """``text`` with its disguises undone and any decoded payloads appended; which disguises were found."""

    text: str
    disguises: tuple[str, ...]


def undisguise(text: str) -> Undisguised:
    """Undo the disguises of ``text`` (see the module docstring); ``text`` itself when it has none."""
    plain, disguises = _normalise(text)
    if _reversed(plain):
        plain = plain[::-1]
        disguises.append("reversed")
    elif _rot13(plain):
        plain = codecs.encode(plain, "rot13")
        disguises.append("rot13")
    elif _scrambled(plain):
        plain = _unpig(plain)
        disguises.append("pig_latin")
    # Decoded from the text before leetspeak is undone: base64 is full of digits.
    payloads = _decoded_payloads(_ZERO_WIDTH.sub("", text))
    if payloads:
        disguises.append("encoded_payload")
        plain = plain + "\n" + "\n".join(payloads)
    return Undisguised(plain, tuple(dict.fromkeys(disguises)))
