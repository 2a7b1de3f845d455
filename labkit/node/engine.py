"""The lab node's vector engine: Milvus 1.1 index/metric codes, parameter checks, faiss segment indexes.

One ``SegmentIndex`` covers one segment. Search returns ROW OFFSETS within the segment (the store
maps them to ids) and Milvus 1.1 distances: L2 squared, IP, Hamming (bit count), Jaccard
(``1 - |a&b| / |a|b|``, 1.0 when both are empty), Tanimoto (``-log2(1 - jaccard)``, as knowhere
derives it), and 0.0 for every match of SUBSTRUCTURE / SUPERSTRUCTURE (matches in row order, as
Milvus's match-count search returns them).

Float indexes are faiss (IndexFlat, IVF Flat/SQ8/PQ, HNSW Flat, NSG Flat for RNSG) and annoy
(ANNOY); see ``graph_indexes`` for the two graph/tree indexes. Binary segments keep their packed
codes and compute all five binary metrics exactly from faiss's Hamming matrix plus popcounts (faiss
binary indexes only rank by Hamming); binary IVF_FLAT uses a faiss binary quantizer (Hamming
k-means) to pick the probed lists.
Deleted rows are excluded inside the search (faiss ``IDSelectorBitmap`` / a mask before
selection), so a search still returns every live row it can reach.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import faiss
import numpy as np

from labkit.milvus import topk as _topk
from labkit.milvus.enums import IndexType, MetricType, is_binary
from labkit.milvus.status import Code, MilvusError
from labkit.node import graph_indexes as graphs

_IVF = (IndexType.IVF_FLAT, IndexType.IVF_SQ8, IndexType.IVF_SQ8H, IndexType.IVF_PQ)
_MATCH_METRICS = (MetricType.SUBSTRUCTURE, MetricType.SUPERSTRUCTURE)

# Parameter ranges of Milvus 1.1 (ValidationUtil.cpp), all inclusive.
NLIST = (1, 65536)
NPROBE = (1, 65536)
PQ_NBITS = (1, 16)
HNSW_M = (4, 64)
HNSW_EF_CONSTRUCTION = (8, 512)
HNSW_EF_MAX = 32768
NSG_BUILD = {
    "search_length": (10, 300),
    "out_degree": (5, 300),
    "candidate_pool_size": (50, 1000),
    "knng": (5, 300),
}
NSG_SEARCH_LENGTH = (10, 300)
ANNOY_N_TREES = (1, 1024)

# Search defaults when a segment's index type differs from the collection's current one (e.g. an
# index built before drop_index/create_index) and the request carries no parameter for it.
_DEFAULT_NPROBE = 16
_DEFAULT_EF = 64


# OpenMP threads per search call. One: on the lab's 2 shared cores, faiss's OpenMP fork/join for a
# single query costs more than the scan (nq=1 over 100k x 128: ~2 ms on 1 thread, ~16 ms on 2 under
# load). Concurrent requests still use both cores: faiss releases the GIL.
SEARCH_THREADS = int(os.environ.get("LABKIT_SEARCH_THREADS", "1"))


# IVF_PQ keeps a precomputed table of nlist * m * 2**nbits floats per index (faiss's default cap is
# 2 GB: nbits=12, nlist=1024, m=16 would be 268 MB beside a 3 MB index). Above 64 MB faiss computes
# the terms per query instead, a little slower. Process-wide, so it also applies when loading.
faiss.cvar.precomputed_table_max_bytes = min(faiss.cvar.precomputed_table_max_bytes, 64 << 20)


@contextmanager
def _omp_threads(n: int) -> Iterator[None]:
    """Set this thread's OpenMP team size (an ICV of the calling thread) for the duration."""
    prev = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(prev)


# ---------------------------------------------------------------------------------------------
# parameter checks


def _int_param(params: dict, name: str, lo: int | None = None, hi: int | None = None) -> int:
    if name not in params:
        raise MilvusError(Code.ILLEGAL_ARGUMENT, f"Parameter list must contain: {name}")
    value = params[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())
    ):
        raise MilvusError(Code.ILLEGAL_ARGUMENT, f"Invalid {name}: {value!r} is not an integer")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        valid = f"Valid range is [{lo}, {hi}]" if hi is not None else f"It must be at least {lo}"
        raise MilvusError(Code.ILLEGAL_ARGUMENT, f"Invalid {name} value: {value}. {valid}")
    return value


def _opt_int(params: dict, name: str, default: int) -> int:
    """A search parameter already validated upstream, or the default when absent or unusable
    (a segment indexed before the collection's index type changed gets the new type's params)."""
    value = params.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return int(value)


def _check_dict(params: Any, what: str) -> dict:
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise MilvusError(Code.ILLEGAL_ARGUMENT, f"{what} must be a JSON object, got {type(params).__name__}")
    return params


def _check_index_type(index_type: int) -> IndexType:
    try:
        return IndexType(int(index_type))
    except (ValueError, TypeError):
        raise MilvusError(
            Code.ILLEGAL_INDEX_TYPE,
            f"Invalid index type: {index_type}. Make sure the index type is in IndexType list.",
        ) from None


def check_index_params(index_type: int, metric: int, dim: int, params: dict) -> None:
    """Validate create_index as Milvus 1.1 does; raise MilvusError with its code on the first problem."""
    if not isinstance(metric, numbers.Integral) or int(metric) not in MetricType._value2member_map_:
        raise MilvusError(
            Code.ILLEGAL_METRIC_TYPE,
            f"Invalid index metric type: {metric}. Make sure the metric type is in MetricType list.",
        )
    itype = _check_index_type(index_type)
    if itype == IndexType.IVF_SQ8H:
        raise MilvusError(
            Code.ILLEGAL_INDEX_TYPE,
            "Unsupported index type: 5",  # 1.1's CPU build: IVF_SQ8H needs the GPU faiss
        )
    if is_binary(metric):
        if itype not in (IndexType.FLAT, IndexType.IVF_FLAT):
            raise MilvusError(
                Code.ILLEGAL_INDEX_TYPE,
                f"Index type {itype.name} does not support binary metric {MetricType(metric).name}; "
                "binary collections take FLAT or IVF_FLAT.",
            )
        if itype != IndexType.FLAT and int(metric) in _MATCH_METRICS:
            raise MilvusError(
                Code.ILLEGAL_INDEX_TYPE,
                f"Metric {MetricType(metric).name} supports only the FLAT index.",
            )
    params = _check_dict(params, "Index params")
    if itype in _IVF:
        _int_param(params, "nlist", *NLIST)
    if itype == IndexType.IVF_PQ:
        m = _int_param(params, "m", 0)
        if m == 0 or dim % m != 0:
            raise MilvusError(
                Code.ILLEGAL_DIMENSION,
                f"Invalid m: {m}. The collection dimension {dim} must be a multiple of m.",
            )
        if "nbits" in params:
            _int_param(params, "nbits", *PQ_NBITS)
    elif itype == IndexType.HNSW:
        _int_param(params, "M", *HNSW_M)
        _int_param(params, "efConstruction", *HNSW_EF_CONSTRUCTION)
    elif itype == IndexType.RNSG:
        for name, rng in NSG_BUILD.items():
            _int_param(params, name, *rng)
    elif itype == IndexType.ANNOY:
        _int_param(params, "n_trees", *ANNOY_N_TREES)


def check_search_params(index_type: int, params: dict, topk: int) -> None:
    """Validate search params against the collection's current index type (FLAT ignores them)."""
    itype = _check_index_type(index_type)
    params = _check_dict(params, "Search params")
    if itype in _IVF:
        _int_param(params, "nprobe", *NPROBE)
    elif itype == IndexType.HNSW:
        _int_param(params, "ef", int(topk), HNSW_EF_MAX)
    elif itype == IndexType.RNSG:
        _int_param(params, "search_length", *NSG_SEARCH_LENGTH)
    elif itype == IndexType.ANNOY:
        _int_param(params, "search_k")


# ---------------------------------------------------------------------------------------------
# exact search


def _faiss_metric(metric: int) -> int:
    return faiss.METRIC_INNER_PRODUCT if int(metric) == MetricType.IP else faiss.METRIC_L2


def _live_selector(deleted: np.ndarray | None, n: int) -> tuple[Any, np.ndarray | None]:
    """(faiss IDSelectorBitmap of live rows, its bitmap) or (None, None) when nothing is deleted.

    The caller must keep the bitmap referenced while faiss searches: the selector points into it.
    """
    if deleted is None:
        return None, None
    mask = np.asarray(deleted, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"deleted mask has shape {mask.shape}, expected ({n},)")
    if not mask.any():
        return None, None
    bitmap = np.packbits(~mask, bitorder="little")
    return faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap)), bitmap


def _as_float(a: np.ndarray, what: str) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"{what} must be 2-D, got shape {a.shape}")
    return a


def _as_codes(a: np.ndarray, what: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.uint8 or a.ndim != 2:
        raise ValueError(f"{what} must be packed uint8 of shape (n, dim // 8), got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def _finish(d: np.ndarray, i: np.ndarray, metric: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss pads with ids -1 and +-FLT_MAX; normalise padding distances to +-inf."""
    d = np.ascontiguousarray(d, dtype=np.float32)
    i = np.ascontiguousarray(i, dtype=np.int64)
    pad = i < 0
    if pad.any():
        d[pad] = _topk.pad_value(metric)
    return d, i


def _float_knn(
    vectors: np.ndarray, queries: np.ndarray, w: int, metric: int, sel: Any
) -> tuple[np.ndarray, np.ndarray]:
    nq, dim = queries.shape
    n = vectors.shape[0]
    d = np.empty((nq, w), dtype=np.float32)
    i = np.empty((nq, w), dtype=np.int64)
    sp = faiss.swig_ptr
    if int(metric) == MetricType.IP:
        faiss.knn_inner_product(sp(queries), sp(vectors), dim, nq, n, w, sp(d), sp(i), sel)
    else:
        faiss.knn_L2sqr(sp(queries), sp(vectors), dim, nq, n, w, sp(d), sp(i), None, sel)
    return d, i


def brute_force(
    vectors: np.ndarray,
    queries: np.ndarray,
    topk: int,
    metric: int,
    deleted: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact search of a raw segment; same output convention as ``SegmentIndex.search``."""
    if is_binary(metric):
        codes = _as_codes(vectors, "vectors")
        q = _as_codes(queries, "queries")
        if q.shape[1] != codes.shape[1]:
            raise MilvusError(
                Code.ILLEGAL_DIMENSION, "The query dimension must equal the collection dimension."
            )
        w = min(int(topk), codes.shape[0])
        mask = None if deleted is None else np.asarray(deleted, dtype=bool)
        return _binary_topk(codes, None, q, w, metric, mask)
    x = _as_float(vectors, "vectors")
    q = _as_float(queries, "queries")
    if q.shape[1] != x.shape[1]:
        raise MilvusError(Code.ILLEGAL_DIMENSION, "The query dimension must equal the collection dimension.")
    w = min(int(topk), x.shape[0])
    if w <= 0:
        return _topk.empty(q.shape[0], metric)
    sel, _bitmap = _live_selector(deleted, x.shape[0])
    with _omp_threads(SEARCH_THREADS):
        d, i = _float_knn(x, q, w, metric, sel)
    return _finish(d, i, metric)


# ---- binary metrics in numpy ------------------------------------------------------------------

_FMAX = np.float32(np.finfo(np.float32).max)
_CHUNK_ELEMS = 1 << 21  # bound on nq * rows per distance block (int32 + float64 temporaries)


def _popcounts(codes: np.ndarray) -> np.ndarray:
    """Number of set bits of each packed row, int64 (n,)."""
    return np.bitwise_count(codes).sum(axis=1, dtype=np.int64)


def _binary_distances(
    q: np.ndarray, x: np.ndarray, metric: int, qpop: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None]:
    """(distances (nq, m) float32, valid mask or None = all) of packed queries vs packed rows.

    Everything derives from faiss's Hamming matrix h and popcounts: |a&b| = (|a| + |b| - h) / 2,
    |a|b| = (|a| + |b| + h) / 2.
    """
    nq, m = q.shape[0], x.shape[0]
    h = np.empty((nq, m), dtype=np.int32)
    sp = faiss.swig_ptr
    faiss.hammings(sp(q), sp(x), nq, m, q.shape[1], sp(h))
    kind = int(metric)
    if kind == MetricType.HAMMING:
        return h.astype(np.float32), None
    both = qpop[:, None] + _popcounts(x)[None, :]
    inter = (both - h) // 2
    if kind == MetricType.SUBSTRUCTURE:  # every query bit is set in the row
        return np.zeros((nq, m), dtype=np.float32), inter == qpop[:, None]
    if kind == MetricType.SUPERSTRUCTURE:  # every row bit is set in the query
        return np.zeros((nq, m), dtype=np.float32), inter == (both - qpop[:, None])
    union = (both + h) // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        # Milvus: Jaccard of two empty vectors (union 0) is 1.0, hence Tanimoto inf
        similarity = np.where(union == 0, 0.0, inter / np.maximum(union, 1))
        if kind == MetricType.JACCARD:
            return (1.0 - similarity).astype(np.float32), None
        if kind == MetricType.TANIMOTO:  # -log2(1 - jaccard); 0.0 - x keeps identical rows at +0.0
            return (0.0 - np.log2(similarity)).astype(np.float32), None
    raise MilvusError(Code.ILLEGAL_METRIC_TYPE, f"Metric {metric} is not a binary metric.")


def _binary_topk(
    codes: np.ndarray,
    rows: np.ndarray | None,
    queries: np.ndarray,
    w: int,
    metric: int,
    deleted: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-w of ``queries`` over ``codes[rows]`` (all rows when None); offsets are row numbers."""
    nq = queries.shape[0]
    if w <= 0:
        return _topk.empty(nq, metric)
    q = np.ascontiguousarray(queries)
    qpop = _popcounts(q)
    if deleted is not None and deleted.shape != (codes.shape[0],):
        raise ValueError(f"deleted mask has shape {deleted.shape}, expected ({codes.shape[0]},)")
    if deleted is not None and not deleted.any():
        deleted = None
    step = max(1, _CHUNK_ELEMS // max(1, nq))
    total = codes.shape[0] if rows is None else len(rows)
    best_d, best_i = _topk.empty(nq, metric)
    with _omp_threads(SEARCH_THREADS):
        for start in range(0, total, step):
            if rows is None:  # a slice: no copy of the segment
                part = np.arange(start, min(start + step, total), dtype=np.int64)
                block = codes[start : start + step]
            else:
                part = rows[start : start + step]
                block = np.ascontiguousarray(codes[part])
            dist, ok = _binary_distances(q, block, metric, qpop)
            key = np.minimum(dist, _FMAX)  # every binary metric is ascending; inf = excluded
            if ok is not None:
                key[~ok] = np.inf
            if deleted is not None:
                key[:, deleted[part]] = np.inf
            cols = _topk.best_columns(key, min(w, len(part)))
            live = np.take_along_axis(key, cols, axis=1) < np.inf
            ids = np.where(live, part[cols], -1)
            d = np.where(live, np.take_along_axis(dist, cols, axis=1), np.float32(np.inf))
            best_d, best_i = _topk.merge([(best_d, best_i), (d, ids)], w, metric)
    if best_i.shape[1] < w:  # fewer reachable rows than w: pad to the segment's width
        pd, pi = _topk.empty(nq, metric, w - best_i.shape[1])
        best_d, best_i = np.hstack([best_d, pd]), np.hstack([best_i, pi])
    return best_d, best_i


# ---------------------------------------------------------------------------------------------
# segment index

_MAGIC = b"LKSI"
_VERSION = 1


class SegmentIndex:
    """A built index over one segment's vectors (row offsets 0..n-1)."""

    index_type: int
    metric: int
    dim: int
    params: dict
    nbytes: int

    def __init__(self) -> None:
        self.index_type = IndexType.FLAT
        self.metric = MetricType.L2
        self.dim = 0
        self.params = {}
        self.nbytes = 0
        self.ntotal = 0
        self.effective: dict = {}  # parameters faiss actually got (nlist/nbits clamped for small segments)
        self._index: Any = None  # faiss Index (float) or IndexBinaryFlat quantizer (binary IVF)
        self._codes: np.ndarray | None = None  # binary: packed rows (n, dim // 8)
        self._assign: np.ndarray | None = None  # binary IVF: list number of each row
        self._order: np.ndarray | None = None  # binary IVF: rows grouped by list
        self._bounds: np.ndarray | None = None  # binary IVF: list l is _order[_bounds[l]:_bounds[l+1]]
        self._blob: np.ndarray | None = None  # float index read in place: the bytes it points into

    # ---- build ------------------------------------------------------------------------------

    @classmethod
    def build(cls, vectors: np.ndarray, index_type: int, metric: int, params: dict) -> SegmentIndex:
        """Train and fill an index. float32 (n, dim) vectors, or uint8 (n, dim // 8) for binary metrics."""
        binary = is_binary(metric)
        data = _as_codes(vectors, "vectors") if binary else _as_float(vectors, "vectors")
        dim = data.shape[1] * (8 if binary else 1)
        params = dict(params or {})
        check_index_params(index_type, metric, dim, params)
        self = cls()
        self.index_type, self.metric, self.dim, self.params = int(index_type), int(metric), dim, params
        self.ntotal = n = data.shape[0]
        itype = IndexType(self.index_type)
        if n == 0 and itype != IndexType.FLAT:
            raise MilvusError(Code.BUILD_INDEX_ERROR, f"Cannot build {itype.name} over an empty segment.")
        try:
            if binary:
                self._build_binary(data, itype)
            else:
                self._build_float(data, itype)
        except RuntimeError as e:  # faiss reports training problems as RuntimeError
            raise MilvusError(Code.BUILD_INDEX_ERROR, f"Building {itype.name} failed: {e}") from e
        self.nbytes = self._estimate_nbytes()
        return self

    def _build_float(self, x: np.ndarray, itype: IndexType) -> None:
        n, d = x.shape
        fm = _faiss_metric(self.metric)
        p = self.params
        if itype == IndexType.FLAT:
            index = faiss.IndexFlat(d, fm)
        elif itype == IndexType.RNSG:
            self._index, self.effective = graphs.build_nsg(x, self.metric, p)
            return
        elif itype == IndexType.ANNOY:
            self._index, self.effective = graphs.build_annoy(x, self.metric, p)
            return
        elif itype == IndexType.HNSW:
            index = faiss.IndexHNSWFlat(d, int(p["M"]), fm)
            index.hnsw.efConstruction = int(p["efConstruction"])
            self.effective = {"M": int(p["M"]), "efConstruction": int(p["efConstruction"])}
        else:
            # faiss k-means needs at least one training row per centroid, so a segment smaller than
            # nlist gets nlist = n (Milvus only indexes segments of >= 4096 rows; tests use fewer).
            nlist = min(int(p["nlist"]), n)
            self.effective = {"nlist": nlist}
            if itype == IndexType.IVF_FLAT:
                spec = f"IVF{nlist},Flat"
            elif itype == IndexType.IVF_SQ8:
                spec = f"IVF{nlist},SQ8"
            else:  # IVF_PQ
                m = int(p["m"])
                # Same for the PQ codebooks: 2**nbits centroids per sub-quantizer need that many rows.
                nbits = min(int(p.get("nbits", 8)), max(1, int(math.log2(n))))
                self.effective.update(m=m, nbits=nbits)
                spec = f"IVF{nlist},PQ{m}x{nbits}"
            index = faiss.index_factory(d, spec, fm)
            index.cp.verbose = False
            if itype == IndexType.IVF_PQ:
                # index_factory turns on polysemous training (a slow annealing of code order that
                # only helps Hamming-filtered search, which Milvus does not use): off.
                index.do_polysemous_training = False
            index.train(x)
        index.add(x)
        self._index = index

    def _build_binary(self, codes: np.ndarray, itype: IndexType) -> None:
        self._codes = codes.copy()
        if itype == IndexType.FLAT:
            return
        n = codes.shape[0]
        nlist = min(int(self.params["nlist"]), n)  # see _build_float: k-means needs n >= nlist
        self.effective = {"nlist": nlist}
        quantizer = faiss.IndexBinaryFlat(self.dim)
        ivf = faiss.IndexBinaryIVF(quantizer, self.dim, nlist)
        ivf.cp.verbose = False
        ivf.train(codes)  # fills `quantizer` with nlist binary centroids
        del ivf
        self._index = quantizer
        _, assign = quantizer.search(codes, 1)
        self._set_lists(assign[:, 0].astype(np.int32))

    def _set_lists(self, assign: np.ndarray) -> None:
        self._assign = assign
        self._order = np.argsort(assign, kind="stable").astype(np.int64)
        self._bounds = np.searchsorted(assign[self._order], np.arange(self._index.ntotal + 1))

    def _estimate_nbytes(self) -> int:
        n, d = self.ntotal, self.dim
        itype = self.index_type
        if is_binary(self.metric):
            extra = 0 if self._assign is None else n * 12 + self._index.ntotal * (d // 8)
            return n * (d // 8) + extra
        nlist = self.effective.get("nlist", 0)
        if itype == IndexType.FLAT:
            return n * d * 4
        if itype == IndexType.HNSW:
            return n * d * 4 + n * (int(self.effective["M"]) * 2 * 4 + 16)
        if itype == IndexType.RNSG:
            return n * d * 4 + n * int(self.effective["out_degree"]) * 4
        if itype == IndexType.ANNOY:
            return graphs.annoy_nbytes(n, d, int(self.effective["n_trees"]))
        centroids = nlist * d * 4
        if itype == IndexType.IVF_FLAT:
            return n * (d * 4 + 8) + centroids
        if itype == IndexType.IVF_SQ8:
            return n * (d + 8) + centroids + 2 * d * 4
        m, nbits = self.effective["m"], self.effective["nbits"]
        return n * ((m * nbits + 7) // 8 + 8) + centroids + (1 << nbits) * d * 4

    # ---- search -----------------------------------------------------------------------------

    def search(
        self,
        queries: np.ndarray,
        topk: int,
        params: dict,
        deleted: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k row offsets of the segment (width min(topk, n), -1 padded), best first per metric."""
        params = params or {}
        binary = is_binary(self.metric)
        q = _as_codes(queries, "queries") if binary else _as_float(queries, "queries")
        if q.shape[1] * (8 if binary else 1) != self.dim:
            raise MilvusError(
                Code.ILLEGAL_DIMENSION, "The query dimension must equal the collection dimension."
            )
        w = min(int(topk), self.ntotal)
        if w <= 0:
            return _topk.empty(q.shape[0], self.metric)
        if binary:
            mask = None if deleted is None else np.asarray(deleted, dtype=bool)
            if mask is not None and mask.shape != (self.ntotal,):
                raise ValueError(f"deleted mask has shape {mask.shape}, expected ({self.ntotal},)")
            if self._assign is None:
                return _binary_topk(self._codes, None, q, w, self.metric, mask)
            return self._binary_ivf_search(q, w, params, mask)
        if self.index_type in (IndexType.RNSG, IndexType.ANNOY):
            return self._graph_search(q, w, params, deleted)
        sel, _bitmap = _live_selector(deleted, self.ntotal)  # _bitmap stays alive for the search
        sp = self._search_params(params, w, sel)
        with _omp_threads(SEARCH_THREADS):
            d, i = self._index.search(q, w) if sp is None else self._index.search(q, w, params=sp)
        return _finish(d, i, self.metric)

    def _graph_search(
        self, q: np.ndarray, w: int, params: dict, deleted: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        mask = None if deleted is None else np.asarray(deleted, dtype=bool)
        if mask is not None and mask.shape != (self.ntotal,):
            raise ValueError(f"deleted mask has shape {mask.shape}, expected ({self.ntotal},)")
        with _omp_threads(SEARCH_THREADS):
            if self.index_type == IndexType.RNSG:
                length = _opt_int(params, "search_length", int(self.effective["search_length"]))
                return graphs.search_nsg(self._index, q, w, length, mask)
            search_k = _opt_int(params, "search_k", -1)
            return graphs.search_annoy(self._index, q, w, search_k, self.metric, mask)

    def _search_params(self, params: dict, w: int, sel: Any) -> Any:
        itype = self.index_type
        if itype in _IVF:
            nprobe = min(_opt_int(params, "nprobe", _DEFAULT_NPROBE), self.effective["nlist"])
            return faiss.SearchParametersIVF(nprobe=max(1, nprobe), sel=sel)
        if itype == IndexType.HNSW:
            ef = max(_opt_int(params, "ef", _DEFAULT_EF), w)
            return faiss.SearchParametersHNSW(efSearch=ef, sel=sel)
        return None if sel is None else faiss.SearchParameters(sel=sel)

    def _binary_ivf_search(
        self, q: np.ndarray, w: int, params: dict, deleted: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        nlist = self._index.ntotal
        nprobe = max(1, min(_opt_int(params, "nprobe", _DEFAULT_NPROBE), nlist))
        with _omp_threads(SEARCH_THREADS):
            _, probes = self._index.search(q, nprobe)
        ds, is_ = [], []
        for qi in range(q.shape[0]):
            lists = probes[qi][probes[qi] >= 0]
            rows = np.concatenate([self._order[self._bounds[lst] : self._bounds[lst + 1]] for lst in lists])
            d, i = _binary_topk(self._codes, rows, q[qi : qi + 1], w, self.metric, deleted)
            ds.append(d)
            is_.append(i)
        return np.vstack(ds), np.vstack(is_)

    # ---- serialization ----------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """``LKSI`` + u8 version + u32 header length + header JSON + sections (lengths in the header).

        Sections: the faiss index (serialize_index / serialize_index_binary for the binary IVF
        quantizer), then for binary segments the packed codes and the IVF list numbers.
        """
        sections: list[Any] = []  # bytes-like; joined once at the end (one copy of a large index)
        if self._index is None:
            sections.append(b"")
        elif is_binary(self.metric):
            sections.append(memoryview(faiss.serialize_index_binary(self._index)))
        elif self.index_type == IndexType.ANNOY:
            sections.append(graphs.annoy_to_bytes(self._index))
        else:
            sections.append(memoryview(faiss.serialize_index(self._index)))
        if self._codes is not None:
            sections.append(memoryview(self._codes.reshape(-1)))
            sections.append(b"" if self._assign is None else self._assign.astype("<i4").tobytes())
        header = {
            "index_type": self.index_type,
            "metric": self.metric,
            "dim": self.dim,
            "params": self.params,
            "effective": self.effective,
            "ntotal": self.ntotal,
            "sections": [s.nbytes if isinstance(s, memoryview) else len(s) for s in sections],
        }
        hb = json.dumps(header, sort_keys=True).encode()
        return b"".join([_MAGIC, struct.pack("<BI", _VERSION, len(hb)), hb, *sections])

    @classmethod
    def from_bytes(cls, data: bytes | memoryview) -> SegmentIndex:
        """Inverse of ``to_bytes``; a damaged or foreign blob raises MilvusError(FILE_NOT_FOUND).

        A faiss index of float vectors is read in place: its vectors and ids stay in ``data``, which
        the index keeps alive, so ``data`` must not be written to afterwards.
        """
        mv = memoryview(data)
        try:
            if bytes(mv[:4]) != _MAGIC:
                raise ValueError("bad magic")
            version, hlen = struct.unpack_from("<BI", mv, 4)
            if version != _VERSION:
                raise ValueError(f"unknown version {version}")
            pos = 9 + hlen
            header = json.loads(bytes(mv[9:pos]))
            sections = []
            for length in header["sections"]:
                if pos + length > len(mv):
                    raise ValueError("truncated")
                sections.append(mv[pos : pos + length])
                pos += length
        except (ValueError, KeyError, TypeError, struct.error) as e:
            raise MilvusError(Code.FILE_NOT_FOUND, f"Index file is damaged or not a lab index: {e}") from e
        try:
            return cls._load(header, sections)
        except (ValueError, KeyError, TypeError, RuntimeError) as e:  # faiss: RuntimeError
            raise MilvusError(Code.FILE_NOT_FOUND, f"Index file is damaged: {e}") from e

    @classmethod
    def _load(cls, header: dict, sections: list[memoryview]) -> SegmentIndex:
        self = cls()
        self.index_type, self.metric, self.dim = header["index_type"], header["metric"], header["dim"]
        self.params, self.effective, self.ntotal = header["params"], header["effective"], header["ntotal"]
        blob = np.frombuffer(sections[0], dtype=np.uint8)
        if is_binary(self.metric):
            self._codes = (
                np.frombuffer(sections[1], dtype=np.uint8).reshape(self.ntotal, self.dim // 8).copy()
            )
            if len(blob):
                self._index = faiss.deserialize_index_binary(blob)
                self._set_lists(np.frombuffer(sections[2], dtype="<i4").astype(np.int32))
        elif self.index_type == IndexType.ANNOY:
            self._index = graphs.annoy_from_bytes(sections[0], self.dim, self.metric)
        else:
            # in place: the inverted lists (or flat codes) are views of ``blob``, not copies. A 53 MB
            # IVF_FLAT index reads in ~2 ms instead of ~35-65 ms of allocation, page faults and copy.
            reader = faiss.ZeroCopyIOReader(faiss.swig_ptr(blob), blob.size)
            index = faiss.read_index(reader)
            if reader.rp_ != blob.size:  # its views are not bounds-checked: a cut section reads past the end
                raise ValueError(f"the index section holds {blob.size} bytes, faiss read {reader.rp_}")
            self._index, self._blob = index, blob  # the index's views point into blob
        self.nbytes = self._estimate_nbytes()
        return self
