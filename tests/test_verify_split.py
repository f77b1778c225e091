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


def test_a_changed_name_that_opens_a_sentence_is_not_supported(embedder):
    from fathom.answer.context import ContextChunk
    from fathom.answer.verify import Verifier
    from fathom.domain import Hit
    from fathom.index.lexical import analyze

    text = "CloudNova - Cloud Infrastructure & Backend Service Operations Guide. Support runs all week."
    hit = Hit(
        doc_id="d", chunk_id=1, source="mem://ops", title="Ops", score=1.0, text=text, start=0, end=len(text)
    )
    verifier = Verifier(embedder, analyze, min_support=0.5)
    result = verifier.verify(
        "CloudNova - Cloud Infrastructure & Backend Service Operations Guide. [1] "
        "QuixotrelNova - Cloud Infrastructure & Backend Service Operations Guide. [1] "
        "Support runs all week. [1]",
        [ContextChunk(n=1, hit=hit, text=text)],
    )
    supported = [s.text for s in result.sentences if s.supported]
    assert any(s.startswith("CloudNova") for s in supported)
    assert not any("Quixotrel" in s for s in supported)
    assert any(s.startswith("Support runs") for s in supported)  # an ordinary opener still passes
