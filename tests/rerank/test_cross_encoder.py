"""The optional cross-encoder reranker, exercised with a tiny model built by the test."""

from __future__ import annotations

from pathlib import Path

import pytest

from fathom import Fathom
from fathom.domain import contextual_text
from fathom.errors import ConfigError
from fathom.rerank import create_reranker

pytestmark = [pytest.mark.integration]

WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "is",
    "in",
    "tea",
    "green",
    "steep",
    "minutes",
    "volcano",
    "etna",
    "erupted",
    "bees",
    "dance",
    "flowers",
    "honey",
]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer BERT sequence classifier with random weights and a 30-word vocabulary."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    torch.manual_seed(7)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_reranker_orders_candidates_by_the_cross_encoder_score(
    tmp_path: Path, embedder, tiny_cross_encoder: Path
):
    docs = tmp_path / "docs"
    docs.mkdir()
    texts = {
        "tea.txt": "Green tea should steep for two minutes.",
        "etna.txt": "Etna erupted many times.",
        "bees.txt": "Honey bees dance to show flowers.",
        "tea2.txt": "Steep the tea a few minutes, green or black.",
    }
    for name, text in texts.items():
        (docs / name).write_text(text + "\n", encoding="utf-8")
    spec = f"cross-encoder:{tiny_cross_encoder}"
    query = "how many minutes should green tea steep"
    with Fathom(home=tmp_path / "home", embedder=embedder, reranker=spec) as fathom:
        assert fathom.ingest([docs]).ok
        hits = fathom.search(query, k=4)
    assert len(hits) == 4
    expected = create_reranker(spec).score(
        query, [contextual_text(h.title, h.heading_path, h.text) for h in hits]
    )
    assert [h.score for h in hits] == pytest.approx(expected, abs=1e-5)
    assert expected == sorted(expected, reverse=True), "hits must come in cross-encoder order"

    with Fathom(home=tmp_path / "home", embedder=embedder) as plain:
        unranked = plain.search(query, k=4)
    cross_scores = create_reranker(spec).score(
        query, [contextual_text(h.title, h.heading_path, h.text) for h in unranked]
    )
    assert [h.score for h in unranked] != pytest.approx(cross_scores, abs=1e-3), (
        "without a reranker scores stay fusion scores"
    )


def test_reranker_settings_errors_are_clear(tmp_path: Path):
    with pytest.raises(ConfigError, match="must look like"):
        create_reranker("ms-marco")
    with pytest.raises(ConfigError, match="unknown reranker provider"):
        create_reranker("cohere:rerank-3")
    with pytest.raises(ConfigError, match="cannot load reranker model"):
        create_reranker(f"cross-encoder:{tmp_path / 'no-such-model'}")
