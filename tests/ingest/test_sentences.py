"""Sentence boundaries: abbreviations, decimals and addresses stay whole; offsets stay exact."""

from __future__ import annotations

import pytest

from fathom.ingest.chunk import sentence_spans as chunk_sentence_spans
from fathom.ingest.sentences import sentence_spans

CASES: list[tuple[str, list[str]]] = [
    ("Dr. Smith arrived. He sat down.", ["Dr. Smith arrived.", "He sat down."]),
    (
        "Use a cache, e.g. Redis, for sessions. Then restart.",
        ["Use a cache, e.g. Redis, for sessions.", "Then restart."],
    ),
    ("See Fig. 3 for details. The curve rises.", ["See Fig. 3 for details.", "The curve rises."]),
    ("The U.S. market grew. Europe shrank.", ["The U.S. market grew.", "Europe shrank."]),
    ("Use the default, i.e. the first. Done.", ["Use the default, i.e. the first.", "Done."]),
    ("Call Mr. Jones at 5 p.m. tomorrow. Bye.", ["Call Mr. Jones at 5 p.m. tomorrow.", "Bye."]),
    ("It costs $3.50 per month. Billing is monthly.", ["It costs $3.50 per month.", "Billing is monthly."]),
    ("Version 2.1 ships today. Upgrade now!", ["Version 2.1 ships today.", "Upgrade now!"]),
    ('He said "Stop." Then he left.', ['He said "Stop."', "Then he left."]),
    ("See https://api.lexai.solutions/v1. It works.", ["See https://api.lexai.solutions/v1.", "It works."]),
    ("Email support@technovaai.com today. Thanks.", ["Email support@technovaai.com today.", "Thanks."]),
    ("Why? Because.", ["Why?", "Because."]),
    (
        "First one. Second one!\nA line: value\n\nThird? Yes.",
        ["First one.", "Second one!", "A line: value", "Third?", "Yes."],
    ),
    ("  Padded line.  \n\n  Next line  ", ["Padded line.", "Next line"]),
    ("No sentence end here", ["No sentence end here"]),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_sentences_split_where_a_reader_would(text: str, expected: list[str]) -> None:
    assert [text[a:b] for a, b in sentence_spans(text)] == expected


def test_spans_are_offsets_into_the_whole_text_and_respect_the_window() -> None:
    text = "Intro. Dr. Smith wrote Fig. 3. The end."
    start = text.index("Dr.")
    spans = sentence_spans(text, start, len(text))
    assert [text[a:b] for a, b in spans] == ["Dr. Smith wrote Fig. 3.", "The end."]
    assert spans[0][0] == start


def test_unicode_before_a_boundary_keeps_offsets_exact() -> None:
    text = "Temperature=0 → greedy. Top-k=50 keeps fifty. Ünïcode “quotes” stay. Next."
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Temperature=0 → greedy.",
        "Top-k=50 keeps fifty.",
        "Ünïcode “quotes” stay.",
        "Next.",
    ]


def test_the_chunker_uses_the_same_rule() -> None:
    assert chunk_sentence_spans is sentence_spans
