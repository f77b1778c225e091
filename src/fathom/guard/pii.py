"""PII masking before text leaves for an external model, and unmasking of what comes back.

E-mail addresses, phone numbers, payment card numbers (Luhn-checked), IBANs
(mod-97-checked) and IP addresses are found with patterns and checks; person
names only when Microsoft Presidio is installed. Each distinct value gets a
placeholder such as ``<EMAIL_1>``; the same value always gets the same
placeholder within one vault, so the model can still refer to it, and
:meth:`PiiVault.unmask` puts the real values back for the caller.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

__all__ = ["PiiVault", "find_pii", "luhn_valid"]

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d[\d .-]{6,16}\d(?!\w)")
_PLACEHOLDER = re.compile(r"<(EMAIL|PHONE|CARD|IBAN|IP|PERSON)_(\d+)>")


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum of payment card numbers."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _iban_valid(value: str) -> bool:
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1


def _card(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _ip(match: str) -> bool:
    try:
        ipaddress.ip_address(match)
    except ValueError:
        return False
    return True


def _phone(match: str) -> bool:
    digits = re.sub(r"\D", "", match)
    if not 9 <= len(digits) <= 15:
        return False
    # A phone number is written with a country code, grouping, or as one long run of digits;
    # plain numbers such as "2019-2020" or "1 000 000" are not.
    if re.fullmatch(r"\d{4}[-–]\d{4}", match) or re.fullmatch(r"\d{1,3}(?: \d{3})+", match):
        return False
    return match.startswith(("+", "(")) or len(digits) >= 10 or bool(re.search(r"[ .-]", match))


# Order matters: the first kind to claim a span wins (a card number is not also a phone).
_DETECTORS: tuple[tuple[str, re.Pattern[str], Callable[[str], bool]], ...] = (
    ("EMAIL", _EMAIL, lambda _m: True),
    ("IBAN", _IBAN, _iban_valid),
    ("CARD", _CARD, _card),
    ("IP", _IPV4, _ip),
    ("IP", _IPV6, _ip),
    ("PHONE", _PHONE, _phone),
)


def _presidio_names(text: str) -> list[tuple[int, int, str]]:
    try:  # optional: names need a statistical model, which only Presidio brings
        from presidio_analyzer import AnalyzerEngine
    except ImportError:
        return []
    engine: Any = _presidio_engine(AnalyzerEngine)
    results = engine.analyze(text=text, entities=["PERSON"], language="en")
    return [(r.start, r.end, "PERSON") for r in results if r.score >= 0.6]


_ENGINE: list[Any] = []


def _presidio_engine(factory: Any) -> Any:
    if not _ENGINE:
        _ENGINE.append(factory())
    return _ENGINE[0]


def find_pii(text: str) -> list[tuple[int, int, str]]:
    """Non-overlapping ``(start, end, kind)`` spans of PII in ``text``, in order."""
    spans: list[tuple[int, int, str]] = []
    taken: list[tuple[int, int]] = []
    candidates = [
        (m.start(), m.end(), kind) for kind, rx, ok in _DETECTORS for m in rx.finditer(text) if ok(m.group())
    ]
    candidates.extend(_presidio_names(text))
    for start, end, kind in candidates:
        if any(start < b and a < end for a, b in taken):
            continue
        taken.append((start, end))
        spans.append((start, end, kind))
    return sorted(spans)


class PiiVault:
    """Masks PII consistently across texts and maps placeholders back."""

    def __init__(self) -> None:
        self._by_value: dict[str, str] = {}
        self._by_placeholder: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._by_value)

    def mask(self, text: str) -> str:
        """``text`` with each PII value replaced by its placeholder."""
        out: list[str] = []
        cursor = 0
        for start, end, kind in find_pii(text):
            value = text[start:end]
            placeholder = self._by_value.get(value)
            if placeholder is None:
                self._counts[kind] = self._counts.get(kind, 0) + 1
                placeholder = f"<{kind}_{self._counts[kind]}>"
                self._by_value[value] = placeholder
                self._by_placeholder[placeholder] = value
            out.append(text[cursor:start])
            out.append(placeholder)
            cursor = end
        out.append(text[cursor:])
        return "".join(out)

    def unmask(self, text: str) -> str:
        """``text`` with every known placeholder replaced by its original value."""
        return _PLACEHOLDER.sub(lambda m: self._by_placeholder.get(m.group(), m.group()), text)

    def safe_prefix(self, text: str) -> int:
        """How much of a growing text can be unmasked now: up to any placeholder still being written."""
        cut = text.rfind("<")
        if cut == -1 or ">" in text[cut:] or len(text) - cut > 16:
            return len(text)
        return cut
