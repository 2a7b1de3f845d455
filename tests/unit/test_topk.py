"""topk.merge: per-metric ordering, -1 padding, widths."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.milvus import topk

L2, IP, JACCARD, TANIMOTO = 1, 2, 4, 5


def part(d, i):
    return np.array(d, dtype=np.float32), np.array(i, dtype=np.int64)


def test_ascending_metric_merges_best_first():
    a = part([[0.1, 0.5, 0.9]], [[10, 11, 12]])
    b = part([[0.2, 0.3, np.inf]], [[20, 21, -1]])
    d, i = topk.merge([a, b], 4, L2)
    assert i.tolist() == [[10, 20, 21, 11]]
    assert np.allclose(d, [[0.1, 0.2, 0.3, 0.5]])


def test_ip_merges_descending():
    a = part([[9.0, 5.0]], [[1, 2]])
    b = part([[7.0, 6.0]], [[3, 4]])
    d, i = topk.merge([a, b], 3, IP)
    assert i.tolist() == [[1, 3, 4]]
    assert d.tolist() == [[9.0, 7.0, 6.0]]


def test_width_is_min_of_topk_and_total_and_padding_stays_last():
    a = part([[0.5, np.inf]], [[1, -1]])
    b = part([[0.7]], [[2]])
    d, i = topk.merge([a, b], 10, L2)
    assert i.shape == (1, 3)
    assert i.tolist() == [[1, 2, -1]]
    assert d[0, 2] == np.inf


def test_ip_padding_sorts_after_negative_scores():
    # Padding written by faiss as -FLT_MAX or anything else must still sort last for IP.
    a = part([[-5.0, 123.0]], [[7, -1]])
    b = part([[-9.0]], [[8]])
    d, i = topk.merge([a, b], 3, IP)
    assert i.tolist() == [[7, 8, -1]]
    assert d[0, 2] == -np.inf


def test_real_infinite_distance_beats_padding():
    # Tanimoto of disjoint vectors is -log2(0) = inf: still a result, unlike padding.
    a = part([[np.inf]], [[-1]])
    b = part([[np.inf]], [[42]])
    _, i = topk.merge([a, b], 1, TANIMOTO)
    assert i.tolist() == [[42]]


def test_many_queries_and_partition_path():
    rng = np.random.default_rng(1)
    parts = [part(rng.random((5, 50)), rng.integers(0, 1000, (5, 50))) for _ in range(4)]
    d, i = topk.merge(parts, 7, JACCARD)
    alld = np.hstack([p[0] for p in parts])
    assert d.shape == (5, 7) and i.shape == (5, 7)
    assert np.allclose(d, np.sort(alld, axis=1)[:, :7])
    d2, _ = topk.merge(parts, 7, IP)
    assert np.allclose(d2, -np.sort(-alld, axis=1)[:, :7])


def test_empty_parts_and_zero_width():
    d, i = topk.merge([], 5, L2, nq=2)
    assert d.shape == (2, 0) and i.shape == (2, 0)
    d, i = topk.merge([part(np.zeros((3, 0)), np.zeros((3, 0)))], 5, L2)
    assert i.shape == (3, 0)


def test_ties_keep_input_order_across_the_cut():
    # SUBSTRUCTURE results are all 0.0: the first matches (earlier parts, earlier columns) win.
    a = part([[0.0] * 6], [[1, 2, 3, 4, 5, 6]])
    b = part([[0.0] * 6], [[7, 8, 9, 10, 11, 12]])
    _, i = topk.merge([a, b], 8, 6)
    assert i.tolist() == [[1, 2, 3, 4, 5, 6, 7, 8]]
    _, i = topk.merge([b, part([[0.0, -1.0]], [[20, 21]])], 3, 1)
    assert i.tolist() == [[21, 7, 8]]


def test_mismatched_query_counts_raise():
    with pytest.raises(ValueError):
        topk.merge([part([[1.0]], [[1]]), part([[1.0], [2.0]], [[1], [2]])], 1, L2)


def test_nan_distances_rank_last_among_real_results():
    d, i = topk.merge([part([[np.nan, np.nan, 0.1, 0.2]], [[1, 2, 3, 4]])], 3, L2)
    assert i.tolist() == [[3, 4, 1]]
