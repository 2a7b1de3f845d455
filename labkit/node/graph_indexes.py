"""RNSG (faiss ``IndexNSGFlat``) and ANNOY (the ``annoy`` package) segment indexes, with 1.1's parameters.

RNSG build: ``out_degree`` -> graph degree R, ``candidate_pool_size`` -> C, ``search_length`` -> L
(the search path while linking), ``knng`` -> K of the k-NN graph NSG prunes; search:
``search_length`` -> L. ANNOY build: ``n_trees``; search: ``search_k`` (-1 = annoy's default,
n_trees * k). Neither library filters rows during a search, so deleted rows are handled by asking
for ``k + deleted`` candidates and dropping the deleted ones: every live row reachable is kept.

Distances follow the rest of the node: L2 is squared (annoy answers the plain euclidean distance;
it is squared here so segments of different index types merge correctly), IP is the inner product.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import faiss
import numpy as np

from labkit.milvus.enums import MetricType

IP = MetricType.IP
_NSG_BRUTE_FORCE_MAX = 50_000  # exact k-NN graph up to this many rows, NN-descent above


def build_nsg(x: np.ndarray, metric: int, params: dict) -> tuple[Any, dict]:
    """A faiss NSG over float rows ``x``; returns (index, the parameters faiss got)."""
    n, d = x.shape
    fm = faiss.METRIC_INNER_PRODUCT if metric == IP else faiss.METRIC_L2
    knng = max(1, min(int(params["knng"]), n - 1))  # the k-NN graph needs k < n
    out_degree = max(1, min(int(params["out_degree"]), n - 1))
    index = faiss.IndexNSGFlat(d, out_degree, fm)
    index.GK = knng
    index.build_type = 0 if n <= _NSG_BRUTE_FORCE_MAX else 1
    index.nsg.C = int(params["candidate_pool_size"])
    index.nsg.L = int(params["search_length"])
    index.add(x)
    effective = {"out_degree": out_degree, "knng": knng, "candidate_pool_size": index.nsg.C,
                 "search_length": index.nsg.L}
    return index, effective


def search_nsg(index: Any, q: np.ndarray, w: int, search_length: int,
               deleted: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    index.nsg.search_L = max(int(search_length), 1)
    k = _widen(w, index.ntotal, deleted)
    d, i = index.search(q, k)
    return _drop_deleted(d, i, w, deleted, descending=index.metric_type == faiss.METRIC_INNER_PRODUCT)


def build_annoy(x: np.ndarray, metric: int, params: dict) -> tuple[Any, dict]:
    import annoy

    n, d = x.shape
    index = annoy.AnnoyIndex(d, "dot" if metric == IP else "euclidean")
    for row in range(n):
        index.add_item(row, x[row])
    n_trees = int(params["n_trees"])
    index.build(n_trees, n_jobs=-1)
    return index, {"n_trees": n_trees}


def search_annoy(index: Any, q: np.ndarray, w: int, search_k: int, metric: int,
                 deleted: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    n = index.get_n_items()
    k = _widen(w, n, deleted)
    pad = -np.inf if metric == IP else np.inf
    d = np.full((q.shape[0], k), pad, dtype=np.float32)
    i = np.full((q.shape[0], k), -1, dtype=np.int64)
    for row in range(q.shape[0]):
        ids, dist = index.get_nns_by_vector(q[row], k, search_k=int(search_k), include_distances=True)
        got = len(ids)
        i[row, :got] = ids
        dist = np.asarray(dist, dtype=np.float32)
        d[row, :got] = dist if metric == IP else dist * dist
    return _drop_deleted(d, i, w, deleted, descending=metric == IP)


def annoy_to_bytes(index: Any) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "annoy.idx")
        index.save(path)
        with open(path, "rb") as fh:
            return fh.read()


def annoy_from_bytes(blob: bytes | memoryview, dim: int, metric: int) -> Any:
    import annoy

    index = annoy.AnnoyIndex(dim, "dot" if metric == IP else "euclidean")
    fd, path = tempfile.mkstemp(prefix="labkit-annoy-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
        index.load(path)  # mmaps the file; unlinking it below keeps the mapping valid
    finally:
        os.unlink(path)
    return index


def annoy_nbytes(n: int, dim: int, n_trees: int) -> int:
    """Rough size: the vectors plus about n nodes of split hyperplanes per tree pair."""
    return n * dim * 4 + n_trees * n * 16


def _widen(w: int, n: int, deleted: np.ndarray | None) -> int:
    extra = 0 if deleted is None else int(np.count_nonzero(deleted))
    return max(1, min(n, w + extra))


def _drop_deleted(d: np.ndarray, i: np.ndarray, w: int, deleted: np.ndarray | None,
                  descending: bool) -> tuple[np.ndarray, np.ndarray]:
    d = np.ascontiguousarray(d, dtype=np.float32)
    i = np.ascontiguousarray(i, dtype=np.int64)
    pad = np.float32(-np.inf if descending else np.inf)
    d[i < 0] = pad
    if deleted is not None and deleted.any():
        dead = np.zeros_like(i, dtype=bool)
        ok = i >= 0
        dead[ok] = deleted[i[ok]]
        # stable re-pack: live candidates first, in their order
        order = np.argsort(dead, axis=1, kind="stable")
        i = np.take_along_axis(np.where(dead, -1, i), order, axis=1)
        d = np.take_along_axis(np.where(dead, pad, d), order, axis=1)
    if i.shape[1] < w:
        i = np.hstack([i, np.full((i.shape[0], w - i.shape[1]), -1, dtype=np.int64)])
        d = np.hstack([d, np.full((d.shape[0], w - d.shape[1]), pad, dtype=np.float32)])
    return d[:, :w], i[:, :w]
