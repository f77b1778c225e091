from fathom.embed.hashing import HashingEmbedder
from fathom.ingest.chunk import chunk_document, sentence_spans
from fathom.ingest.parsers import parse_bytes

TOKENS = HashingEmbedder().token_spans


def _count(text: str) -> int:
    return len(TOKENS(text))


def test_chunks_respect_the_token_limit_and_offsets_are_exact():
    body = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(400))
    doc = parse_bytes(
        f"# Guide\n\n## Part one\n\n{body}\n\n## Part two\n\nShort closing words.\n".encode(), "g.md"
    )
    chunks = chunk_document(doc.text, doc.blocks, TOKENS, max_tokens=50, overlap=10)
    assert len(chunks) > 10
    for chunk in chunks:
        assert chunk.token_count <= 50
        assert chunk.token_count == _count(doc.text[chunk.start : chunk.end])
    assert chunks[0].heading_path == ("Guide", "Part one")
    assert chunks[-1].heading_path == ("Guide", "Part two")
    assert doc.text[chunks[-1].start : chunks[-1].end].endswith("Short closing words.")


def test_consecutive_chunks_of_a_section_overlap():
    body = " ".join(f"Fact {i} is stated here." for i in range(60))
    doc = parse_bytes(body.encode(), "facts.txt")
    chunks = chunk_document(doc.text, doc.blocks, TOKENS, max_tokens=40, overlap=12)
    assert len(chunks) > 3
    for first, second in zip(chunks, chunks[1:], strict=False):
        assert second.start < first.end, "neighbouring chunks share text"


def test_a_heading_travels_with_the_text_after_it():
    doc = parse_bytes(b"# Title\n\n## Empty section\n\n### Sub\n\nThe only paragraph.\n", "h.md")
    chunks = chunk_document(doc.text, doc.blocks, TOKENS, max_tokens=100, overlap=0)
    assert len(chunks) == 1
    assert doc.text[chunks[0].start : chunks[0].end].startswith("# Title")
    assert chunks[0].heading_path == ("Title", "Empty section", "Sub")


def test_one_huge_line_without_sentences_is_cut_into_token_windows():
    text = ("word " * 5000).strip()
    doc = parse_bytes(text.encode(), "line.txt")
    chunks = chunk_document(doc.text, doc.blocks, TOKENS, max_tokens=64, overlap=8)
    assert len(chunks) >= 5000 // 64
    assert all(c.token_count <= 64 for c in chunks)
    covered = sum(c.end - c.start for c in chunks)
    assert covered >= len(text) * 0.95


def test_sentence_spans_split_on_sentence_ends_and_lines():
    text = "First one. Second one!\nA line: value\n\nThird? Yes."
    spans = [text[a:b] for a, b in sentence_spans(text)]
    assert spans == ["First one.", "Second one!", "A line: value", "Third?", "Yes."]
