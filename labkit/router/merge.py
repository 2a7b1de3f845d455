"""Merging per-node top-k replies into one answer (Mishards's reduce, vectorised).

Each reply is flat row-major: ``row_num`` rows of ``len(ids) // row_num`` (id, distance) pairs,
padded with id -1. Rows are merged per query, best first: ascending distance for L2 and the
binary metrics, descending for IP; padding always sorts last. The width of the answer is
min(topk, sum of reply widths), which equals the single-node rule min(topk, rows searched).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

IP = 2  # MetricType.IP; every other metric ranks small distances first
_FMAX = float(np.finfo(np.float32).max)


class MergeError(ValueError):
    """A reply that cannot be read as nq rows (mismatched lengths or row count)."""


def split_reply(row_num: int, ids: Sequence[int], distances: Sequence[float], nq: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(distances, ids)`` arrays of shape (nq, width), or None for an empty reply (row_num 0)."""
    if row_num == 0 or len(ids) == 0:
        return None
    if row_num != nq:
        raise MergeError(f"a node answered {row_num} rows for {nq} queries")
    if len(ids) != len(distances) or len(ids) % row_num:
        raise MergeError(f"a node answered {len(ids)} ids and {len(distances)} distances for {row_num} rows")
    width = len(ids) // row_num
    i = np.asarray(ids, dtype=np.int64).reshape(nq, width)
    d = np.asarray(distances, dtype=np.float32).reshape(nq, width)
    return d, i


def merge(parts: Sequence[tuple[np.ndarray, np.ndarray]], topk: int, metric: int) -> tuple[np.ndarray, np.ndarray]:
    """Merge (distances, ids) parts of equal row count into the best ``topk`` per row."""
    if not parts:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.int64)
    if len(parts) == 1:
        d, i = parts[0]
        return d[:, :topk], i[:, :topk]
    d = np.concatenate([p[0] for p in parts], axis=1)
    i = np.concatenate([p[1] for p in parts], axis=1)
    # real distances clipped into the finite range so padding (inf) sorts after even a real inf
    key = np.clip(d.astype(np.float64), -_FMAX, _FMAX)
    if metric == IP:
        key = -key
    key[i < 0] = np.inf
    width = min(topk, d.shape[1])
    order = np.argsort(key, axis=1, kind="stable")[:, :width]
    return np.take_along_axis(d, order, axis=1), np.take_along_axis(i, order, axis=1)
