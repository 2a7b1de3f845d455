"""Merging per-node top-k replies: per-metric order, -1 padding, width and row_num rules."""

import numpy as np
import pytest

from labkit.router.merge import MergeError, merge, split_reply
from labkit.router.meta import match_tags


def _exact(data, ids, queries, topk, ip=False):
    scores = queries @ data.T if ip else ((queries[:, None, :] - data[None]) ** 2).sum(-1)
    order = np.argsort(-scores if ip else scores, axis=1, kind="stable")[:, :topk]
    return np.take_along_axis(scores, order, 1), ids[order]


@pytest.mark.parametrize("ip", [False, True])
def test_merging_shards_equals_searching_everything(ip):
    rng = np.random.default_rng(1)
    data = rng.random((300, 8), dtype=np.float32)
    ids = np.arange(300, dtype=np.int64) * 7
    q = rng.random((5, 8), dtype=np.float32)
    parts = []
    for lo, hi in [(0, 3), (3, 120), (120, 300)]:  # one shard smaller than topk: padded with -1
        d, i = _exact(data[lo:hi], ids[lo:hi], q, 10, ip)
        width = d.shape[1]
        pad = 10 - width
        d = np.pad(d, ((0, 0), (0, pad)), constant_values=np.finfo(np.float32).max)
        i = np.pad(i, ((0, 0), (0, pad)), constant_values=-1)
        parts.append((d.astype(np.float32), i))
    got_d, got_i = merge(parts, 10, 2 if ip else 1)
    want_d, want_i = _exact(data, ids, q, 10, ip)
    assert np.array_equal(got_i, want_i)
    assert np.allclose(got_d, want_d, rtol=1e-5)


def test_width_is_topk_or_all_rows_and_padding_sorts_last():
    a = (np.array([[0.5, 9.0]], np.float32), np.array([[1, -1]]))
    b = (np.array([[0.1]], np.float32), np.array([[2]]))
    d, i = merge([a, b], 10, 1)
    assert i.tolist() == [[2, 1, -1]]
    assert d.shape == (1, 3)
    d, i = merge([a, b], 1, 1)
    assert i.tolist() == [[2]]


def test_ip_sorts_descending_even_with_negative_scores():
    a = (np.array([[-0.1, -0.5]], np.float32), np.array([[1, 2]]))
    b = (np.array([[0.3, -2.0]], np.float32), np.array([[3, 4]]))
    assert merge([a, b], 3, 2)[1].tolist() == [[3, 1, 2]]
    assert merge([a, b], 3, 1)[1].tolist() == [[4, 2, 1]]  # L2: ascending


def test_split_reply_rules():
    assert split_reply(0, [], [], 3) is None
    d, i = split_reply(2, [1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], 2)
    assert i.tolist() == [[1, 2], [3, 4]] and d.shape == (2, 2)
    with pytest.raises(MergeError):
        split_reply(2, [1, 2, 3], [0.1, 0.2, 0.3], 2)
    with pytest.raises(MergeError):
        split_reply(1, [1, 2], [0.1], 1)
    with pytest.raises(MergeError):
        split_reply(3, [1, 2, 3], [0.1, 0.2, 0.3], 2)


def test_partition_tags_are_full_match_regexes_and_default_is_root():
    parts = {"": "c", "2021-01": "p1", "2021-02": "p2", "x": "p3"}
    assert match_tags(["_default"], parts) == {"c"}
    assert match_tags(["2021-.*"], parts) == {"p1", "p2"}
    assert match_tags(["2021"], parts) is None  # a prefix is not a match
    assert match_tags(["x", " _default "], parts) == {"p3", "c"}
    assert match_tags(["("], parts) is None  # a bad regex matches only itself
