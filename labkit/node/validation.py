"""Request checks of the gRPC layer, with Milvus 1.1's codes and (close to) its messages.

The rules follow ``core/src/utils/ValidationUtil.cpp`` of Milvus 1.1; every function raises
``MilvusError`` so the servicer can turn it into a ``Status``. Index and search parameters are
checked by ``labkit.node.engine`` (it knows the index types).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable

import numpy as np

from labkit.milvus.defaults import NAME_LIMIT
from labkit.milvus.enums import is_binary
from labkit.milvus.status import Code, MilvusError

DIM_LIMIT = 32768
INDEX_FILE_SIZE_LIMIT = 4096  # MB
TOPK_LIMIT = 16384
MAX_INSERT_BYTES = 256 << 20  # MAX_INSERT_DATA_SIZE
GET_BY_ID_LIMIT = 1000
METRIC_MAX = 7


def _check_name(name: str, kind: str) -> None:
    if not name:
        raise MilvusError(Code.ILLEGAL_COLLECTION_NAME, f"{kind.capitalize()} name should not be empty.")
    bad = f"Invalid {kind} name: {name}. "
    if len(name) > NAME_LIMIT:
        raise MilvusError(Code.ILLEGAL_COLLECTION_NAME,
                          bad + f"The length of a {kind} name must be less than 255 characters.")
    first = name[0]
    if first != "_" and not (first.isascii() and first.isalpha()):
        raise MilvusError(Code.ILLEGAL_COLLECTION_NAME,
                          bad + f"The first character of a {kind} name must be an underscore or letter.")
    for ch in name[1:]:
        if ch != "_" and not (ch.isascii() and ch.isalnum()):
            raise MilvusError(Code.ILLEGAL_COLLECTION_NAME,
                              bad + f"{kind.capitalize()} name can only contain numbers, letters, "
                              "and underscores.")


def collection_name(name: str) -> str:
    """Empty, >255 chars, first char not letter/_, or others not alnum/_ -> 9."""
    _check_name(name, "collection")
    return name


def dimension(dim: int, metric: int) -> int:
    if dim <= 0 or dim > DIM_LIMIT:
        raise MilvusError(Code.ILLEGAL_DIMENSION,
                          f"Invalid collection dimension: {dim}. The collection dimension must be within "
                          f"the range of 1 ~ {DIM_LIMIT}.")
    if is_binary(metric) and dim % 8:
        raise MilvusError(Code.ILLEGAL_DIMENSION,
                          f"Invalid collection dimension: {dim}. "
                          "The collection dimension must be a multiple of 8")
    return dim


def index_file_size(size_mb: int) -> int:
    if size_mb <= 0 or size_mb > INDEX_FILE_SIZE_LIMIT:
        raise MilvusError(Code.ILLEGAL_ARGUMENT,
                          f"Invalid index file size: {size_mb}. The index file size must be within the range "
                          f"of 1 ~ {INDEX_FILE_SIZE_LIMIT}.")
    return size_mb


def metric_type(metric: int) -> int:
    if metric <= 0 or metric > METRIC_MAX:
        raise MilvusError(Code.ILLEGAL_METRIC_TYPE,
                          f"Invalid index metric type: {metric}. "
                          "Make sure the metric type is in MetricType list.")
    return metric


def topk(k: int) -> int:
    if k <= 0 or k > TOPK_LIMIT:
        raise MilvusError(Code.ILLEGAL_TOPK,
                          f"Invalid topk: {k}. The topk must be within the range of 1 ~ {TOPK_LIMIT}.")
    return k


def json_params(pairs: Iterable, what: str = "extra_params") -> dict:
    """The dict of the ``KeyValuePair{key: "params"}`` entry (other keys ignored, as 1.1 did)."""
    for kv in pairs:
        if kv.key != "params":
            continue
        if not kv.value:
            return {}
        try:
            value = json.loads(kv.value)
        except ValueError:
            raise MilvusError(Code.ILLEGAL_ARGUMENT,
                              f"Invalid {what}: not a JSON object: {kv.value[:80]!r}") from None
        if not isinstance(value, dict):
            raise MilvusError(Code.ILLEGAL_ARGUMENT,
                              f"Invalid {what}: expected a JSON object, got {kv.value[:80]!r}")
        return value
    return {}


def vectors(data: np.ndarray, dim: int, metric: int) -> np.ndarray:
    """Check a decoded (n, width) batch against the collection.

    Error codes: empty -> 11, size -> 11, dim -> 7, NaN/inf -> 11.

    ``width`` is ``dim`` for float vectors and ``dim // 8`` bytes for binary ones.
    """
    if data.size == 0 or data.shape[0] == 0:
        raise MilvusError(Code.ILLEGAL_ROWRECORD,
                          "The vector array is empty. Make sure you have entered vector records.")
    if data.nbytes > MAX_INSERT_BYTES:
        raise MilvusError(Code.ILLEGAL_ROWRECORD,
                          f"The amount of data inserted each time cannot exceed {MAX_INSERT_BYTES >> 20} MB "
                          f"(this request carries {data.nbytes / (1 << 20):.1f} MB).")
    binary = is_binary(metric)
    if binary != (data.dtype == np.uint8):
        kind = "binary" if binary else "float"
        raise MilvusError(Code.ILLEGAL_ROWRECORD,
                          f"The collection holds {kind} vectors; send them as "
                          f"{'binary_data (bytes)' if binary else 'float_data (lists of floats)'}.")
    width = dim // 8 if binary else dim
    if data.shape[1] != width:
        got = data.shape[1] * 8 if binary else data.shape[1]
        raise MilvusError(Code.ILLEGAL_DIMENSION,
                          f"The vector dimension must be equal to the collection dimension "
                          f"(collection: {dim}, vectors: {got}).")
    if not binary and not _all_finite(data):
        bad = int(np.flatnonzero(~np.isfinite(data).all(axis=1))[0])
        raise MilvusError(Code.ILLEGAL_ROWRECORD,
                          f"Vector {bad} contains NaN or infinity; every component must be a finite float.")
    return data


def _all_finite(data: np.ndarray) -> bool:
    # sum is one pass and vectorised; inf - inf or NaN propagate, a finite sum proves all finite
    # unless it overflows, in which case fall back to the exact elementwise test
    total = float(np.sum(data, dtype=np.float64))
    return math.isfinite(total) or bool(np.isfinite(data).all())


def ids(id_array: np.ndarray, count: int) -> np.ndarray | None:
    """User ids: none (auto ids) or exactly one per vector, non-negative -> 12 otherwise."""
    if id_array.size == 0:
        return None
    if id_array.size != count:
        raise MilvusError(Code.ILLEGAL_VECTOR_ID,
                          f"The size of vector ID array must be equal to the size of the vector "
                          f"(ids: {id_array.size}, vectors: {count}).")
    if (id_array < 0).any():
        raise MilvusError(Code.ILLEGAL_VECTOR_ID, "Vector ids must be non-negative 64-bit integers.")
    return id_array


def entity_ids(id_array: np.ndarray) -> np.ndarray:
    if id_array.size == 0:
        raise MilvusError(Code.ILLEGAL_ARGUMENT, "No vector id specified.")
    if id_array.size > GET_BY_ID_LIMIT:
        raise MilvusError(Code.ILLEGAL_ARGUMENT,
                          f"Input id array size cannot exceed: {GET_BY_ID_LIMIT} (got {id_array.size}).")
    return id_array


def search_params(index_type: int, k: int, params: dict | Iterable) -> tuple[int, dict]:
    """The one check of a search's topk and parameters, against the collection's index type.

    topk range (-> 10), then ``params``: a dict, or a request's ``extra_params`` pairs whose JSON is
    read first (-> 5), then the index type's own parameters (``engine.check_search_params`` -> 5).
    Returns ``(topk, params)``.
    """
    from labkit.node import engine

    k = topk(k)
    if not isinstance(params, dict):
        params = json_params(params, "search params")
    engine.check_search_params(int(index_type), params, k)
    return k, params


def index_params(index_type: int, metric: int, dim: int, params: dict) -> dict:
    """The one check of CreateIndex's parameters for the collection (``engine.check_index_params``)."""
    from labkit.node import engine

    engine.check_index_params(int(index_type), int(metric), int(dim), params)
    return params
