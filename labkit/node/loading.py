"""Segments in memory: loading TableFiles rows from the storage path into the LRU cache.

One loader per file at a time (a query arriving while the preload poller reads a file waits for it),
retries while another JuiceFS client does not list a just-renamed file yet, and the segment id lists
kept for deletes and merges. Each load records where its time went (``LoadedSegment.load``):
metadata lag (row committed -> seen here), file read, index deserialize.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from labkit.milvus.enums import is_binary
from labkit.milvus.status import Code, MilvusError
from labkit.node import meta as m
from labkit.node import segments as seg
from labkit.node.cache import LoadedSegment, SegmentCache


class SegmentLoader:
    def __init__(self, storage: Path, cache: SegmentCache) -> None:
        self.storage = storage
        self.cache = cache
        self._uids: dict[tuple[str, str], np.ndarray] = {}  # (table_id, segment_id) -> ids
        self._loading: dict[int, threading.Event] = {}
        self._loading_lock = threading.Lock()

    def load(self, f: dict, coll: dict, seen: float | None = None, by: str = "query") -> LoadedSegment:
        """The file ``f`` (a TableFiles row) of collection row ``coll``, from the cache or the storage.

        ``seen``: wall-clock time the row was first seen in the meta (default: now); ``by`` says who
        asked (``query`` or ``preload``); both only feed the load's timing record.
        """
        key = int(f["id"])
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        with self._loading_lock:
            ev = self._loading.get(key)
            mine = ev is None
            if mine:
                ev = self._loading[key] = threading.Event()
        if not mine:
            ev.wait(60)
            cached = self.cache.peek(key)
            if cached is not None:
                return cached
        try:
            return self._read(f, coll, time.time() if seen is None else seen, by)
        finally:
            if mine:
                with self._loading_lock:
                    self._loading.pop(key, None)
                ev.set()

    def _read(self, f: dict, coll: dict, seen: float, by: str) -> LoadedSegment:
        d = seg.segment_dir(self.storage, f["table_id"], f["segment_id"])
        binary = is_binary(coll["metric_type"])
        dim = int(coll["dimension"])
        last: Exception | None = None
        start = time.time()
        for attempt in range(4):  # another JuiceFS client may not list a just-renamed file yet
            try:
                t0 = time.perf_counter()
                # the small id and delete lists are read while the main file streams in
                side = seg.submit_read(lambda: (seg.read_ids(d, f["segment_id"]), seg.read_deleted(d)))
                index, vectors, decode_s = None, None, 0.0
                if f["file_type"] == m.INDEX:
                    from labkit.node.engine import SegmentIndex

                    _, blob, _ = seg.read_index(d, f["file_id"])
                    t1 = time.perf_counter()
                    index = SegmentIndex.from_bytes(blob)  # faiss reads it in place: the buffer is kept
                    decode_s = time.perf_counter() - t1
                    nbytes = len(blob)
                    del blob
                else:
                    vectors = seg.read_vectors(d, f["segment_id"], dim // 8 if binary else dim, binary)
                    nbytes = vectors.nbytes
                ids, deleted = side.result()
                total_s = time.perf_counter() - t0
                break
            except (FileNotFoundError, ValueError, MilvusError) as exc:
                # MilvusError: SegmentIndex.from_bytes saw a truncated index (not yet complete here)
                last = exc
                time.sleep(0.05 * (attempt + 1))
        else:
            raise MilvusError(Code.FILE_NOT_FOUND,
                              f"Segment file {f['id']} of {coll['table_id']} cannot be read: {last}")
        loaded = LoadedSegment(
            file_row_id=int(f["id"]), table_id=f["table_id"], segment_id=f["segment_id"],
            file_id=f["file_id"], file_type=int(f["file_type"]), updated_time=int(f["updated_time"]),
            metric=int(coll["metric_type"]), dim=dim, ids=ids, vectors=vectors, index=index, seg_dir=d,
        )
        loaded.set_deleted(deleted)
        loaded.load = load_record(f, by, seen, start, total_s - decode_s, decode_s, nbytes, attempt)
        self.cache.put(loaded)
        return loaded

    def cache_written(self, coll: dict, row_id: int, table_id: str, file_id: str, ftype: int,
                      ids: np.ndarray, vectors: np.ndarray, deleted: np.ndarray | None) -> None:
        """The writer already holds a new raw segment's arrays: cache them instead of re-reading."""
        self._uids[(table_id, file_id)] = ids
        loaded = LoadedSegment(
            file_row_id=row_id, table_id=table_id, segment_id=file_id, file_id=file_id, file_type=ftype,
            updated_time=m.now_us(), metric=int(coll["metric_type"]), dim=int(coll["dimension"]), ids=ids,
            vectors=vectors, seg_dir=seg.segment_dir(self.storage, table_id, file_id),
        )
        if deleted is not None and deleted.size:
            loaded.set_deleted(deleted)
        self.cache.put(loaded)

    def remember_ids(self, table_id: str, segment_id: str, ids: np.ndarray) -> None:
        """A segment just written: keep its ids (deletes look them up) without caching its vectors."""
        self._uids[(table_id, segment_id)] = ids

    def uids(self, table_id: str, segment_id: str) -> np.ndarray:
        """The segment's user ids (all rows, deleted ones too), read once and kept."""
        key = (table_id, segment_id)
        uids = self._uids.get(key)
        if uids is None:
            uids = seg.read_ids(seg.segment_dir(self.storage, table_id, segment_id), segment_id)
            self._uids[key] = uids
        return uids

    def forget(self, table_id: str, segment_id: str) -> None:
        """The segment's files are removed: drop its kept ids."""
        self._uids.pop((table_id, segment_id), None)


def load_record(f: dict, by: str, seen: float, start: float, read_s: float, decode_s: float,
                nbytes: int, retries: int) -> dict[str, Any]:
    """Where a load's time went, in seconds. ``meta_lag_s``: the row's updated_time (the commit that
    made it searchable) to the moment this node saw it; ``queue_s``: seen to the read starting."""
    committed = int(f.get("updated_time") or 0) / 1e6
    return {"by": by, "meta_lag_s": round(max(0.0, seen - committed), 5) if committed else None,
            "queue_s": round(max(0.0, start - seen), 5), "read_s": round(read_s, 5),
            "decode_s": round(decode_s, 5), "bytes": int(nbytes), "retries": retries,
            "read_mib_s": round(nbytes / 2**20 / read_s, 1) if read_s > 0 else None,
            "committed_at": committed or None, "loaded_at": round(time.time(), 6)}
