"""TopKQueryResult, the search reply of Milvus 1.1, encoded and decoded in one place.

The reply is flat row-major: ``row_num`` rows of ``len(ids) // row_num`` (id, distance) pairs,
padded with id -1. ``row_num`` is 0 when no file was searched anywhere. Padding carries +-inf inside
labkit and +-FLT_MAX on the wire, as faiss (and so 1.1) writes it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from labkit.milvus.proto import messages

_pb, _status_pb, _ = messages()
_FMAX = float(np.finfo(np.float32).max)


class ReplyError(ValueError):
    """A reply that cannot be read as nq rows (mismatched lengths or row count)."""


def topk_result(distances: np.ndarray, ids: np.ndarray):
    """The TopKQueryResult message (status OK) for ``(nq, k)`` distances and ids.

    ``row_num`` is 0 only when no file was searched (width 0): files searched with every row
    deleted give nq rows of -1 padding, which clients show as nq empty rows (1.1's SearchRequest;
    Mishards's merge keeps them too).
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return _pb.TopKQueryResult(status=_status_pb.Status(), row_num=0)
    dist = np.asarray(distances, dtype=np.float32)
    finite = dist if np.isfinite(dist).all() else np.nan_to_num(dist, nan=_FMAX, posinf=_FMAX, neginf=-_FMAX)
    res = _pb.TopKQueryResult(status=_status_pb.Status(), row_num=int(ids.shape[0]))
    res.ids.extend(ids.ravel().tolist())
    res.distances.extend(finite.ravel().tolist())
    return res


def topk_bytes(distances: np.ndarray, ids: np.ndarray) -> bytes:
    """``topk_result`` serialized."""
    return topk_result(distances, ids).SerializeToString()


def topk_arrays(row_num: int, ids: Sequence[int], distances: Sequence[float],
                nq: int) -> tuple[np.ndarray, np.ndarray] | None:
    """``(distances, ids)`` of shape (nq, width) from a reply's fields; None for an empty reply."""
    if row_num == 0 or len(ids) == 0:
        return None
    if row_num != nq:
        raise ReplyError(f"a node answered {row_num} rows for {nq} queries")
    if len(ids) != len(distances) or len(ids) % row_num:
        raise ReplyError(f"a node answered {len(ids)} ids and {len(distances)} distances for {row_num} rows")
    width = len(ids) // row_num
    i = np.asarray(ids, dtype=np.int64).reshape(nq, width)
    d = np.asarray(distances, dtype=np.float32).reshape(nq, width)
    return d, i
