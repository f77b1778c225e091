"""Sentence splitting of generated answers: each cited claim is verified on its own."""

from fathom.answer.verify import split_sentences


def test_a_citation_marker_ends_a_sentence_before_markdown_and_capitals():
    text = "* LLM + tools + loop. [1] > Agents are loops around LLMs. [1] Tools help [2], and so on. [2]"
    assert split_sentences(text) == [
        "* LLM + tools + loop. [1]",
        "> Agents are loops around LLMs. [1]",
        "Tools help [2], and so on. [2]",
    ]


def test_lower_case_text_after_a_marker_continues_the_sentence():
    assert split_sentences("Green tea [1] steeps for two minutes. [1]") == [
        "Green tea [1] steeps for two minutes. [1]"
    ]
