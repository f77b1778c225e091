import pytest

from fathom.retrieve.fusion import reciprocal_rank_fusion, weighted_fusion


def test_rrf_matches_hand_computed_scores():
    lexical = [(1, 9.0), (2, 5.0), (3, 1.0)]
    dense = [(3, 0.9), (1, 0.8), (4, 0.1)]
    fused = dict(reciprocal_rank_fusion([lexical, dense], [1.0, 1.0], k=60))
    assert fused[1] == 1 / 61 + 1 / 62
    assert fused[3] == 1 / 63 + 1 / 61
    assert fused[2] == 1 / 62
    assert fused[4] == 1 / 63
    order = [item for item, _ in reciprocal_rank_fusion([lexical, dense], [1.0, 1.0], k=60)]
    assert order == [1, 3, 2, 4]


def test_rrf_weights_and_zero_weight_list():
    lexical = [(1, 1.0), (2, 0.5)]
    dense = [(2, 1.0), (1, 0.5)]
    assert [i for i, _ in reciprocal_rank_fusion([lexical, dense], [2.0, 1.0])] == [1, 2]
    assert [i for i, _ in reciprocal_rank_fusion([lexical, dense], [0.0, 1.0])] == [2, 1]


def test_weighted_fusion_normalises_each_list():
    lexical = [(1, 20.0), (2, 10.0)]
    dense = [(2, 0.9), (3, 0.5)]
    fused = dict(weighted_fusion([lexical, dense], [1.0, 1.0]))
    assert fused == {1: 1.0, 2: 1.0, 3: 0.0}


def test_zscore_fusion_matches_hand_computed_scores():
    from fathom.retrieve.fusion import zscore_fusion

    lexical = [(1, 12.0), (2, 6.0), (3, 3.0)]  # mean 7, population sd sqrt(14)
    dense = [(3, 0.9), (4, 0.5)]  # mean 0.7, sd 0.2
    fused = dict(zscore_fusion([lexical, dense], [1.0, 1.0]))
    sd = 14**0.5
    assert fused[1] == pytest.approx(9 / sd)
    assert fused[2] == pytest.approx(3 / sd)
    assert fused[3] == pytest.approx(0 / sd + 0.4 / 0.2)
    assert fused[4] == pytest.approx(0.0)
    # A clear lexical winner keeps its lead where RRF would tie it with the dense winner.
    assert [item for item, _ in zscore_fusion([lexical, dense], [1.0, 1.0])][:2] == [1, 3]


def test_zscore_fusion_weights_and_flat_lists():
    from fathom.retrieve.fusion import zscore_fusion

    flat = [(7, 1.0), (8, 1.0)]
    assert dict(zscore_fusion([flat], [2.0])) == {7: 2.0, 8: 2.0}
    lexical = [(1, 2.0), (2, 1.0)]
    dense = [(2, 0.9), (1, 0.1)]
    assert [i for i, _ in zscore_fusion([lexical, dense], [0.0, 1.0])] == [2, 1]
    assert zscore_fusion([[], dense], [1.0, 1.0])[0][0] == 2


def test_zscore_fusion_floor_keeps_flat_dense_noise_from_outvoting_a_clear_bm25_winner():
    from fathom.retrieve.fusion import zscore_fusion

    lexical = [(1, 10.0), (2, 4.0), (3, 3.0), (4, 3.0)]
    dense = [(5, 0.23), (6, 0.22), (7, 0.21), (1, 0.20)]  # all about equally unrelated
    assert zscore_fusion([lexical, dense], [1.0, 1.0])[0][0] == 5
    assert zscore_fusion([lexical, dense], [1.0, 1.0], [0.0, 0.04])[0][0] == 1


def test_zscore_rank_term_lifts_what_both_lists_found():
    from fathom.retrieve.fusion import zscore_fusion

    # 8 scores a little higher than 3 in BM25 and is absent from the dense list;
    # 3 is also in the dense list, though last there.
    lexical = [(8, 6.0), (3, 5.0), (2, 1.0), (5, 0.0)]
    dense = [(4, 0.50), (6, 0.49), (7, 0.48), (3, 0.45)]
    plain = zscore_fusion([lexical, dense], [1.0, 1.0], [0.0, 0.04])
    assert [i for i, _ in plain].index(8) < [i for i, _ in plain].index(3)
    ranked = zscore_fusion([lexical, dense], [1.0, 1.0], [0.0, 0.04], rank_weight=1.0, rank_k=60)
    assert [i for i, _ in ranked].index(3) < [i for i, _ in ranked].index(8)
    assert dict(ranked)[3] - dict(plain)[3] == pytest.approx(60 / 62 + 60 / 64)
