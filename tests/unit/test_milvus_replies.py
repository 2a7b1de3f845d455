"""TopKQueryResult encoding and decoding, and merging replies of several nodes into one top-k."""

import numpy as np
import pytest

from labkit.milvus import replies, topk


def _exact(data, ids, queries, k, ip=False):
    scores = queries @ data.T if ip else ((queries[:, None, :] - data[None]) ** 2).sum(-1)
    order = np.argsort(-scores if ip else scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), ids[order]


@pytest.mark.parametrize("ip", [False, True])
def test_merging_node_replies_equals_searching_everything(ip):
    rng = np.random.default_rng(1)
    data = rng.random((300, 8), dtype=np.float32)
    ids = np.arange(300, dtype=np.int64) * 7
    q = rng.random((5, 8), dtype=np.float32)
    parts = []
    for lo, hi in [(0, 3), (3, 120), (120, 300)]:  # one shard smaller than topk: padded as a node pads
        d, i = _exact(data[lo:hi], ids[lo:hi], q, 10, ip)
        pad = 10 - d.shape[1]
        d = np.pad(d, ((0, 0), (0, pad)), constant_values=np.inf if not ip else -np.inf)
        i = np.pad(i, ((0, 0), (0, pad)), constant_values=-1)
        wire = replies.topk_result(d, i)  # through the wire, as the router receives it
        parts.append(replies.topk_arrays(wire.row_num, wire.ids, wire.distances, 5))
    got_d, got_i = topk.merge(parts, 10, 2 if ip else 1)
    want_d, want_i = _exact(data, ids, q, 10, ip)
    assert np.array_equal(got_i, want_i)
    assert np.allclose(got_d, want_d, rtol=1e-5)


def test_encoding_pads_with_float_max_and_no_file_is_row_num_0():
    ids = np.array([[5, 7, -1], [9, -1, -1]])
    dist = np.array([[0.1, 0.2, np.inf], [0.3, np.inf, np.inf]], dtype=np.float32)
    res = replies.topk_result(dist, ids)
    assert res.row_num == 2 and list(res.ids) == [5, 7, -1, 9, -1, -1]
    assert np.isfinite(np.array(res.distances)).all()
    # files searched, every row deleted: nq rows of padding (1.1); no file searched: 0 rows
    assert replies.topk_result(np.full((2, 3), np.inf), np.full((2, 3), -1)).row_num == 2
    assert replies.topk_result(np.zeros((3, 0)), np.zeros((3, 0))).row_num == 0


def test_decoding_rules():
    assert replies.topk_arrays(0, [], [], 3) is None
    d, i = replies.topk_arrays(2, [1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], 2)
    assert i.tolist() == [[1, 2], [3, 4]] and d.shape == (2, 2)
    with pytest.raises(replies.ReplyError):
        replies.topk_arrays(2, [1, 2, 3], [0.1, 0.2, 0.3], 2)
    with pytest.raises(replies.ReplyError):
        replies.topk_arrays(1, [1, 2], [0.1], 1)
    with pytest.raises(replies.ReplyError):
        replies.topk_arrays(3, [1, 2, 3], [0.1, 0.2, 0.3], 2)


def test_padding_from_the_wire_sorts_after_real_results():
    a = replies.topk_result(np.array([[0.5, np.inf]], np.float32), np.array([[1, -1]]))
    b = replies.topk_result(np.array([[0.1]], np.float32), np.array([[2]]))
    parts = [replies.topk_arrays(r.row_num, r.ids, r.distances, 1) for r in (a, b)]
    d, i = topk.merge(parts, 10, 1)
    assert i.tolist() == [[2, 1, -1]] and d.shape == (1, 3)
    assert topk.merge(parts, 1, 1)[1].tolist() == [[2]]
