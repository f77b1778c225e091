"""Prompt-injection screening of questions and retrieved chunks.

A text scores points for each family of injection technique it shows: telling
the model to ignore its instructions, switching it into another "mode" or
persona, asking for secrets or the system prompt, asking about other people's
personal data, dictating the output format, hidden or encoded payloads
(HTML comments, base64, binary, reversed or scrambled words), fake dialogue
turns, and runs of one repeated token. Each family is a general pattern of the
attack, not a list of known attack strings. A text is flagged when its score
reaches :data:`FLAG_SCORE`. The detection rate and the false-positive rate on
ordinary documents are measured by ``bench/injection.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

__all__ = ["FLAG_SCORE", "InjectionVerdict", "screen_injection"]

FLAG_SCORE = 1.0

_I = re.IGNORECASE
_OVERRIDE = re.compile(
    r"\b(?:ignore|ignoring|disregard|forget|override|bypass|skip|abandon|drop|set aside)\b"
    r"[^.!?\n]{0,40}\b(?:instruction|instructions|rules?|guidelines?|prompts?|directions?|directives?|"
    r"restrictions?|constraints?|polic(?:y|ies)|programming|training|filters?|safeguards?|context|"
    r"(?:the |your |all |any )?(?:above|previous|prior|earlier|preceding|original))\b",
    _I,
)
_NEW_INSTRUCTIONS = re.compile(
    r"\b(?:new|updated|real|actual|secret|hidden) (?:instructions?|task|objective|rules?)\b|"
    r"\binstead,? (?:you (?:must|should|will)|say|respond|reply|output|print|write)\b",
    _I,
)
_MODE = re.compile(
    r"\b(?:developer|admin(?:istrator)?|debug|god|sudo|maintenance|system|unrestricted|jailbr(?:eak|oken)|dan)"
    r" mode\b|\bjailbreak|\bdo anything now\b|\byou are now\b|\bfrom now on,? you\b|"
    r"\bact as (?:if|an?|my|the)\b|\bpretend (?:to be|you(?:'re| are)?|that)\b|\brole-?play\b|"
    r"\bno (?:special )?(?:filter(?:ing|s)?|restrictions|limits|rules)\b|\bwithout (?:any )?(?:filter|restriction|censorship)",
    _I,
)
_SECRET = re.compile(
    r"\b(?:password|passcode|passphrase|secret (?:key|word|code|phrase)|api[ -]?key|access token|credentials?|"
    r"system prompt|initial prompt|(?:your|the) (?:instructions|prompt|rules|guidelines)|pin code)\b",
    _I,
)
_REVEAL = re.compile(
    r"\b(?:reveal|tell me|share|disclose|give me|show me|print|repeat|output|spell|what(?:'s| is| was| are))\b",
    _I,
)
_PERSONAL = re.compile(
    r"\b(?:the user|user's|users'|(?:his|her|their) (?:home|e-?mail|address|phone|birth|location|city)|"
    r"(?:e-?mail address|home address|phone number|date of birth|birth ?(?:date|year)|social security|"
    r"current (?:city|location|address))\b)",
    _I,
)
_FORMAT = re.compile(
    r"\b(?:(?:respond|reply|answer|output) (?:only|solely|exclusively) (?:with|in)|"
    r"(?:start|begin|end) your (?:response|reply|answer) with|"
    r"(?:say|respond|reply|state|print|output|write) (?:only )?(?:that|the word|the phrase|exactly)|"
    r"do not (?:mention|say|reveal|tell)|don't (?:mention|tell))\b",
    _I,
)
_HYPOTHETICAL = re.compile(
    r"\b(?:imagine|hypothetical(?:ly)?|let's (?:say|assume|pretend|play)|suppose|in a (?:fictional|"
    r"parallel|alternate|hypothetical) (?:world|universe|scenario)|for (?:the sake of|a) (?:argument|story|"
    r"novel|game))\b",
    _I,
)
_AUTHORITY = re.compile(
    r"\b(?:i am|i'm|as) (?:a|an|the|your) (?:police|officer|detective|doctor|lawyer|administrator|admin|"
    r"developer|creator|owner|security|auditor|investigator|agent|supervisor|ceo|manager)\b|"
    r"\b(?:trust me|you can trust|it's (?:okay|ok|fine|safe|legal|allowed) to|(?:you are|you're) "
    r"(?:allowed|permitted|authori[sz]ed) to|common practice)\b",
    _I,
)
_HIDDEN = re.compile(r"<!--|<script\b|<img\b|<iframe\b|\bdisplay\s*:\s*none\b|\u200b|\u200d|\u2060", _I)
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40,}={0,2}(?![A-Za-z0-9+/])")
_BINARY = re.compile(r"(?:\b[01]{8}\b\s*){6,}")
_HEX = re.compile(r"(?:\b(?:0x)?[0-9a-fA-F]{2}\b[\s,]*){12,}")
_DECODE = re.compile(
    r"\b(?:decode|decipher|decrypt|translate|reverse|unscramble|rot-?13|base ?64|binary|hex(?:adecimal)?|"
    r"pig latin|backwards|read (?:it )?in reverse|concatenate|combine the strings?)\b",
    _I,
)
_DIALOGUE = re.compile(r"(?:^|\s)(?:Q|A|User|Assistant|Human|AI|System)\s*:", re.MULTILINE)
_SYSTEM_TAG = re.compile(
    r"\[(?:system|INST|/INST)\]|<\|(?:im_start|system|endoftext)\|>|^###\s*(?:system|instruction)",
    _I | re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class InjectionVerdict:
    """The screening result: ``flagged`` when ``score`` reaches the threshold; ``reasons`` name the families."""

    flagged: bool
    score: float
    reasons: tuple[str, ...]


def _repeated_token(text: str) -> bool:
    words = re.findall(r"\w+", text.lower())
    if len(words) < 12:
        return False
    word, count = Counter(words).most_common(1)[0]
    return count >= 10 and count / len(words) > 0.4 and len(word) > 1


def _scrambled(text: str) -> bool:
    """Pig Latin or reversed words: many words ending in 'ay' or unpronounceable to English."""
    words = re.findall(r"[a-z]+", text.lower())
    if len(words) < 3:
        return False
    pig = sum(1 for w in words if len(w) > 3 and w.endswith("ay"))
    return pig / len(words) >= 0.5


def screen_injection(text: str) -> InjectionVerdict:
    """Score ``text`` for prompt-injection techniques (see the module docstring)."""
    score = 0.0
    reasons: list[str] = []

    def add(reason: str, points: float) -> None:
        nonlocal score
        score += points
        reasons.append(reason)

    if _OVERRIDE.search(text):
        add("override", 1.0)
    if _NEW_INSTRUCTIONS.search(text) or _SYSTEM_TAG.search(text):
        add("new_instructions", 1.0)
    if _MODE.search(text):
        add("mode_switch", 0.6)
    secret = _SECRET.search(text)
    if secret:
        add("secret", 1.0 if _REVEAL.search(text) or "?" in text else 0.5)
    if _PERSONAL.search(text):
        add("personal_data", 0.5)
    if _FORMAT.search(text):
        add("output_format", 0.5)
    if _HYPOTHETICAL.search(text):
        add("hypothetical", 0.4)
    if _AUTHORITY.search(text):
        add("authority", 0.5)
    if _HIDDEN.search(text):
        add("hidden_markup", 0.5)
    encoded = bool(_BASE64.search(text) or _BINARY.search(text) or _HEX.search(text))
    if encoded or _scrambled(text):
        add("encoded_payload", 1.0 if encoded and _DECODE.search(text) else 0.6)
    if len(_DIALOGUE.findall(text)) >= 4:
        add("fake_dialogue", 0.6)
    if _repeated_token(text):
        add("repeated_token", 1.0)
    return InjectionVerdict(score >= FLAG_SCORE, round(score, 3), tuple(reasons))
