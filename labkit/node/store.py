"""The node's data layer: Milvus 1.1 metadata + segments + WAL + insert buffer + segment cache.

Roles. ``rw`` (also every non-cluster node): takes the fcntl locks, logs inserts and deletes to the
WAL before answering, buffers rows, flushes segments, and runs the background work (auto flush,
merge, index build, cleanup). ``ro``: none of that; every search re-reads TableFiles from the meta
and loads files it lacks from the shared storage path into the LRU cache. With ``preload`` on, a
poller loads newly flushed segments before a query asks for them.

Visibility rule (all roles): only file types RAW/TO_INDEX/INDEX are searched or counted, and a
TableFiles row becomes one of those only after its files are complete on disk.

Parts: ``Store`` (this module) holds collections, partitions, writes and the search; it composes
``SegmentLoader`` (``loading``: segments into the cache), ``SnapshotReader`` (``search_snapshot``:
what a search reads from the meta) and ``Maintenance`` (``store_maintain``: merges, index builds,
cleanup, background threads, ro preloading), which reaches the store through ``StoreCore``.
A search: ``search_snapshot(name)`` (one meta read), the request checked against it by
``validation.search_params``, then ``search(..., snapshot=...)`` -> ``LoadedSegment.search`` (engine).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np

from labkit.milvus import tags as partition_tags
from labkit.milvus import topk as topk_merge
from labkit.milvus.defaults import DEFAULT_TAG
from labkit.milvus.enums import INDEX_NAMES, is_binary
from labkit.milvus.fingerprint import Fingerprint
from labkit.milvus.status import Code, MilvusError
from labkit.node import meta as m
from labkit.node import path_lock
from labkit.node import segments as seg
from labkit.node import validation as check
from labkit.node.cache import SegmentCache
from labkit.node.loading import SegmentLoader
from labkit.node.meta_watch import MetaWatchers
from labkit.node.search_snapshot import SearchSnapshot, SnapshotReader
from labkit.node.settings import StoreSettings
from labkit.node.store_buffer import CollectionBuffer
from labkit.node.store_maintain import FLAT, Maintenance, file_type_for
from labkit.node.wal import DELETE, INSERT, Wal

log = logging.getLogger("labkit.node.store")

MAX_PARTITIONS = 4096


# searches again on a fresh file list when a listed file vanished meanwhile (see ``Store.search``)
VANISHED_RETRIES = 2


class Store:
    """One node's collections, writes and searches over the Milvus 1.1 meta and segment files."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.role = "ro" if settings.cluster and settings.role == "ro" else "rw"
        self.storage = Path(settings.storage_path)
        self.cache = SegmentCache(settings.cache_size)
        self.segments = SegmentLoader(self.storage, self.cache)
        self.maintenance = Maintenance(self)
        self._meta_conn: m.Meta | None = None
        self._snapshots: SnapshotReader | None = None
        self.wal: Wal | None = None
        self.write_lock = threading.RLock()  # write path: buffers, flush, delete, meta commits
        self._buffers: dict[str, CollectionBuffer] = {}
        self._lock_files: list[int] = []
        self._started = False
        self.watchers = MetaWatchers()  # routers told of file-list changes (rw only)

    # ================================================================ lifecycle
    def start(self) -> None:
        meta = self._meta_conn = m.Meta(self.settings.meta_uri, self.storage)
        self._snapshots = SnapshotReader(meta, self.collection)
        if self.role == "rw":
            self._take_locks()
            meta.create_schema()
            meta.on_change = self.watchers.changed
            seg.tables_dir(self.storage).mkdir(parents=True, exist_ok=True)
            self.maintenance.clean_shadow_files()
            if self.settings.wal_enable:
                self.wal = Wal(self.settings.wal_path, self.settings.wal_buffer_size,
                               ignore_errors=self.settings.wal_recovery_error_ignore)
                self._replay()
        else:
            meta.create_schema()
        self.maintenance.start(self.role)
        self._started = True
        self.maintenance.preload_configured()

    @property
    def maintenance_interval(self) -> float:
        """Seconds between background merge/index/cleanup passes (tests change it)."""
        return self.maintenance.interval

    @maintenance_interval.setter
    def maintenance_interval(self, seconds: float) -> None:
        self.maintenance.interval = seconds

    def watch_meta(self, host: str, port: int, lease_s: float) -> dict:
        """A router's lease on change messages (``labkit.node.meta_watch``): the epoch and version now."""
        return self.watchers.register(host, port, lease_s)

    def unwatch_meta(self, host: str, port: int) -> dict:
        self.watchers.unregister(host, port)
        return {"epoch": self.watchers.epoch}

    def meta_watch_stats(self) -> dict:
        return self.watchers.stats()

    def meta_reachable(self) -> bool:
        """Whether the metadata database answers right now (False before ``start``)."""
        return self.meta is not None and self.meta.reachable()

    def close(self) -> None:
        self.maintenance.stop()
        self.watchers.close()
        if self.wal is not None:
            self.wal.close()
        for fd in self._lock_files:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._lock_files.clear()
        if self._meta_conn is not None:
            self._meta_conn.close()
        self._started = False

    def _take_locks(self) -> None:
        for d in (self.storage, Path(self.settings.wal_path)):
            d.mkdir(parents=True, exist_ok=True)
            try:
                self._lock_files.append(path_lock.take(d))
            except MilvusError:
                self.close()
                raise

    @property
    def meta(self) -> m.Meta:
        if self._meta_conn is None:
            raise MilvusError(Code.UNEXPECTED_ERROR, "the store is not started")
        return self._meta_conn

    def writable(self) -> None:
        """Raises on a ro node: it writes nothing."""
        if self.role != "rw":
            raise MilvusError(Code.UNEXPECTED_ERROR, "this node is read-only (cluster.role: ro)")

    # ================================================================ collections / partitions
    def collection(self, name: str) -> dict:
        """The collection's Tables row; COLLECTION_NOT_EXISTS (4) if there is none."""
        row = self.meta.table(name) if name else None
        if row is None or row["owner_table"]:
            raise MilvusError(
                Code.COLLECTION_NOT_EXISTS,
                f"Collection {name} does not exist. Use milvus.has_collection to verify whether the "
                "collection exists. You also can check whether the collection name exists.",
            )
        return row

    def create_collection(self, name: str, dim: int, index_file_size_mb: int, metric: int) -> None:
        self.writable()
        with self.write_lock:
            self.meta.insert_table(
                table_id=name,
                dimension=int(dim),
                index_file_size=int(index_file_size_mb) << 20,
                metric_type=int(metric),
                engine_type=FLAT,
                index_params="{}",
                flush_lsn=self.wal.lsn if self.wal else 0,
            )
            (seg.tables_dir(self.storage) / name).mkdir(exist_ok=True)  # never into a bare mountpoint

    def has_collection(self, name: str) -> bool:
        row = self.meta.table(name) if name else None
        return row is not None and not row["owner_table"]

    def describe_collection(self, name: str) -> dict:
        row = self.collection(name)
        return {
            "name": name,
            "dim": int(row["dimension"]),
            "index_file_size_mb": int(row["index_file_size"]) >> 20,
            "metric": int(row["metric_type"]),
            "index_type": int(row["engine_type"]),
            "index_params": json.loads(row["index_params"] or "{}"),
        }

    def list_collections(self) -> list[str]:
        return [r["table_id"] for r in self.meta.collections()]

    def drop_collection(self, name: str) -> None:
        self.writable()
        with self.write_lock:
            self.collection(name)
            tables = [name, *[p["table_id"] for p in self.meta.partitions(name)]]
            self._retire_tables(tables)
            self._buffers.pop(name, None)

    def _retire_tables(self, tables: list[str]) -> None:
        """Drop Tables rows now; their files turn TO_DELETE and are removed by the cleanup later."""
        files = self.meta.files(tables, tuple(range(8)))
        self.meta.update_files([f["id"] for f in files], file_type=m.TO_DELETE)
        self.meta.delete_tables(tables)
        tset = set(tables)
        self.cache.evict_where(lambda s: s.table_id in tset)

    def create_partition(self, name: str, tag: str) -> None:
        self.writable()
        with self.write_lock:
            coll = self.collection(name)
            if tag == DEFAULT_TAG:
                raise MilvusError(Code.UNEXPECTED_ERROR, "'_default' is built-in partition tag")
            parts = self.meta.partitions(name)
            if any(p["partition_tag"] == tag for p in parts):
                raise MilvusError(Code.ILLEGAL_COLLECTION_NAME,
                                  f"Duplicate partition tag {tag} in collection {name}")
            if len(parts) + 1 >= MAX_PARTITIONS:
                raise MilvusError(Code.UNEXPECTED_ERROR,
                                  f"The number of partitions exceeds the upper limit ({MAX_PARTITIONS})")
            self.meta.insert_table(
                table_id=str(m.ids.take()),
                dimension=coll["dimension"],
                index_file_size=coll["index_file_size"],
                metric_type=coll["metric_type"],
                engine_type=coll["engine_type"],
                index_params=coll["index_params"],
                owner_table=name,
                partition_tag=tag,
                flush_lsn=self.wal.lsn if self.wal else 0,
            )

    def has_partition(self, name: str, tag: str) -> bool:
        self.collection(name)
        return tag == DEFAULT_TAG or any(p["partition_tag"] == tag for p in self.meta.partitions(name))

    def list_partitions(self, name: str) -> list[str]:
        self.collection(name)
        return [DEFAULT_TAG, *[p["partition_tag"] for p in self.meta.partitions(name)]]

    def drop_partition(self, name: str, tag: str) -> None:
        self.writable()
        with self.write_lock:
            self.collection(name)
            if tag == DEFAULT_TAG:
                raise MilvusError(Code.ILLEGAL_COLLECTION_NAME, "Default partition cannot be dropped.")
            part = self._partition_table(name, tag)
            self._retire_tables([part])
            buf = self._buffers.get(name)
            if buf is not None:
                buf.parts.pop(part, None)

    def _partition_table(self, name: str, tag: str) -> str:
        """table_id of the partition with exactly this tag ("" or _default: the collection)."""
        if not tag or tag == DEFAULT_TAG:
            return name
        for p in self.meta.partitions(name):
            if p["partition_tag"] == tag:
                return p["table_id"]
        raise MilvusError(Code.UNEXPECTED_ERROR, f"Partition {tag} does not exist in collection {name}")

    def _match_tables(self, name: str, tags: list[str] | None) -> list[str]:
        """table_ids of the partitions whose tag fully matches one of the regexes ([] = all)."""
        parts = [(DEFAULT_TAG, name),
                 *[(p["partition_tag"], p["table_id"]) for p in self.meta.partitions(name)]]
        return partition_tags.match(tags or [], name, parts)

    def tables(self, name: str) -> list[str]:
        """table_ids of the collection and its partitions."""
        return [name, *[p["table_id"] for p in self.meta.partitions(name)]]

    # ================================================================ indexes, compaction, background
    def describe_index(self, name: str) -> tuple[int, dict]:
        return self.maintenance.describe_index(name)

    def create_index(self, name: str, index_type: int, params: dict) -> None:
        self.maintenance.create_index(name, index_type, params)

    def drop_index(self, name: str) -> None:
        self.maintenance.drop_index(name)

    def compact(self, name: str, threshold: float = 0.1) -> None:
        self.maintenance.compact(name, threshold)

    def maintain(self) -> dict:
        """One pass of merge, index build and cleanup (what the background thread runs)."""
        return self.maintenance.maintain()

    def set_placement(self, me: str, nodes: list[str], ttl_s: float) -> dict:
        """ro + preload: the router's ring; preload only the files it routes to ``me`` (for ``ttl_s``)."""
        return self.maintenance.set_placement(me, nodes, ttl_s)

    def preload_new(self) -> int:
        """ro + preload: load searchable files not yet cached; returns how many were loaded."""
        return self.maintenance.preload_new()

    # ================================================================ counting / stats
    def count(self, name: str) -> int:
        self.collection(name)
        return sum(int(f["row_count"]) for f in self.meta.files(self.tables(name)))

    def stats(self, name: str) -> dict:
        self.collection(name)
        parts = [(DEFAULT_TAG, name),
                 *[(p["partition_tag"], p["table_id"]) for p in self.meta.partitions(name)]]
        files = self.meta.files([t for _, t in parts])
        by_table: dict[str, list[dict]] = defaultdict(list)
        for f in files:
            by_table[f["table_id"]].append(f)
        out, total = [], 0
        for tag, tid in parts:
            segs = [
                {
                    "name": f["segment_id"],
                    "row_count": int(f["row_count"]),
                    "index_name": (INDEX_NAMES.get(int(f["engine_type"]), "IDMAP")
                                   if f["file_type"] == m.INDEX else "IDMAP"),
                    "data_size": int(f["file_size"]),
                }
                for f in by_table[tid]
            ]
            rows = sum(s["row_count"] for s in segs)
            total += rows
            out.append({"tag": tag, "row_count": rows, "segments": segs})
        return {"row_count": total, "partitions": out}

    # ================================================================ insert / flush / delete
    def insert(self, name: str, tag: str, vectors: np.ndarray, ids: np.ndarray | None) -> np.ndarray:
        self.writable()
        with self.write_lock:
            coll = self.collection(name)
            table_id = self._partition_table(name, tag)
            binary = is_binary(coll["metric_type"])
            vectors = np.ascontiguousarray(vectors, dtype=np.uint8 if binary else np.float32)
            width = int(coll["dimension"]) // 8 if binary else int(coll["dimension"])
            if vectors.ndim != 2 or vectors.shape[1] != width:
                raise MilvusError(
                    Code.ILLEGAL_DIMENSION,
                    "The vector dimension must be equal to the collection dimension "
                    f"({coll['dimension']}).",
                )
            n = len(vectors)
            flag = int(coll["flag"])
            if ids is None:
                if flag & m.FLAG_USER_ID:
                    raise MilvusError(
                        Code.ILLEGAL_VECTOR_ID,
                        "Entities IDs are user-defined. "
                        "Please provide IDs for all entities of the collection.",
                    )
                first = m.ids.take(n)
                ids = np.arange(first, first + n, dtype=np.int64)
                want = flag | m.FLAG_AUTO_ID
            else:
                ids = np.ascontiguousarray(ids, dtype=np.int64)
                if len(ids) != n:
                    raise MilvusError(Code.ILLEGAL_VECTOR_ID,
                                      "The size of vector ID array must be equal to the size of the vector.")
                if flag & m.FLAG_AUTO_ID:
                    raise MilvusError(
                        Code.ILLEGAL_VECTOR_ID,
                        "Entities IDs are auto-generated. "
                        "All vectors of this collection must use auto-generated IDs.",
                    )
                want = flag | m.FLAG_USER_ID
            if want != flag:
                self.meta.update_table(name, flag=want)
            lsn = self.wal.append_insert(name, table_id, ids, vectors) if self.wal else 0
            self._buffers.setdefault(name, CollectionBuffer()).add(table_id, ids, vectors, lsn or 1)
            if sum(b.nbytes for b in self._buffers.values()) >= self.settings.insert_buffer_size:
                self._flush_locked(None)
            return ids

    def flush(self, names: list[str] | None = None) -> None:
        if self.role != "rw":
            return
        with self.write_lock:
            for n in names or []:
                self.collection(n)
            self._flush_locked(names)

    def flush_buffered(self) -> None:
        """Flush every collection with buffered rows; nothing (no meta write) when none are buffered."""
        with self.write_lock:
            if self._buffers:
                self._flush_locked(None)

    def _flush_locked(self, names: list[str] | None) -> None:
        lsn = self.wal.lsn if self.wal else 0
        for name in list(names if names is not None else self._buffers):
            buf = self._buffers.pop(name, None)
            if buf is None:
                continue
            coll = self.meta.table(name)
            if coll is None or coll["owner_table"]:
                continue  # dropped meanwhile
            live = {name, *[p["table_id"] for p in self.meta.partitions(name)]}
            for table_id, part in list(buf.parts.items()):
                if part.rows and table_id in live:
                    ids, vectors = part.take()
                    try:
                        self._write_segment(coll, table_id, ids, vectors, lsn, from_flush=True)
                    except BaseException:
                        self._buffers[name] = buf  # keep what is not written yet (it is in the WAL too)
                        raise
                del buf.parts[table_id]
            if self.wal:
                self.meta.update_table(name, flush_lsn=lsn)
        self._advance_wal()

    def _advance_wal(self) -> None:
        if self.wal is None:
            return
        pending = [b.first_lsn for b in self._buffers.values() if b.first_lsn]
        upto = (min(pending) - 1) if pending else self.wal.lsn
        self.meta.set_global_lsn(upto)
        self.wal.truncate(upto)

    def _write_segment(
        self, coll: dict, table_id: str, ids: np.ndarray, vectors: np.ndarray, lsn: int,
        from_flush: bool = False, file_type: int | None = None,
    ) -> int:
        """Write a new segment's files, then its TableFiles row; returns TableFiles.id."""
        file_id = str(m.ids.take())
        d = seg.segment_dir(self.storage, table_id, file_id)
        nbytes = seg.write_raw(d, file_id, vectors, ids)
        ftype = file_type if file_type is not None else file_type_for(coll, nbytes)
        row_id = self.meta.insert_file(
            table_id=table_id, segment_id=file_id, file_id=file_id, engine_type=int(coll["engine_type"]),
            file_type=ftype, file_size=nbytes, row_count=len(ids), flush_lsn=lsn,
        )
        if self.settings.cache_insert_data:  # cache.cache_insert_data: the new segment goes into the cache
            self.segments.cache_written(coll, row_id, table_id, file_id, ftype, ids, vectors, None)
        else:
            self.segments.remember_ids(table_id, file_id, ids)
        return row_id

    def delete(self, name: str, ids: np.ndarray, tag: str = "") -> None:
        self.writable()
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        with self.write_lock:
            self.collection(name)
            tables = [self._partition_table(name, tag)] if tag else self.tables(name)
            if self.wal:
                self.wal.append_delete(name, tag, ids)
            buf = self._buffers.get(name)
            if buf is not None:
                buf.drop_ids(ids, set(tables))
            self._delete_flushed(tables, ids)

    def _delete_flushed(self, tables: list[str], ids: np.ndarray) -> None:
        files = self.meta.files(tables, (m.RAW, m.TO_INDEX, m.INDEX, m.BACKUP))
        by_seg: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for f in files:
            by_seg[(f["table_id"], f["segment_id"])].append(f)
        for (table_id, segment_id), rows in by_seg.items():
            uids = self.segments.uids(table_id, segment_id)
            hit = np.nonzero(np.isin(uids, ids))[0].astype(np.int32)
            if hit.size == 0:
                continue
            d = seg.segment_dir(self.storage, table_id, segment_id)
            old = seg.read_deleted(d)
            new = np.union1d(old, hit).astype(np.int32)
            if new.size == old.size:
                continue
            seg.write_deleted(d, new)
            self.meta.update_files([r["id"] for r in rows], row_count=len(uids) - int(new.size))
            for s in self.cache.items():
                if s.table_id == table_id and s.segment_id == segment_id:
                    s.set_deleted(new)

    # ================================================================ WAL replay
    def _replay(self) -> None:
        assert self.wal is not None
        flush_lsn: dict[str, int] = {}
        for c in self.meta.collections():
            flush_lsn[c["table_id"]] = int(c["flush_lsn"])
        # A flush writes one file per partition, then the collection's flush_lsn: if it crashed in
        # between, the files already written carry the LSN they cover (TableFiles.flush_lsn).
        part_lsn: dict[str, int] = defaultdict(int)
        for f in self.meta.files_of_type(tuple(range(8))):
            part_lsn[f["table_id"]] = max(part_lsn[f["table_id"]], int(f["flush_lsn"]))
        start = self.meta.global_lsn()
        replayed = 0
        for rec in self.wal.replay(after_lsn=start):
            if rec.name not in flush_lsn or rec.lsn <= flush_lsn[rec.name]:
                continue
            if rec.kind == INSERT:
                if rec.lsn <= part_lsn[rec.tag]:
                    continue
                if rec.tag != rec.name and self.meta.table(rec.tag) is None:
                    continue  # partition dropped since
                buf = self._buffers.setdefault(rec.name, CollectionBuffer())
                buf.add(rec.tag, rec.ids, rec.vectors, rec.lsn)
                replayed += len(rec.ids)
            elif rec.kind == DELETE and rec.name in self._buffers:
                tables = None
                if rec.tag:
                    try:
                        tables = {self._partition_table(rec.name, rec.tag)}
                    except MilvusError:
                        continue
                self._buffers[rec.name].drop_ids(rec.ids, tables)
        self.wal.lsn = max([self.wal.lsn, start, *flush_lsn.values()])
        if replayed:
            log.info("WAL replay: %d rows back in the insert buffer", replayed)
        for what in self.wal.skipped:
            log.warning("WAL replay skipped unreadable records (wal.recovery_error_ignore): %s", what)

    # ================================================================ search
    def search_snapshot(self, name: str) -> SearchSnapshot:
        """What a search of ``name`` reads from the meta, in one query (kept while unchanged on MySQL).

        A missing collection raises COLLECTION_NOT_EXISTS (4).
        """
        if self._snapshots is None:
            raise MilvusError(Code.UNEXPECTED_ERROR, "the store is not started")
        return self._snapshots.read(name)

    def snapshot_stats(self) -> dict:
        """How searches got their snapshot: kept without a query, kept after a check, read anew."""
        return self._snapshots.count_snapshot() if self._snapshots is not None else {}

    def search_snapshot_for_files(self, name: str, file_ids: list[int],
                                  file_list: Fingerprint | None = None) -> SearchSnapshot:
        """``search_snapshot`` for a SearchInFiles: no meta read when the kept snapshot has the router's
        file list ``file_list`` (its fingerprint) and lists every file."""
        if self._snapshots is None:
            raise MilvusError(Code.UNEXPECTED_ERROR, "the store is not started")
        return self._snapshots.read_for_files(name, file_ids, file_list)

    def search(self, name: str, tags: list[str], queries: np.ndarray, topk: int, params: dict, *,
               snapshot: SearchSnapshot | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(distances, ids), each (nq, topk), over the partitions whose tags match ``tags`` ([] = all).

        ``snapshot``: ``search_snapshot(name)`` already read for this request, whose ``topk`` and
        ``params`` were checked against it (``validation.search_params``). Without one the store
        reads it and checks them itself.
        """
        snap = snapshot or self._checked_snapshot(name, topk, params)
        retries = 0
        while True:
            try:
                return self._search_snapshot(snap, name, tags, queries, topk, params)
            except MilvusError as exc:
                retries += 1
                if exc.code != Code.FILE_NOT_FOUND or retries > VANISHED_RETRIES:
                    raise
                fresh = self._checked_snapshot(name, topk, params)
                if fresh.file_ids == snap.file_ids:
                    raise  # still listed: the file is really missing or damaged
                # merged or re-indexed away after the list was read, and already removed (a
                # file_cleanup_timeout of 0 removes it at once): search the files that replaced it
                snap = fresh

    def _search_snapshot(self, snap: SearchSnapshot, name: str, tags: list[str], queries: np.ndarray,
                         topk: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
        parts = snap.parts
        tables = partition_tags.match(tags or [], name, parts)
        tset = set(tables)
        files = snap.files_of(tset)
        if self.role == "ro":
            # merged-away, re-indexed or dropped files of these partitions: free their memory
            live = {int(f["id"]) for f in files}
            newest = max(live, default=0)  # newer rows may have been loaded by a concurrent search
            self.cache.evict_where(
                lambda s: s.table_id in tset and s.file_row_id not in live and s.file_row_id <= newest)
        return self._search_files(snap.collection, files, queries, topk, params)

    def search_in_files(self, name: str, file_ids: list[int], queries: np.ndarray, topk: int, params: dict, *,
                        snapshot: SearchSnapshot | None = None) -> tuple[np.ndarray, np.ndarray]:
        """As ``search``, over these TableFiles ids (FILE_NOT_FOUND if one is not searchable)."""
        snap = snapshot or self._checked_snapshot(name, topk, params)
        files = snap.files_by_id(file_ids)
        return self._search_files(snap.collection, files, queries, topk, params)

    def _checked_snapshot(self, name: str, topk: int, params: dict) -> SearchSnapshot:
        snap = self.search_snapshot(name)
        check.search_params(snap.index_type, topk, params or {})
        return snap

    def _search_files(self, coll: dict, files: list[dict], queries: np.ndarray, topk: int,
                      params: dict) -> tuple[np.ndarray, np.ndarray]:
        metric = int(coll["metric_type"])
        q = np.ascontiguousarray(queries, dtype=np.uint8 if is_binary(metric) else np.float32)
        if q.ndim == 1:
            q = q[None, :]
        parts = [self.segments.load(f, coll).search(q, int(topk), params or {}) for f in files]
        parts = [p for p in parts if p[1].shape[1] > 0]
        return topk_merge.merge(parts, int(topk), metric, nq=len(q))

    def get_vectors(self, name: str, ids: np.ndarray, tag: str = "") -> list[np.ndarray | None]:
        coll = self.collection(name)
        wanted = np.asarray(ids, dtype=np.int64)
        out: list[np.ndarray | None] = [None] * len(wanted)
        tables = [self._partition_table(name, tag)] if tag else self.tables(name)
        binary = is_binary(coll["metric_type"])
        for f in self.meta.files(tables):
            s = self.segments.load(f, coll)
            where, offs = s.offsets_of(wanted)
            if where.size:
                rows = s.vectors_at(offs, binary)
                for k, w in enumerate(where):
                    out[int(w)] = rows[k]
        return out

    def list_ids_in_segment(self, name: str, segment_name: str) -> np.ndarray:
        self.collection(name)
        files = [f for f in self.meta.files(self.tables(name)) if f["segment_id"] == str(segment_name)]
        if not files:
            raise MilvusError(Code.UNEXPECTED_ERROR,
                              f"Segment {segment_name} does not exist in collection {name}")
        f = files[0]
        s = self.cache.peek(int(f["id"]))
        if s is not None:
            return s.ids if s.deleted is None else s.ids[~s.deleted]
        d = seg.segment_dir(self.storage, f["table_id"], f["segment_id"])
        ids = seg.read_ids(d, f["segment_id"])
        return np.delete(ids, seg.read_deleted(d))

    def load(self, name: str, tags: list[str] | None = None) -> None:
        coll = self.collection(name)
        files = self.meta.files(self._match_tables(name, tags or []))
        need = sum(int(f["file_size"]) for f in files if self.cache.peek(int(f["id"])) is None)
        if need > self.cache.capacity:
            raise MilvusError(
                Code.UNEXPECTED_ERROR,
                f"Cannot load collection {name} into cache: it needs {need} bytes, "
                f"cache_size is {self.cache.capacity}",
            )
        for f in files:
            self.segments.load(f, coll)

    def release(self, name: str) -> None:
        self.collection(name)
        tables = set(self.tables(name))
        self.cache.evict_where(lambda s: s.table_id in tables)

    def reload_segments(self, name: str, file_ids: list[int]) -> None:
        if self.role != "ro":
            return  # rw applies deletes to its cache at once; 1.1 ignores this outside ro cluster nodes
        self.collection(name)
        for fid in file_ids:
            s = self.cache.peek(int(fid))
            if s is not None:
                s.set_deleted(seg.read_deleted(s.seg_dir))

    def cache_info(self) -> dict:
        return self.cache.info()
