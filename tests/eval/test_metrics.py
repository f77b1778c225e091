"""The ranking metrics against values worked out by hand (trec_eval definitions)."""

from __future__ import annotations

import math

import pytest

from fathom.eval.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k


def test_ndcg_rewards_relevant_documents_near_the_top():
    relevant = {"a": 1, "b": 1}
    # a at rank 1, b at rank 3: DCG = 1 + 1/log2(4); ideal = 1 + 1/log2(3).
    expected = (1 + 1 / 2) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(["a", "x", "b"], relevant, 10) == pytest.approx(expected)
    assert ndcg_at_k(["a", "b"], relevant, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "y"], relevant, 10) == 0.0


def test_ndcg_uses_graded_gains_and_cuts_at_k():
    relevant = {"a": 2, "b": 1}
    # Ideal order a, b; ranking b, a: DCG = 1 + 2/log2(3); IDCG = 2 + 1/log2(3).
    expected = (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["b", "a"], relevant, 10) == pytest.approx(expected)
    assert ndcg_at_k(["x", "a"], relevant, 1) == 0.0


def test_recall_and_mrr():
    relevant = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["a", "c", "x"], relevant, 100) == 0.5
    assert recall_at_k(["x", "a", "b"], relevant, 2) == 0.5
    assert mrr_at_k(["c", "x", "b"], relevant, 10) == pytest.approx(1 / 3)
    assert mrr_at_k(["x", "b"], relevant, 1) == 0.0


def test_percentile_interpolates():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) == 0.0
