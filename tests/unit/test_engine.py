"""The faiss engine: exactness against numpy, recall of the approximate indexes, round trips, checks."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from labkit.milvus.enums import INDEX_NAMES, IndexType, MetricType, is_binary
from labkit.milvus.status import Code, MilvusError
from labkit.node.engine import SegmentIndex, brute_force, check_index_params, check_search_params

L2, IP = MetricType.L2, MetricType.IP
HAMMING, JACCARD, TANIMOTO = MetricType.HAMMING, MetricType.JACCARD, MetricType.TANIMOTO
SUB, SUPER = MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE


# ---- numpy ground truth (independent of the engine's code paths) ------------------------------


def np_float_dist(x: np.ndarray, q: np.ndarray, metric: int) -> np.ndarray:
    x64, q64 = x.astype(np.float64), q.astype(np.float64)
    if metric == IP:
        return q64 @ x64.T
    return ((q64[:, None, :] - x64[None, :, :]) ** 2).sum(axis=2)


def np_binary_dist(x: np.ndarray, q: np.ndarray, metric: int) -> np.ndarray:
    xb = np.unpackbits(x, axis=1).astype(np.int64)
    qb = np.unpackbits(q, axis=1).astype(np.int64)
    inter = qb @ xb.T
    nx, nq = xb.sum(1), qb.sum(1)
    union = nq[:, None] + nx[None, :] - inter
    if metric == HAMMING:
        return (union - inter).astype(np.float64)
    jac = np.where(union == 0, 1.0, 1.0 - inter / np.maximum(union, 1))
    if metric == JACCARD:
        return jac
    with np.errstate(divide="ignore"):
        return -np.log2(1.0 - jac)


def truth(x, q, topk, metric, deleted=None):
    """(sorted best distances per query, number of live rows) from numpy."""
    dist = np_binary_dist(x, q, metric) if is_binary(metric) else np_float_dist(x, q, metric)
    if deleted is not None:
        dist = dist[:, ~deleted]
    dist = -np.sort(-dist, axis=1) if metric == IP else np.sort(dist, axis=1)
    return dist[:, :topk]


def recall(found: np.ndarray, expected: np.ndarray) -> float:
    hits = [len(set(f[f >= 0]) & set(e)) / len(e) for f, e in zip(found, expected, strict=True)]
    return float(np.mean(hits))


@pytest.fixture(scope="module")
def floats():
    rng = np.random.default_rng(11)
    return rng.random((500, 24), dtype=np.float32), rng.random((7, 24), dtype=np.float32)


@pytest.fixture(scope="module")
def codes():
    rng = np.random.default_rng(12)
    # sparse-ish bits so SUBSTRUCTURE / SUPERSTRUCTURE find matches; row 0 is empty
    x = np.packbits(rng.random((600, 64)) < 0.25, axis=1)
    x[0] = 0
    q = np.vstack([np.packbits(rng.random((4, 64)) < 0.1, axis=1), x[5:7], x[0:1]])
    return x, q


@pytest.fixture(scope="module")
def clustered():
    """20k x 64 gaussian mixture (recall on pure uniform noise says little about an index)."""
    rng = np.random.default_rng(7)
    centers = rng.normal(size=(200, 64)).astype(np.float32) * 3
    x = (centers[rng.integers(0, 200, 20000)] + rng.normal(size=(20000, 64))).astype(np.float32)
    q = (centers[rng.integers(0, 200, 50)] + rng.normal(size=(50, 64))).astype(np.float32)
    return x, q


# ---- exactness -------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", [L2, IP])
@pytest.mark.parametrize("use_index", [False, True])
def test_flat_float_is_exact_with_deletes(floats, metric, use_index):
    x, q = floats
    deleted = np.zeros(len(x), dtype=bool)
    deleted[::3] = True
    if use_index:
        d, i = SegmentIndex.build(x, IndexType.FLAT, metric, {}).search(q, 10, {}, deleted)
    else:
        d, i = brute_force(x, q, 10, metric, deleted)
    assert d.dtype == np.float32 and i.dtype == np.int64 and d.shape == i.shape == (7, 10)
    assert not deleted[i].any()
    np.testing.assert_allclose(d, truth(x, q, 10, metric, deleted), rtol=1e-4, atol=1e-4)
    # the returned distance is the distance of the returned row (L2 squared, not rooted)
    np.testing.assert_allclose(
        np.take_along_axis(np_float_dist(x, q, metric), i, axis=1), d, rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("metric", [L2, IP])
def test_flat_pads_when_segment_smaller_than_topk(floats, metric):
    x, q = floats
    small = x[:4]
    deleted = np.array([False, True, False, False])
    for d, i in (
        brute_force(small, q, 10, metric, deleted),
        SegmentIndex.build(small, IndexType.FLAT, metric, {}).search(q, 10, {}, deleted),
    ):
        assert i.shape == (7, 4)  # width min(topk, n)
        assert (i[:, :3] >= 0).all() and (i[:, 3] == -1).all()
        assert set(i[0, :3]) == {0, 2, 3}
        assert np.isinf(d[:, 3]).all() and (d[:, 3] > 0).all() == (metric == L2)


@pytest.mark.parametrize("metric", [HAMMING, JACCARD, TANIMOTO])
@pytest.mark.parametrize("use_index", [False, True])
def test_binary_distance_metrics_are_exact(codes, metric, use_index):
    x, q = codes
    deleted = np.zeros(len(x), dtype=bool)
    deleted[1::4] = True
    if use_index:
        d, i = SegmentIndex.build(x, IndexType.FLAT, metric, {}).search(q, 8, {}, deleted)
    else:
        d, i = brute_force(x, q, 8, metric, deleted)
    assert i.shape == (len(q), 8) and not deleted[i].any()
    np.testing.assert_allclose(d, truth(x, q, 8, metric, deleted), rtol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(np_binary_dist(x, q, metric), i, axis=1), d, rtol=1e-5)
    assert d[5, 0] == 0.0 and not np.signbit(d[5, 0])  # query 5 equals live row 6: 0.0, not -0.0


def test_binary_empty_vectors_follow_milvus(codes):
    x, q = codes
    # Milvus' Jaccard of two empty vectors is 1.0 (union 0), so Tanimoto is inf: still a result.
    d, i = brute_force(x[:1], q[-1:], 1, JACCARD)
    assert i.tolist() == [[0]] and d.tolist() == [[1.0]]
    d, i = brute_force(x[:1], q[-1:], 1, TANIMOTO)
    assert i.tolist() == [[0]] and np.isposinf(d[0, 0])


@pytest.mark.parametrize("metric", [SUB, SUPER])
def test_structure_metrics_return_matches_in_row_order(codes, metric):
    x, q = codes
    xb, qb = np.unpackbits(x, axis=1).astype(bool), np.unpackbits(q, axis=1).astype(bool)
    deleted = np.zeros(len(x), dtype=bool)
    deleted[1:4] = True
    deleted[10::7] = True
    d, i = brute_force(x, q, 5, metric, deleted)
    for row in range(len(q)):
        if metric == SUB:  # every query bit is set in the row
            match = (~qb[row][None, :] | xb).all(axis=1)
        else:  # every row bit is set in the query
            match = (~xb | qb[row][None, :]).all(axis=1)
        expected = np.flatnonzero(match & ~deleted)[:5]
        got = i[row][i[row] >= 0]
        assert got.tolist() == expected.tolist()
        assert (d[row, : len(got)] == 0).all() and np.isinf(d[row, len(got) :]).all()
    # identical rows match both ways; the empty query is a substructure of every row
    assert 5 in i[4] and 6 in i[5]
    assert (i[6] >= 0).all() if metric == SUB else i[6].tolist() == [0, -1, -1, -1, -1]


# ---- approximate indexes -------------------------------------------------------------------


@pytest.mark.parametrize("metric", [L2, IP])
@pytest.mark.parametrize(
    ("index_type", "build", "search"),
    [
        (IndexType.IVF_FLAT, {"nlist": 128}, {"nprobe": 16}),
        (IndexType.IVF_SQ8, {"nlist": 128}, {"nprobe": 16}),
        (IndexType.HNSW, {"M": 16, "efConstruction": 100}, {"ef": 64}),
        (IndexType.RNSG, {"search_length": 100, "out_degree": 30, "candidate_pool_size": 100, "knng": 30},
         {"search_length": 150}),
        (IndexType.ANNOY, {"n_trees": 16}, {"search_k": 4000}),
    ],
)
def test_recall_at_10(clustered, metric, index_type, build, search):
    x, q = clustered
    _, expected = brute_force(x, q, 10, metric)
    index = SegmentIndex.build(x, index_type, metric, build)
    d, i = index.search(q, 10, search)
    got = recall(i, expected)
    print(f"recall@10 vs brute force: {IndexType(index_type).name} metric {metric}: {got:.3f}")
    assert got >= 0.95, got
    order = np.diff(d, axis=1)
    assert (order <= 1e-5).all() if metric == IP else (order >= -1e-5).all()


def test_ivf_and_hnsw_exclude_deleted_without_losing_width(clustered):
    x, q = clustered[0][:3000], clustered[1][:5]
    deleted = np.zeros(len(x), dtype=bool)
    _, best = brute_force(x, q, 10, L2)
    deleted[best.ravel()] = True  # delete every true neighbour: the index must look further
    for index_type, build, search in [
        (IndexType.IVF_FLAT, {"nlist": 16}, {"nprobe": 16}),
        (IndexType.IVF_SQ8, {"nlist": 16}, {"nprobe": 16}),
        (IndexType.IVF_PQ, {"nlist": 16, "m": 8, "nbits": 6}, {"nprobe": 16}),
        (IndexType.HNSW, {"M": 8, "efConstruction": 40}, {"ef": 40}),
        (IndexType.RNSG, {"search_length": 40, "out_degree": 16, "candidate_pool_size": 60, "knng": 16},
         {"search_length": 40}),
        (IndexType.ANNOY, {"n_trees": 8}, {"search_k": -1}),
    ]:
        _, i = SegmentIndex.build(x, index_type, L2, build).search(q, 10, search, deleted)
        assert (i >= 0).all(), index_type
        assert not deleted[i].any(), index_type


def test_ivf_pq_builds_and_finds_neighbours(clustered):
    x, q = clustered[0][:3000], clustered[1][:20]
    _, expected = brute_force(x, q, 10, L2)
    index = SegmentIndex.build(x, IndexType.IVF_PQ, L2, {"nlist": 16, "m": 16, "nbits": 8})
    assert index.effective == {"nlist": 16, "m": 16, "nbits": 8}
    _, i = index.search(q, 10, {"nprobe": 16})
    assert recall(i, expected) >= 0.4  # PQ16x8 over 64-d is lossy; still far above chance (0.003)
    assert index.nbytes < x.nbytes  # compressed codes


def test_small_segment_clamps_nlist_and_nbits(floats):
    x, q = floats
    tiny = x[:50]
    index = SegmentIndex.build(tiny, IndexType.IVF_PQ, L2, {"nlist": 1024, "m": 4, "nbits": 12})
    assert index.effective == {"nlist": 50, "m": 4, "nbits": 5}
    _, i = index.search(q, 10, {"nprobe": 2048})
    assert i.shape == (7, 10) and (i >= 0).all()
    assert SegmentIndex.build(tiny, IndexType.IVF_FLAT, L2, {"nlist": 4096}).effective == {"nlist": 50}


@pytest.mark.parametrize("metric", [HAMMING, JACCARD, TANIMOTO])
def test_binary_ivf_with_all_lists_probed_is_exact(codes, metric):
    x, q = codes
    deleted = np.zeros(len(x), dtype=bool)
    deleted[::5] = True
    index = SegmentIndex.build(x, IndexType.IVF_FLAT, metric, {"nlist": 16})
    d, i = index.search(q, 6, {"nprobe": 16}, deleted)
    np.testing.assert_allclose(d, truth(x, q, 6, metric, deleted), rtol=1e-5)
    assert not deleted[i].any()
    d1, i1 = index.search(q, 6, {"nprobe": 1})  # fewer lists: still valid rows, no better than exact
    assert (i1[:, 0] >= 0).all()
    assert (d1[:, 0] >= truth(x, q, 1, metric)[:, 0] - 1e-6).all()


# ---- serialization ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index_type", "metric", "params", "search"),
    [
        (IndexType.FLAT, L2, {}, {}),
        (IndexType.IVF_FLAT, IP, {"nlist": 8}, {"nprobe": 3}),
        (IndexType.IVF_SQ8, L2, {"nlist": 8}, {"nprobe": 3}),
        (IndexType.IVF_PQ, L2, {"nlist": 8, "m": 6, "nbits": 4}, {"nprobe": 3}),
        (IndexType.HNSW, IP, {"M": 8, "efConstruction": 32}, {"ef": 16}),
        (IndexType.RNSG, L2, {"search_length": 20, "out_degree": 8, "candidate_pool_size": 50, "knng": 8},
         {"search_length": 20}),
        (IndexType.ANNOY, IP, {"n_trees": 4}, {"search_k": 100}),
        (IndexType.FLAT, TANIMOTO, {}, {}),
        (IndexType.IVF_FLAT, HAMMING, {"nlist": 8}, {"nprobe": 3}),
    ],
)
def test_round_trip(floats, codes, index_type, metric, params, search):
    x, q = codes if is_binary(metric) else floats
    index = SegmentIndex.build(x, index_type, metric, params)
    blob = index.to_bytes()
    back = SegmentIndex.from_bytes(blob)
    assert (back.index_type, back.metric, back.dim, back.params) == (index_type, metric, index.dim, params)
    assert back.ntotal == len(x) and back.nbytes == index.nbytes > 0
    deleted = np.zeros(len(x), dtype=bool)
    deleted[::7] = True
    for a, b in zip(index.search(q, 5, search, deleted), back.search(q, 5, search, deleted), strict=True):
        np.testing.assert_array_equal(a, b)


def test_damaged_blob_is_a_clear_error(floats):
    blob = SegmentIndex.build(floats[0], IndexType.FLAT, L2, {}).to_bytes()
    (hlen,) = struct.unpack_from("<I", blob, 5)
    garbage = blob[: 9 + hlen] + bytes(len(blob) - 9 - hlen)  # header intact, faiss section zeroed
    for bad in (b"nonsense", blob[:-10], b"LKSI\x09" + blob[5:], garbage):
        with pytest.raises(MilvusError) as e:
            SegmentIndex.from_bytes(bad)
        assert e.value.code == Code.FILE_NOT_FOUND


@pytest.mark.parametrize("index_type, params", [(IndexType.IVF_FLAT, {"nlist": 8}), (IndexType.FLAT, {}),
                                                (IndexType.IVF_SQ8, {"nlist": 8})])
def test_an_index_section_cut_short_inside_is_a_clear_error(floats, index_type, params):
    """The header agrees with the bytes present, but faiss's own sizes run past them."""
    blob = SegmentIndex.build(floats[0], index_type, L2, params).to_bytes()
    (hlen,) = struct.unpack_from("<I", blob, 5)
    header = json.loads(blob[9:9 + hlen])
    for cut in (1, 7):
        size = header["sections"][0] - cut
        hb = json.dumps({**header, "sections": [size, *header["sections"][1:]]}, sort_keys=True).encode()
        bad = blob[:5] + struct.pack("<I", len(hb)) + hb + blob[9 + hlen:9 + hlen + size]
        with pytest.raises(MilvusError) as e:
            SegmentIndex.from_bytes(bad)
        assert e.value.code == Code.FILE_NOT_FOUND


# ---- validation ------------------------------------------------------------------------------

NSG_OK = {"search_length": 45, "out_degree": 50, "candidate_pool_size": 300, "knng": 100}


def test_ivf_sq8h_is_refused_with_milvus_cpu_message():
    with pytest.raises(MilvusError) as err:
        check_index_params(IndexType.IVF_SQ8H, L2, 8, {"nlist": 4})
    assert (err.value.code, err.value.reason) == (Code.ILLEGAL_INDEX_TYPE, "Unsupported index type: 5")



@pytest.mark.parametrize(
    ("index_type", "metric", "dim", "params", "code"),
    [
        (0, L2, 8, {}, Code.ILLEGAL_INDEX_TYPE),
        (13, L2, 8, {}, Code.ILLEGAL_INDEX_TYPE),
        (7, L2, 8, {}, Code.ILLEGAL_INDEX_TYPE),
        (IndexType.IVF_SQ8H, L2, 8, {"nlist": 4}, Code.ILLEGAL_INDEX_TYPE),
        (IndexType.RNSG, HAMMING, 8, NSG_OK, Code.ILLEGAL_INDEX_TYPE),
        (
            IndexType.RNSG,
            L2,
            8,
            {"search_length": 9, "out_degree": 50, "candidate_pool_size": 300, "knng": 100},
            Code.ILLEGAL_ARGUMENT,
        ),
        (IndexType.ANNOY, JACCARD, 8, {"n_trees": 8}, Code.ILLEGAL_INDEX_TYPE),
        (IndexType.ANNOY, L2, 8, {"n_trees": 1025}, Code.ILLEGAL_ARGUMENT),
        (IndexType.ANNOY, L2, 8, {}, Code.ILLEGAL_ARGUMENT),
        (IndexType.RNSG, L2, 8, {**NSG_OK, "knng": 301}, Code.ILLEGAL_ARGUMENT),
        (IndexType.RNSG, L2, 8, {**NSG_OK, "out_degree": 4}, Code.ILLEGAL_ARGUMENT),
        (IndexType.RNSG, L2, 8, {**NSG_OK, "candidate_pool_size": 1001}, Code.ILLEGAL_ARGUMENT),
        (IndexType.ANNOY, L2, 8, {"n_trees": 0}, Code.ILLEGAL_ARGUMENT),
        (IndexType.FLAT, 0, 8, {}, Code.ILLEGAL_METRIC_TYPE),
        (IndexType.FLAT, 8, 8, {}, Code.ILLEGAL_METRIC_TYPE),
        (IndexType.IVF_SQ8, HAMMING, 8, {"nlist": 4}, Code.ILLEGAL_INDEX_TYPE),
        (IndexType.HNSW, JACCARD, 8, {"M": 16, "efConstruction": 64}, Code.ILLEGAL_INDEX_TYPE),
        (IndexType.IVF_FLAT, SUB, 8, {"nlist": 4}, Code.ILLEGAL_INDEX_TYPE),
        (IndexType.IVF_FLAT, L2, 8, {}, Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_FLAT, L2, 8, {"nlist": 0}, Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_FLAT, L2, 8, {"nlist": 65537}, Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_FLAT, L2, 8, {"nlist": "16"}, Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_FLAT, L2, 8, {"nlist": 1.5}, Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_FLAT, L2, 8, {"nlist": True}, Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_FLAT, L2, 8, "nlist=4", Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_PQ, L2, 8, {"nlist": 4}, Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_PQ, L2, 8, {"nlist": 4, "m": -1}, Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_PQ, L2, 10, {"nlist": 4, "m": 4}, Code.ILLEGAL_DIMENSION),
        (IndexType.IVF_PQ, L2, 8, {"nlist": 4, "m": 0}, Code.ILLEGAL_DIMENSION),
        (IndexType.IVF_PQ, L2, 8, {"nlist": 4, "m": 4, "nbits": 17}, Code.ILLEGAL_ARGUMENT),
        (IndexType.IVF_PQ, L2, 8, {"nlist": 4, "m": 4, "nbits": 0}, Code.ILLEGAL_ARGUMENT),
        (IndexType.HNSW, L2, 8, {"M": 3, "efConstruction": 64}, Code.ILLEGAL_ARGUMENT),
        (IndexType.HNSW, L2, 8, {"M": 65, "efConstruction": 64}, Code.ILLEGAL_ARGUMENT),
        (IndexType.HNSW, L2, 8, {"M": 16, "efConstruction": 7}, Code.ILLEGAL_ARGUMENT),
        (IndexType.HNSW, L2, 8, {"M": 16, "efConstruction": 513}, Code.ILLEGAL_ARGUMENT),
        (IndexType.HNSW, L2, 8, {"M": 16}, Code.ILLEGAL_ARGUMENT),
    ],
)
def test_index_param_errors(index_type, metric, dim, params, code):
    with pytest.raises(MilvusError) as e:
        check_index_params(index_type, metric, dim, params)
    assert e.value.code == code
    assert e.value.reason


@pytest.mark.parametrize(
    ("index_type", "metric", "dim", "params"),
    [
        (IndexType.FLAT, L2, 8, {}),
        (IndexType.FLAT, SUPER, 8, {"ignored": 1}),
        (IndexType.IVF_FLAT, L2, 8, {"nlist": 1}),
        (IndexType.IVF_FLAT, JACCARD, 8, {"nlist": 65536}),
        (IndexType.IVF_SQ8, IP, 8, {"nlist": 16.0}),
        (IndexType.IVF_PQ, L2, 12, {"nlist": 4, "m": 3}),
        (IndexType.IVF_PQ, L2, 8, {"nlist": 4, "m": 8, "nbits": 16}),
        (IndexType.IVF_PQ, L2, 8, {"nlist": 4, "m": 8, "nbits": 1}),
        (IndexType.HNSW, L2, 8, {"M": 4, "efConstruction": 8}),
        (IndexType.HNSW, IP, 8, {"M": 64, "efConstruction": 512}),
    ],
)
def test_index_params_accepted_at_inclusive_bounds(index_type, metric, dim, params):
    check_index_params(index_type, metric, dim, params)


@pytest.mark.parametrize(
    ("index_type", "params", "topk", "ok"),
    [
        (IndexType.FLAT, {}, 10, True),
        (IndexType.FLAT, {"nprobe": -5}, 10, True),  # FLAT ignores search params
        (IndexType.IVF_FLAT, {"nprobe": 1}, 10, True),
        (IndexType.IVF_SQ8, {"nprobe": 65536}, 10, True),
        (IndexType.IVF_PQ, {"nprobe": 65537}, 10, False),
        (IndexType.IVF_FLAT, {"nprobe": 0}, 10, False),
        (IndexType.IVF_FLAT, {}, 10, False),
        (IndexType.IVF_SQ8H, {}, 10, False),
        (IndexType.HNSW, {"ef": 10}, 10, True),
        (IndexType.HNSW, {"ef": 9}, 10, False),
        (IndexType.HNSW, {"ef": 32768}, 10, True),
        (IndexType.HNSW, {"ef": 32769}, 10, False),
        (IndexType.RNSG, {"search_length": 10}, 10, True),
        (IndexType.RNSG, {"search_length": 301}, 10, False),
        (IndexType.ANNOY, {"search_k": -1}, 10, True),
        (IndexType.ANNOY, {}, 10, False),
    ],
)
def test_search_params(index_type, params, topk, ok):
    if ok:
        check_search_params(index_type, params, topk)
    else:
        with pytest.raises(MilvusError) as e:
            check_search_params(index_type, params, topk)
        assert e.value.code == Code.ILLEGAL_ARGUMENT


def test_search_params_bad_index_type():
    with pytest.raises(MilvusError) as e:
        check_search_params(99, {}, 10)
    assert e.value.code == Code.ILLEGAL_INDEX_TYPE


def test_names_and_binary_flags():
    assert INDEX_NAMES[IndexType.FLAT] == "IDMAP" and INDEX_NAMES[IndexType.IVF_PQ] == "PQ"
    assert set(INDEX_NAMES) == {int(t) for t in IndexType}
    assert [is_binary(m) for m in MetricType] == [False, False, True, True, True, True, True]


def test_build_rejects_empty_ivf_and_bad_queries(floats):
    x, q = floats
    with pytest.raises(MilvusError) as e:
        SegmentIndex.build(x[:0], IndexType.IVF_FLAT, L2, {"nlist": 4})
    assert e.value.code == Code.BUILD_INDEX_ERROR
    empty = SegmentIndex.build(x[:0], IndexType.FLAT, L2, {})
    assert empty.search(q, 3, {})[1].shape == (7, 0)
    empty_bin = SegmentIndex.from_bytes(
        SegmentIndex.build(np.empty((0, 8), np.uint8), 1, JACCARD, {}).to_bytes()
    )
    assert empty_bin.search(np.zeros((2, 8), np.uint8), 3, {})[1].shape == (2, 0)
    with pytest.raises(MilvusError) as e:
        SegmentIndex.build(x, IndexType.FLAT, L2, {}).search(q[:, :5], 3, {})
    assert e.value.code == Code.ILLEGAL_DIMENSION


@pytest.mark.parametrize("metric", [L2, IP])
@pytest.mark.parametrize("use_index", [False, True])
def test_many_queries_take_the_blas_path_and_still_skip_deleted(floats, metric, use_index):
    x, _ = floats
    q = np.random.default_rng(3).random((40, x.shape[1]), dtype=np.float32)  # faiss uses BLAS from nq=20
    deleted = np.zeros(len(x), dtype=bool)
    deleted[1::2] = True
    if use_index:
        d, i = SegmentIndex.build(x, IndexType.FLAT, metric, {}).search(q, 5, {}, deleted)
    else:
        d, i = brute_force(x, q, 5, metric, deleted)
    assert (i % 2 == 0).all()
    np.testing.assert_allclose(d, truth(x, q, 5, metric, deleted), rtol=1e-4, atol=1e-4)


def test_search_restores_the_callers_openmp_threads(floats):
    import faiss

    x, q = floats
    before = faiss.omp_get_max_threads()
    brute_force(x, q, 3, L2)
    SegmentIndex.build(x, IndexType.FLAT, L2, {}).search(q, 3, {})
    assert faiss.omp_get_max_threads() == before


def test_search_tolerates_params_of_another_index_type(floats):
    # a segment indexed before the collection's index changed gets the new type's params
    x, q = floats
    ivf = SegmentIndex.build(x, IndexType.IVF_FLAT, L2, {"nlist": 8})
    hnsw = SegmentIndex.build(x, IndexType.HNSW, L2, {"M": 8, "efConstruction": 32})
    for index in (ivf, hnsw):
        for params in ({}, {"ef": 64}, {"nprobe": "x"}):
            _, i = index.search(q, 5, params)
            assert i.shape == (7, 5) and (i >= 0).all()
