"""Loaded segments and the byte-bounded LRU cache that holds them (``cache.cache_size``).

A loaded segment keeps its vectors as one contiguous numpy array (raw files) or the engine's
index (INDEX files), its int64 ids, and the deleted-rows mask. Cache keys are TableFiles.id: a
file's data never changes in place (merges and index builds make new rows), only its
``deleted_docs``, which the rw node patches in memory and a ro node re-reads on ``reload_segments``
(so deletes reach a ro node's cached segments only then, as in Milvus 1.1).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labkit.node import segments as seg


@dataclass
class LoadedSegment:
    file_row_id: int  # TableFiles.id
    table_id: str
    segment_id: str
    file_id: str
    file_type: int
    updated_time: int
    metric: int
    dim: int
    ids: np.ndarray  # int64, row order
    vectors: np.ndarray | None = None  # raw files only
    index: Any = None  # engine.SegmentIndex for INDEX files
    deleted: np.ndarray | None = None  # bool mask (n,) or None
    seg_dir: Path = field(default_factory=Path)
    _sorted: tuple[np.ndarray, np.ndarray] | None = None
    load: dict | None = None  # where loading it took time (``loading.load_record``); None if written here

    @property
    def rows(self) -> int:
        return int(self.ids.shape[0])

    @property
    def nbytes(self) -> int:
        # ids, the lazily built sorted-ids lookup (2 x int64) and a deleted mask, counted up front
        # so the cache's accounting never changes while an entry is cached
        n = self.ids.nbytes * 3 + self.rows
        if self.vectors is not None:
            n += self.vectors.nbytes
        if self.index is not None:
            n += int(getattr(self.index, "nbytes", 0))
        return n

    @property
    def live_rows(self) -> int:
        return self.rows - (0 if self.deleted is None else int(self.deleted.sum()))

    def set_deleted(self, offsets: np.ndarray) -> None:
        self.deleted = seg.deleted_mask(offsets, self.rows)

    def search(self, queries: np.ndarray, topk: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
        """(distances, global ids) of this segment, -1 padded."""
        from labkit.node import engine

        if self.index is not None:
            dist, off = self.index.search(queries, topk, params, self.deleted)
        else:
            dist, off = engine.brute_force(self.vectors, queries, topk, self.metric, self.deleted)
        off = np.asarray(off, dtype=np.int64)
        out = np.where(off >= 0, self.ids[np.clip(off, 0, max(self.rows - 1, 0))], -1) if self.rows else off
        return dist, out

    def offsets_of(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions in ``wanted``, row offsets) of the ids this segment holds and has not deleted."""
        if self._sorted is None:
            order = np.argsort(self.ids, kind="stable")
            self._sorted = (self.ids[order], order)
        sids, order = self._sorted
        pos = np.searchsorted(sids, wanted)
        pos = np.clip(pos, 0, max(len(sids) - 1, 0))
        hit = (sids[pos] == wanted) if len(sids) else np.zeros(len(wanted), dtype=bool)
        where = np.nonzero(hit)[0]
        offs = order[pos[where]]
        if self.deleted is not None and len(offs):
            keep = ~self.deleted[offs]
            where, offs = where[keep], offs[keep]
        return where, offs

    def vectors_at(self, offsets: np.ndarray, binary: bool) -> np.ndarray:
        if self.vectors is not None:
            return self.vectors[offsets]
        width = self.dim // 8 if binary else self.dim
        return seg.read_vector_rows(self.seg_dir, self.segment_id, width, binary, offsets)

    def describe(self) -> dict:
        return {
            "file_row_id": self.file_row_id,
            "table_id": self.table_id,
            "segment_id": self.segment_id,
            "file_id": self.file_id,
            "file_type": self.file_type,
            "updated_time": self.updated_time,
            "rows": self.rows,
            "bytes": self.nbytes,
            "load": self.load,
        }


class SegmentCache:
    """LRU of LoadedSegment by TableFiles.id, bounded by ``capacity`` bytes."""

    def __init__(self, capacity: int) -> None:
        self.capacity = int(capacity)
        self._items: OrderedDict[int, LoadedSegment] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: int) -> LoadedSegment | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return item

    def peek(self, key: int) -> LoadedSegment | None:
        with self._lock:
            return self._items.get(key)

    def put(self, item: LoadedSegment) -> bool:
        """Insert, evicting least recently used entries; False if it can never fit (not cached)."""
        size = item.nbytes
        with self._lock:
            old = self._items.pop(item.file_row_id, None)
            if old is not None:
                self._bytes -= old.nbytes
            if size > self.capacity:
                return False
            while self._items and self._bytes + size > self.capacity:
                _, victim = self._items.popitem(last=False)
                self._bytes -= victim.nbytes
            self._items[item.file_row_id] = item
            self._bytes += size
            return True

    def resize(self, capacity: int) -> None:
        """New capacity in bytes, effective at once: least recently used entries go until the rest fit."""
        with self._lock:
            self.capacity = int(capacity)
            while self._items and self._bytes > self.capacity:
                _, victim = self._items.popitem(last=False)
                self._bytes -= victim.nbytes

    def evict(self, key: int) -> None:
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes

    def evict_where(self, pred) -> None:  # noqa: ANN001 - a callable on LoadedSegment
        with self._lock:
            for key in [k for k, v in self._items.items() if pred(v)]:
                self._bytes -= self._items.pop(key).nbytes

    def items(self) -> list[LoadedSegment]:
        with self._lock:
            return list(self._items.values())

    @property
    def bytes(self) -> int:
        return self._bytes

    def info(self) -> dict:
        with self._lock:
            return {
                "bytes": self._bytes,
                "capacity": self.capacity,
                "hits": self.hits,
                "misses": self.misses,
                "segments": [v.describe() for v in self._items.values()],
            }
