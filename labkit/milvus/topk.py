"""Merge partial top-k results (per segment on a node, per node in the router) into one top-k.

Every part is ``(distances (nq, w_i), ids (nq, w_i))`` with ids already global and ``-1`` marking
padding. Best first: ascending distance for every metric except IP (metric 2), where larger is
better. Padding always sorts after every real result, even a real ``inf`` (Tanimoto of disjoint
vectors is ``-log2(0) = inf``).
"""

from __future__ import annotations

import numpy as np

from labkit.milvus.enums import larger_is_better

_FMAX = float(np.finfo(np.float32).max)
# Up to this many candidates per row one stable sort of each row costs less than partition + ties
# (a router merges the nodes' top-k lists, a few dozen columns); the order is the same either way.
_SORT_ALL = 512


def ascending(metric: int) -> bool:
    """True when smaller distances are better (every metric but IP)."""
    return not larger_is_better(metric)


def pad_value(metric: int) -> float:
    """Distance written into padding slots (ids -1): +inf for ascending metrics, -inf for IP."""
    return float("inf") if ascending(metric) else float("-inf")


def empty(nq: int, metric: int, width: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An all-padding result of shape (nq, width)."""
    return (
        np.full((nq, width), pad_value(metric), dtype=np.float32),
        np.full((nq, width), -1, dtype=np.int64),
    )


def best_columns(key: np.ndarray, w: int) -> np.ndarray:
    """Column indices (nq, w) of the w smallest keys per row, sorted; equal keys keep column order.

    ``key`` is float32 where smaller is better and +inf marks padding / excluded entries.
    """
    nq, total = key.shape
    if w >= total or total <= _SORT_ALL:
        return np.argsort(key, axis=1, kind="stable")[:, :w]
    # Keep everything better than the w-th key, then the earliest columns that tie with it
    # (SUBSTRUCTURE matches are all 0.0: the first rows win, as in Milvus).
    kth = np.partition(key, w - 1, axis=1)[:, w - 1 : w]
    better = key < kth
    tie = key == kth
    keep = better | tie
    need = w - better.sum(axis=1)
    for r in np.flatnonzero(tie.sum(axis=1) > need):  # too many ties: drop the later ones
        keep[r, np.flatnonzero(tie[r])[need[r] :]] = False
    cand = np.nonzero(keep)[1].reshape(nq, w)  # row-major: ascending columns per row
    ck = np.take_along_axis(key, cand, axis=1)
    return np.take_along_axis(cand, np.argsort(ck, axis=1, kind="stable"), axis=1)


def select(distances: np.ndarray, ids: np.ndarray, topk: int, metric: int) -> tuple[np.ndarray, np.ndarray]:
    """Best ``min(topk, width)`` columns of each row of one (distances, ids) pair, -1 padded."""
    distances = np.asarray(distances, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    if distances.shape != ids.shape or distances.ndim != 2:
        raise ValueError(f"distances {distances.shape} and ids {ids.shape} must be two equal 2-D shapes")
    nq, total = ids.shape
    w = min(int(topk), total)
    if w <= 0:
        return empty(nq, metric)
    asc = ascending(metric)
    # Sort key (smaller is better): real values capped at FLT_MAX, padding +inf beyond them.
    key = distances.copy() if asc else np.negative(distances)
    np.fmin(key, _FMAX, out=key)  # fmin also turns NaN into FLT_MAX: ranked last among real results
    key[ids < 0] = np.inf
    order = best_columns(key, w)
    out_d = np.take_along_axis(distances, order, axis=1)
    out_i = np.take_along_axis(ids, order, axis=1)
    pad = out_i < 0
    if pad.any():
        out_d = out_d.copy()
        out_d[pad] = pad_value(metric)
    return np.ascontiguousarray(out_d), np.ascontiguousarray(out_i)


def merge(
    parts: list[tuple[np.ndarray, np.ndarray]], topk: int, metric: int, nq: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Merge parts into width ``min(topk, sum w_i)``, best first per metric, -1 padded.

    ``nq`` is only needed to shape the result when ``parts`` is empty.
    """
    if not parts:
        return empty(nq or 0, metric)
    dlist = [_rows(d, np.float32) for d, _ in parts]
    ilist = [_rows(i, np.int64) for _, i in parts]
    rows = {a.shape[0] for a in dlist + ilist}
    if len(rows) != 1:
        raise ValueError(f"parts disagree on the number of queries: {sorted(rows)}")
    return select(np.concatenate(dlist, axis=1), np.concatenate(ilist, axis=1), topk, metric)


def _rows(a: np.ndarray, dtype: type) -> np.ndarray:
    """One part as a 2-D (nq, w) array; a 1-D part is a single query."""
    arr = np.asarray(a, dtype=dtype)
    return arr[None, :] if arr.ndim == 1 else arr
