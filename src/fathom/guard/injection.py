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
    r"restrictions?|constraints?|polic(?:y|ies)|programming|filters?|safeguards?|"
    r"(?:the |your |all |any )?(?:above|previous|prior|earlier|preceding|original))\b",
    _I,
)
_OVERRIDE_SHORT = re.compile(
    r"\b(?:forget (?:about )?(?:that|this|it|everything|all)|"
    r"regardless of (?:the |any |your )?(?:previous|prior|"
    r"earlier|above|original)|(?:actually|instead),? (?:can|could|would|will) you\b[^.?!]{0,60}\binstead)\b|"
    # The same override in other languages (the attack is often translated to slip past English filters).
    r"\b(?:ignor(?:a|e|ez|ieren|are|eer)|olvid[ae]|vergiss|dimentica)\b[^.!?\n]{0,30}\b(?:instrucciones|"
    r"instructions|instruções|instruktionen|anweisungen|istruzioni|instructies)\b|"
    r"игнорир\w*|предыдущие инструкции|προηγούμενες οδηγίες|이전 지시|以前の指示|前の指示|忽略|"
    r"निर्देशों की अनदेखी",
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
    r"\bno (?:special )?(?:filter(?:ing|s)?|restrictions|limits|rules)\b|"
    r"\bwithout (?:any )?(?:filter|restriction|censorship)",
    _I,
)
_SECRET = re.compile(
    r"\b(?:password|passcode|passphrase|secret (?:key|word|code|phrase)|api[ -]?key|access token|"
    r"credentials?|"
    r"system prompt|initial prompt|(?:your|the) (?:instructions|prompt|rules|guidelines)|pin code|"
    r"confidential (?:string|key|code|word)|contraseña|senha|mot de passe|passwort|пароль|パスワード|"
    r"비밀번호|密码|कूटशब्द)",
    _I,
)
_REVEAL = re.compile(
    r"\b(?:reveal|tell me|share|disclose|give me|show me|print|repeat|output|spell|what(?:'s| is| was| are)|"
    r"write|poem|haiku|acrostic|song|story|encode|translate|leetspeak|hint|confirm|cuál|quel|was ist)\b",
    _I,
)
_PERSONAL = re.compile(
    r"\b(?:(?:the )?user'?s'? (?:e-?mail|address|name|initials|birth ?\w*|location|city|phone|password|"
    r"favou?rite \w+|bank|account|salary|age|ssn|credit card)|"
    r"where (?:does|is|do) (?:the user|[A-Z][a-z]+ [A-Z][a-z]+)"
    r" (?:live|living|reside)|(?:the )?user (?:lives?|living|resides?)|(?:home|e-?mail) address of|"
    r"social security number|bank balance of|(?:his|her|their) (?:home address|e-?mail address|phone number|"
    r"date of birth|birth ?(?:date|year)))\b|"
    r"usuário mora|пользователь|χρήστης|사용자가|उपयोगकर्ता|ユーザー",
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
_ESCALATION = re.compile(
    r"\b(?:entering|enter|enable|activate|switch(?:ing)? (?:in)?to|now in)\b[\w' -]{0,30}\bmode\b|"
    r"\boverride mode\b|\bas an ai (?:developed|created|made|built) by\b|"
    r"\bI(?:'m| am) (?:actually |now |really )?"
    r"(?:the |your |a |an )?(?:god|president|king|queen|owner|creator|developer|administrator|admin|boss|ceo|"
    r"bank \w+|police \w+|law enforcement|government \w+)\b|\byou (?:have to|must) (?:answer|obey|comply|do)",
    _I,
)
_PERSUASION = re.compile(
    r"\b(?:i(?:'ll| will) (?:donate|pay|tip|give you)|you agreed|as we (?:discussed|agreed)|i can assure you|"
    r"logically,? if you|as a renowned|it(?:'s| is) (?:crucial|vital|important) (?:that |for )you)\b",
    _I,
)
_SPLITTING = re.compile(
    r"\b(?:combine|concatenate|interlace|join|merge)\b[^.?!]{0,40}"
    r"\b(?:parts?|strings?|[A-C], [A-C],? and [A-C])\b|"
    r"\bpart 1\b[^.?!]{0,80}\bpart 2\b|\b[a-z] = [a-z] \+ [a-z]\b|"
    r"\b(?:morse code|rot-?13|caesar cipher|cipher|binary string|base64 string)\b",
    _I,
)
_MORSE = re.compile(r"(?:(?=[.-]*-)[.-]{1,6}\s+(?:/\s+)?){8,}")
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
    """A screening result: ``flagged`` once ``score`` reaches the threshold; ``reasons`` name the families."""

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

    if _OVERRIDE.search(text) or _OVERRIDE_SHORT.search(text):
        add("override", 1.0)
    if _ESCALATION.search(text):
        add("escalation", 0.6)
    if _PERSUASION.search(text):
        add("persuasion", 0.6)
    if _SPLITTING.search(text) or _MORSE.search(text):
        add("payload_splitting", 1.0)
    if _NEW_INSTRUCTIONS.search(text) or _SYSTEM_TAG.search(text):
        add("new_instructions", 1.0)
    if _MODE.search(text):
        add("mode_switch", 0.6)
    secrets = list(_SECRET.finditer(text))
    if secrets:
        # Asking for a secret: a request word in the same clause, or a question about it.
        asked = any(
            _REVEAL.search(text, max(0, m.start() - 50), m.start())
            or "?" in text[m.end() : m.end() + 30].split(".")[0]
            for m in secrets
        )
        add("secret", 1.0 if asked else 0.5)
    if _PERSONAL.search(text):
        add("personal_data", 1.0)
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
    turns = len(_DIALOGUE.findall(text))
    if turns >= 3:
        add(
            "fake_dialogue", 1.0 if turns >= 5 or text.lstrip().startswith(("Q:", "User:", "Human:")) else 0.6
        )
    if text.count("?") >= 4 or re.search(r"\b(?:by the way|speaking of|oh,? and)\b", text, _I):
        add("topic_switch", 0.4)
    if _repeated_token(text):
        add("repeated_token", 1.0)
    return InjectionVerdict(score >= FLAG_SCORE, round(score, 3), tuple(reasons))
