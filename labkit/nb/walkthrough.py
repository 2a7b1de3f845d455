"""The walk-through's data and checks: vectors, brute-force ground truth, collection set-up
through pymilvus 1.1.2, and the cross-mount write/read of notebook 02."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labkit.errors import LabError


def vectors(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """``n`` float32 vectors of ``dim`` uniform in [0, 1), reproducible by ``seed``."""
    return np.random.default_rng(seed).random((n, dim), dtype=np.float32)


def brute_force(data: np.ndarray, ids: Sequence[int], queries: np.ndarray, topk: int,
                metric: str = "L2") -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k (ids, distances) per query; L2 is squared, as Milvus reports it."""
    data = np.asarray(data, dtype=np.float32)
    queries = np.asarray(queries, dtype=np.float32)
    if metric == "L2":
        dist = (queries**2).sum(1)[:, None] - 2 * queries @ data.T + (data**2).sum(1)[None, :]
        order = np.argsort(dist, axis=1, kind="stable")[:, :topk]
    elif metric == "IP":
        dist = queries @ data.T
        order = np.argsort(-dist, axis=1, kind="stable")[:, :topk]
    else:
        raise LabError(f"brute_force supports L2 and IP, not {metric!r}.")
    id_arr = np.asarray(ids, dtype=np.int64)
    return id_arr[order], np.take_along_axis(dist, order, axis=1)


def result_ids(results: Any) -> list[list[int]]:
    """pymilvus TopKQueryResult -> list of id lists (one per query)."""
    return [list(row) for row in results.id_array]


def recall(found: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    """Mean fraction of each query's true top-k ids found."""
    if len(found) != len(truth):
        return 0.0
    hits = [len(set(f) & set(t.tolist())) / max(1, len(t)) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits)) if hits else 0.0


def check_status(status: Any, what: str) -> None:
    """Raise a LabError naming ``what`` when a pymilvus Status is not OK."""
    if not status.OK():
        raise LabError(f"{what} failed: Status(code={status.code}, message={status.message!r}).")


def drop_if_exists(client: Any, name: str) -> bool:
    """Drop collection ``name`` if it exists (and wait until it is gone); True if it existed."""
    status, exists = client.has_collection(name)
    check_status(status, f"has_collection({name!r})")
    if exists:
        check_status(client.drop_collection(name), f"drop_collection({name!r})")
        _wait(lambda: not client.has_collection(name)[1], f"drop of {name}")
    return bool(exists)


def fresh_collection(client: Any, name: str, dim: int, index_file_size: int = 1024,
                     metric: str = "L2") -> None:
    """Drop ``name`` if it exists, then create it: each notebook run starts from the same state."""
    from milvus import MetricType

    drop_if_exists(client, name)
    param = {"collection_name": name, "dimension": dim, "index_file_size": index_file_size,
             "metric_type": getattr(MetricType, metric)}
    check_status(client.create_collection(param), f"create_collection({name!r})")


def insert_batches(client: Any, name: str, data: np.ndarray, batches: int = 1, start_id: int = 0,
                   flush_each: bool = True) -> list[int]:
    """Insert ``data`` in ``batches`` (explicit ids start_id..), flushing after each batch."""
    from labkit.nb.progress import progress

    ids = list(range(start_id, start_id + len(data)))
    chunks = np.array_split(np.arange(len(data)), max(1, batches))
    for chunk in progress(chunks, desc=f"insert into {name}"):
        rows = data[chunk].tolist()
        status, _ = client.insert(name, rows, ids=[ids[i] for i in chunk])
        check_status(status, f"insert into {name!r}")
        if flush_each:
            check_status(client.flush([name]), f"flush {name!r}")
    return ids


def _wait(check: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise LabError(f"Timed out waiting for {what}.")


def cross_mount_roundtrip(writer_dir: str | os.PathLike[str], reader_dir: str | os.PathLike[str],
                          size_mb: int = 8, name: str = "hello-from-rw.bin") -> dict[str, Any]:
    """Write ``size_mb`` of random bytes through one mount, close it, read it through another.

    JuiceFS promises close-to-open consistency: once the writer closes the file, any later
    open on another client sees the new content. Returns timings and whether hashes match.
    """
    payload = os.urandom(size_mb << 20)
    src, dst = Path(writer_dir) / name, Path(reader_dir) / name
    t0 = time.perf_counter()
    with open(src, "wb") as fh:
        fh.write(payload)
    write_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    with open(dst, "rb") as fh:
        seen = fh.read()
    read_s = time.perf_counter() - t1
    return {
        "bytes": len(payload), "write_close_s": round(write_s, 4), "open_read_s": round(read_s, 4),
        "write_MiB_s": round(size_mb / max(write_s, 1e-9), 1),
        "read_MiB_s": round(size_mb / max(read_s, 1e-9), 1),
        "same_content": hashlib.sha256(seen).digest() == hashlib.sha256(payload).digest(),
        "writer_path": str(src), "reader_path": str(dst),
    }


def wait_for(fetch: Any, ready: Any, timeout: float = 15.0, interval: float = 0.3) -> Any:
    """Call ``fetch()`` until ``ready(value)``; return the value (LabError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if ready(value):
            return value
        if time.monotonic() > deadline:
            raise LabError(f"The cluster did not reach the expected state within {timeout:.0f} s.")
        time.sleep(interval)


def retry_search(client: Any, name: str, topk: int, queries: np.ndarray, attempts: int = 5,
                 params: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """``client.search`` retried while a just-started node is still joining (status not OK)."""
    for i in range(attempts):
        status, results = client.search(name, topk, np.asarray(queries).tolist(), params=params or {})
        if status.OK() or i == attempts - 1:
            return status, results
        time.sleep(1.0)
    raise AssertionError("unreachable")


def unmerged_rows(dim: int, files: int, at_least: int = 0, index_file_size_mb: int = 1) -> int:
    """Rows to insert in ``files`` flushes so each segment reaches ``index_file_size``.

    The rw node merges RAW segments smaller than index_file_size in the background; segments at
    least that big are left alone, so the files a notebook shows stay put while it looks at them.
    """
    per_file = -(-(index_file_size_mb << 20) // (4 * dim)) + 8  # float32 rows per MiB, plus a margin
    return max(at_least, files * per_file)
