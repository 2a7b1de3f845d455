"""The node's data layer: Milvus 1.1 metadata + segments + WAL + insert buffer + segment cache.

Roles. ``rw`` (also every non-cluster node): takes the fcntl locks, logs inserts and deletes to the
WAL before answering, buffers rows, flushes segments, and runs the background work (auto flush,
merge, index build, cleanup). ``ro``: none of that; every search re-reads TableFiles from the meta
and loads files it lacks from the shared storage path into the LRU cache. With ``preload`` on, a
poller loads newly flushed segments before a query asks for them.

Visibility rule (all roles): only file types RAW/TO_INDEX/INDEX are searched or counted, and a
TableFiles row becomes one of those only after its files are complete on disk.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from labkit.milvus import fingerprint as rowhash
from labkit.milvus import tags as partition_tags
from labkit.milvus import topk as topk_merge
from labkit.milvus.defaults import DEFAULT_TAG
from labkit.milvus.enums import INDEX_NAMES, SEARCHABLE_SQL, is_binary
from labkit.milvus.status import Code, MilvusError
from labkit.node import meta as m
from labkit.node import segments as seg
from labkit.node.cache import LoadedSegment, SegmentCache
from labkit.node.settings import StoreSettings
from labkit.node.store_buffer import CollectionBuffer
from labkit.node.store_maintain import FLAT, MaintenanceMixin
from labkit.node.wal import DELETE, INSERT, Wal

log = logging.getLogger("labkit.node.store")

MAX_PARTITIONS = 4096


# What a search reads: Tables columns as they are, TableFiles columns as f_<name> (both tables
# have id, table_id, engine_type). Few columns: pymysql decodes every field in Python.
_T_COLS = ("id", "table_id", "state", "dimension", "index_file_size", "engine_type", "index_params", "metric_type",
           "owner_table", "partition_tag")
_F_COLS = ("id", "table_id", "segment_id", "engine_type", "file_id", "file_type", "file_size", "row_count",
           "updated_time")
_SEARCH_EXPRS = [f"t.{c}" for c in _T_COLS] + [f"f.{c}" for c in _F_COLS]
_SEARCH_KEYS = [*_T_COLS, *(f"f_{c}" for c in _F_COLS)]
_SEARCH_SELECT = ", ".join(f"{e} AS {k}" for e, k in zip(_SEARCH_EXPRS, _SEARCH_KEYS, strict=True))
_FILE_KEYS = [(f"f_{c}", c) for c in _F_COLS]
_MEMO_MAX = 256  # cached search file lists per node (collection, file ids)


class Store(MaintenanceMixin):
    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.role = "ro" if settings.cluster and settings.role == "ro" else "rw"
        self.storage = Path(settings.storage_path)
        self.cache = SegmentCache(settings.cache_size)
        # (collection, None) -> (rowhash of the rows, what _files_for_search returned): MySQL only
        self._search_memo: dict = {}
        self.meta: m.Meta | None = None
        self.wal: Wal | None = None
        self.maintenance_interval = 1.0  # seconds between merge/index/cleanup passes (tests lower it)
        self._lock = threading.RLock()  # write path: buffers, flush, delete, meta commits
        self._build_lock = threading.Lock()  # one merge / index build / compact at a time
        self._buffers: dict[str, CollectionBuffer] = {}
        self._uids: dict[tuple[str, str], np.ndarray] = {}  # (table_id, segment_id) -> ids, for deletes
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock_files: list[int] = []
        self._loading: dict[int, threading.Event] = {}
        self._failed_builds: set[tuple] = set()  # (file row id, engine_type, params) that failed
        self._loading_lock = threading.Lock()
        self._started = False

    # ================================================================ lifecycle
    def start(self) -> None:
        self.meta = m.Meta(self.settings.meta_uri, self.storage)
        if self.role == "rw":
            self._take_locks()
            self.meta.create_schema()
            seg.tables_dir(self.storage).mkdir(parents=True, exist_ok=True)
            self._clean_shadow_files()
            if self.settings.wal_enable:
                self.wal = Wal(self.settings.wal_path, self.settings.wal_buffer_size)
                self._replay()
            self._spawn(self._flush_loop, "auto-flush")
            self._spawn(self._maintain_loop, "maintain")
        else:
            self.meta.create_schema()
            if self.settings.preload:
                self._spawn(self._preload_loop, "preload")
        self._started = True
        self._preload_configured()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self._threads.clear()
        if self.wal is not None:
            self.wal.close()
        for fd in self._lock_files:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
        self._lock_files.clear()
        if self.meta is not None:
            self.meta.close()
        self._started = False

    def _spawn(self, target, name: str) -> None:  # noqa: ANN001
        t = threading.Thread(target=target, name=f"store-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def _take_locks(self) -> None:
        for d in (self.storage, Path(self.settings.wal_path)):
            d.mkdir(parents=True, exist_ok=True)
            fd = os.open(d / "lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                # flock, not lockf: it also excludes a second Store in this process, and closing
                # another descriptor of the file does not drop it
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                self.close()
                raise MilvusError(
                    Code.UNEXPECTED_ERROR, f"{d / 'lock'} is locked: another rw Milvus node uses this path"
                ) from exc
            self._lock_files.append(fd)

    def _preload_configured(self) -> None:
        names = [n.strip() for n in (self.settings.preload_collection or "").split(",") if n.strip()]
        if "*" in names:
            names = self.list_collections()
        for name in names:
            try:
                self.load(name)
            except MilvusError as exc:
                log.warning("preload_collection %s: %s", name, exc.reason)

    @property
    def _meta(self) -> m.Meta:
        if self.meta is None:
            raise MilvusError(Code.UNEXPECTED_ERROR, "the store is not started")
        return self.meta

    def _writable(self) -> None:
        if self.role != "rw":
            raise MilvusError(Code.UNEXPECTED_ERROR, "this node is read-only (cluster.role: ro)")

    # ================================================================ collections / partitions
    def _collection(self, name: str) -> dict:
        row = self._meta.table(name) if name else None
        if row is None or row["owner_table"]:
            raise MilvusError(Code.COLLECTION_NOT_EXISTS, f"Collection {name} does not exist. Use milvus.has_collection to verify whether the collection exists. You also can check whether the collection name exists.")
        return row

    def create_collection(self, name: str, dim: int, index_file_size_mb: int, metric: int) -> None:
        self._writable()
        with self._lock:
            self._meta.insert_table(
                table_id=name,
                dimension=int(dim),
                index_file_size=int(index_file_size_mb) << 20,
                metric_type=int(metric),
                engine_type=FLAT,
                index_params="{}",
                flush_lsn=self.wal.lsn if self.wal else 0,
            )
            (seg.tables_dir(self.storage) / name).mkdir(parents=True, exist_ok=True)

    def has_collection(self, name: str) -> bool:
        row = self._meta.table(name) if name else None
        return row is not None and not row["owner_table"]

    def describe_collection(self, name: str) -> dict:
        row = self._collection(name)
        return {
            "name": name,
            "dim": int(row["dimension"]),
            "index_file_size_mb": int(row["index_file_size"]) >> 20,
            "metric": int(row["metric_type"]),
            "index_type": int(row["engine_type"]),
            "index_params": json.loads(row["index_params"] or "{}"),
        }

    def list_collections(self) -> list[str]:
        return [r["table_id"] for r in self._meta.collections()]

    def drop_collection(self, name: str) -> None:
        self._writable()
        with self._lock:
            self._collection(name)
            tables = [name, *[p["table_id"] for p in self._meta.partitions(name)]]
            self._retire_tables(tables)
            self._buffers.pop(name, None)

    def _retire_tables(self, tables: list[str]) -> None:
        """Drop Tables rows now; their files turn TO_DELETE and are removed by the cleanup later."""
        files = self._meta.files(tables, tuple(range(8)))
        self._meta.update_files([f["id"] for f in files], file_type=m.TO_DELETE)
        self._meta.delete_tables(tables)
        tset = set(tables)
        self.cache.evict_where(lambda s: s.table_id in tset)

    def create_partition(self, name: str, tag: str) -> None:
        self._writable()
        with self._lock:
            coll = self._collection(name)
            if tag == DEFAULT_TAG:
                raise MilvusError(Code.UNEXPECTED_ERROR, "'_default' is built-in partition tag")
            parts = self._meta.partitions(name)
            if any(p["partition_tag"] == tag for p in parts):
                raise MilvusError(Code.ILLEGAL_COLLECTION_NAME, f"Duplicate partition tag {tag} in collection {name}")
            if len(parts) + 1 >= MAX_PARTITIONS:
                raise MilvusError(Code.UNEXPECTED_ERROR, f"The number of partitions exceeds the upper limit ({MAX_PARTITIONS})")
            self._meta.insert_table(
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
        self._collection(name)
        return tag == DEFAULT_TAG or any(p["partition_tag"] == tag for p in self._meta.partitions(name))

    def list_partitions(self, name: str) -> list[str]:
        self._collection(name)
        return [DEFAULT_TAG, *[p["partition_tag"] for p in self._meta.partitions(name)]]

    def drop_partition(self, name: str, tag: str) -> None:
        self._writable()
        with self._lock:
            self._collection(name)
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
        for p in self._meta.partitions(name):
            if p["partition_tag"] == tag:
                return p["table_id"]
        raise MilvusError(Code.UNEXPECTED_ERROR, f"Partition {tag} does not exist in collection {name}")

    def _match_tables(self, name: str, tags: list[str] | None) -> list[str]:
        """table_ids of the partitions whose tag fully matches one of the regexes ([] = all)."""
        parts = [(DEFAULT_TAG, name), *[(p["partition_tag"], p["table_id"]) for p in self._meta.partitions(name)]]
        return partition_tags.match(tags or [], name, parts)

    def _all_tables(self, name: str) -> list[str]:
        return [name, *[p["table_id"] for p in self._meta.partitions(name)]]

    # ================================================================ counting / stats
    def count(self, name: str) -> int:
        self._collection(name)
        return sum(int(f["row_count"]) for f in self._meta.files(self._all_tables(name)))

    def stats(self, name: str) -> dict:
        self._collection(name)
        parts = [(DEFAULT_TAG, name), *[(p["partition_tag"], p["table_id"]) for p in self._meta.partitions(name)]]
        files = self._meta.files([t for _, t in parts])
        by_table: dict[str, list[dict]] = defaultdict(list)
        for f in files:
            by_table[f["table_id"]].append(f)
        out, total = [], 0
        for tag, tid in parts:
            segs = [
                {
                    "name": f["segment_id"],
                    "row_count": int(f["row_count"]),
                    "index_name": INDEX_NAMES.get(int(f["engine_type"]), "IDMAP") if f["file_type"] == m.INDEX else "IDMAP",
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
        self._writable()
        with self._lock:
            coll = self._collection(name)
            table_id = self._partition_table(name, tag)
            binary = is_binary(coll["metric_type"])
            vectors = np.ascontiguousarray(vectors, dtype=np.uint8 if binary else np.float32)
            width = int(coll["dimension"]) // 8 if binary else int(coll["dimension"])
            if vectors.ndim != 2 or vectors.shape[1] != width:
                raise MilvusError(Code.ILLEGAL_DIMENSION, f"The vector dimension must be equal to the collection dimension ({coll['dimension']}).")
            n = len(vectors)
            flag = int(coll["flag"])
            if ids is None:
                if flag & m.FLAG_USER_ID:
                    raise MilvusError(Code.ILLEGAL_VECTOR_ID, "Entities IDs are user-defined. Please provide IDs for all entities of the collection.")
                first = m.ids.take(n)
                ids = np.arange(first, first + n, dtype=np.int64)
                want = flag | m.FLAG_AUTO_ID
            else:
                ids = np.ascontiguousarray(ids, dtype=np.int64)
                if len(ids) != n:
                    raise MilvusError(Code.ILLEGAL_VECTOR_ID, "The size of vector ID array must be equal to the size of the vector.")
                if flag & m.FLAG_AUTO_ID:
                    raise MilvusError(Code.ILLEGAL_VECTOR_ID, "Entities IDs are auto-generated. All vectors of this collection must use auto-generated IDs.")
                want = flag | m.FLAG_USER_ID
            if want != flag:
                self._meta.update_table(name, flag=want)
            lsn = self.wal.append_insert(name, table_id, ids, vectors) if self.wal else 0
            self._buffers.setdefault(name, CollectionBuffer()).add(table_id, ids, vectors, lsn or 1)
            if sum(b.nbytes for b in self._buffers.values()) >= self.settings.insert_buffer_size:
                self._flush_locked(None)
            return ids

    def flush(self, names: list[str] | None = None) -> None:
        if self.role != "rw":
            return
        with self._lock:
            for n in names or []:
                self._collection(n)
            self._flush_locked(names)

    def _flush_locked(self, names: list[str] | None) -> None:
        lsn = self.wal.lsn if self.wal else 0
        for name in list(names if names is not None else self._buffers):
            buf = self._buffers.pop(name, None)
            if buf is None:
                continue
            coll = self._meta.table(name)
            if coll is None or coll["owner_table"]:
                continue  # dropped meanwhile
            live = {name, *[p["table_id"] for p in self._meta.partitions(name)]}
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
                self._meta.update_table(name, flush_lsn=lsn)
        self._advance_wal()

    def _advance_wal(self) -> None:
        if self.wal is None:
            return
        pending = [b.first_lsn for b in self._buffers.values() if b.first_lsn]
        upto = (min(pending) - 1) if pending else self.wal.lsn
        self._meta.set_global_lsn(upto)
        self.wal.truncate(upto)

    def _file_type_for(self, coll: dict, nbytes: int, force_index: bool = False) -> int:
        if int(coll["engine_type"]) != FLAT and (force_index or nbytes >= int(coll["index_file_size"])):
            return m.TO_INDEX
        return m.RAW

    def _write_segment(
        self, coll: dict, table_id: str, ids: np.ndarray, vectors: np.ndarray, lsn: int,
        from_flush: bool = False, file_type: int | None = None,
    ) -> int:
        """Write a new segment's files, then its TableFiles row; returns TableFiles.id."""
        file_id = str(m.ids.take())
        d = seg.segment_dir(self.storage, table_id, file_id)
        nbytes = seg.write_raw(d, file_id, vectors, ids)
        ftype = file_type if file_type is not None else self._file_type_for(coll, nbytes)
        row_id = self._meta.insert_file(
            table_id=table_id, segment_id=file_id, file_id=file_id, engine_type=int(coll["engine_type"]),
            file_type=ftype, file_size=nbytes, row_count=len(ids), flush_lsn=lsn,
        )
        self._cache_raw(coll, row_id, table_id, file_id, ftype, ids, vectors, None)
        return row_id

    def _cache_raw(self, coll: dict, row_id: int, table_id: str, file_id: str, ftype: int,
                   ids: np.ndarray, vectors: np.ndarray, deleted: np.ndarray | None) -> None:
        """The writer already holds a new segment's arrays: cache them instead of re-reading."""
        self._uids[(table_id, file_id)] = ids
        loaded = LoadedSegment(
            file_row_id=row_id, table_id=table_id, segment_id=file_id, file_id=file_id, file_type=ftype,
            updated_time=m.now_us(), metric=int(coll["metric_type"]), dim=int(coll["dimension"]), ids=ids,
            vectors=vectors, seg_dir=seg.segment_dir(self.storage, table_id, file_id),
        )
        if deleted is not None and deleted.size:
            loaded.set_deleted(deleted)
        self.cache.put(loaded)

    def delete(self, name: str, ids: np.ndarray, tag: str = "") -> None:
        self._writable()
        ids = np.unique(np.asarray(ids, dtype=np.int64))
        with self._lock:
            self._collection(name)
            tables = [self._partition_table(name, tag)] if tag else self._all_tables(name)
            if self.wal:
                self.wal.append_delete(name, tag, ids)
            buf = self._buffers.get(name)
            if buf is not None:
                buf.drop_ids(ids, set(tables))
            self._delete_flushed(tables, ids)

    def _delete_flushed(self, tables: list[str], ids: np.ndarray) -> None:
        files = self._meta.files(tables, (m.RAW, m.TO_INDEX, m.INDEX, m.BACKUP))
        by_seg: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for f in files:
            by_seg[(f["table_id"], f["segment_id"])].append(f)
        for (table_id, segment_id), rows in by_seg.items():
            uids = self._segment_uids(table_id, segment_id)
            hit = np.nonzero(np.isin(uids, ids))[0].astype(np.int32)
            if hit.size == 0:
                continue
            d = seg.segment_dir(self.storage, table_id, segment_id)
            old = seg.read_deleted(d)
            new = np.union1d(old, hit).astype(np.int32)
            if new.size == old.size:
                continue
            seg.write_deleted(d, new)
            self._meta.update_files([r["id"] for r in rows], row_count=len(uids) - int(new.size))
            for s in self.cache.items():
                if s.table_id == table_id and s.segment_id == segment_id:
                    s.set_deleted(new)

    def _segment_uids(self, table_id: str, segment_id: str) -> np.ndarray:
        key = (table_id, segment_id)
        uids = self._uids.get(key)
        if uids is None:
            uids = seg.read_ids(seg.segment_dir(self.storage, table_id, segment_id), segment_id)
            self._uids[key] = uids
        return uids

    # ================================================================ WAL replay
    def _replay(self) -> None:
        assert self.wal is not None
        flush_lsn: dict[str, int] = {}
        for c in self._meta.collections():
            flush_lsn[c["table_id"]] = int(c["flush_lsn"])
        # A flush writes one file per partition, then the collection's flush_lsn: if it crashed in
        # between, the files already written carry the LSN they cover (TableFiles.flush_lsn).
        part_lsn: dict[str, int] = defaultdict(int)
        for f in self._meta.files_of_type(tuple(range(8))):
            part_lsn[f["table_id"]] = max(part_lsn[f["table_id"]], int(f["flush_lsn"]))
        start = self._meta.global_lsn()
        replayed = 0
        for rec in self.wal.replay(after_lsn=start):
            if rec.name not in flush_lsn or rec.lsn <= flush_lsn[rec.name]:
                continue
            if rec.kind == INSERT:
                if rec.lsn <= part_lsn[rec.tag]:
                    continue
                if rec.tag != rec.name and self._meta.table(rec.tag) is None:
                    continue  # partition dropped since
                self._buffers.setdefault(rec.name, CollectionBuffer()).add(rec.tag, rec.ids, rec.vectors, rec.lsn)
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

    # ================================================================ reading
    def _load(self, f: dict, coll: dict) -> LoadedSegment:
        key = int(f["id"])
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        # one loader per file: a query arriving while the preload poller reads it waits for it
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
            return self._read_segment(f, coll)
        finally:
            if mine:
                with self._loading_lock:
                    self._loading.pop(key, None)
                ev.set()

    def _read_segment(self, f: dict, coll: dict) -> LoadedSegment:
        d = seg.segment_dir(self.storage, f["table_id"], f["segment_id"])
        binary = is_binary(coll["metric_type"])
        dim = int(coll["dimension"])
        last: Exception | None = None
        for attempt in range(4):  # another JuiceFS client may not list a just-renamed file yet
            try:
                ids = seg.read_ids(d, f["segment_id"])
                deleted = seg.read_deleted(d)
                index, vectors = None, None
                if f["file_type"] == m.INDEX:
                    from labkit.node.engine import SegmentIndex

                    index = SegmentIndex.from_bytes(seg.read_index(d, f["file_id"])[1])
                else:
                    vectors = seg.read_vectors(d, f["segment_id"], dim // 8 if binary else dim, binary)
                break
            except (FileNotFoundError, ValueError, MilvusError) as exc:
                # MilvusError: SegmentIndex.from_bytes saw a truncated index (not yet complete here)
                last = exc
                time.sleep(0.05 * (attempt + 1))
        else:
            raise MilvusError(Code.FILE_NOT_FOUND, f"Segment file {f['id']} of {coll['table_id']} cannot be read: {last}")
        loaded = LoadedSegment(
            file_row_id=int(f["id"]), table_id=f["table_id"], segment_id=f["segment_id"], file_id=f["file_id"],
            file_type=int(f["file_type"]), updated_time=int(f["updated_time"]), metric=int(coll["metric_type"]),
            dim=dim, ids=ids, vectors=vectors, index=index, seg_dir=d,
        )
        loaded.set_deleted(deleted)
        self.cache.put(loaded)
        return loaded

    def _files_for_search(self, name: str) -> tuple[dict, list[tuple[str, str]], list[dict]]:
        """The collection's row, its (tag, table_id) pairs and its searchable files, fresh from the meta.

        Files are those of every partition, ordered by id. A missing collection raises
        COLLECTION_NOT_EXISTS. One query instead of four: the meta connection is pure-Python
        pymysql behind a lock, and each query cost about as much as a small search.
        On MySQL the rows of the last read are kept and, while one ``rowhash`` query finds the
        same rows in the meta, reused without being read and decoded again.
        """
        source = (
            "FROM Tables t LEFT JOIN TableFiles f ON f.table_id = t.table_id "
            f"AND f.file_type IN ({SEARCHABLE_SQL}) "
            "WHERE t.state <> %s AND (t.table_id = %s OR t.owner_table = %s)"
        )
        args = [m.TABLE_TO_DELETE, name, name]
        memo = self._search_memo
        key = (name, None)
        mysql = self._meta.dialect == "mysql"
        kept = memo.get(key) if mysql else None
        if kept is not None:
            fp = self._meta._exec(f"SELECT {rowhash.select_sql(_SEARCH_EXPRS)} {source}", args, fetch=True)
            if fp and rowhash.of_result(fp[0]) == kept[0]:
                return kept[1]
        for _attempt in (0, 1):
            rows = self._meta._exec(f"SELECT {_SEARCH_SELECT} {source} ORDER BY t.id, f.id", args, fetch=True)
            root = next((r for r in rows if r["table_id"] == name and not r["owner_table"]), None)
            if root is not None:
                break
            memo.pop(key, None)
            self._collection(name)  # raises COLLECTION_NOT_EXISTS with the usual wording
        else:
            raise MilvusError(Code.COLLECTION_NOT_EXISTS, f"Collection {name} does not exist.")
        coll = {k: root[k] for k in _T_COLS}
        parts = [(DEFAULT_TAG, name)]
        files: list[dict] = []
        for r in rows:
            if r["owner_table"] == name and (r["partition_tag"], r["table_id"]) not in parts:
                parts.append((r["partition_tag"], r["table_id"]))
            if r["f_id"] is not None and (r["table_id"] == name or r["owner_table"] == name):
                files.append({c: r[k] for k, c in _FILE_KEYS})
        files.sort(key=lambda f: int(f["id"]))
        found = (coll, parts, files)
        if mysql:
            if len(memo) >= _MEMO_MAX:
                memo.clear()
            memo[key] = (rowhash.of_rows([r[k] for k in _SEARCH_KEYS] for r in rows), found)
        return found

    def search(self, name: str, tags: list[str], queries: np.ndarray, topk: int, params: dict, *,
               found: tuple[dict, list[tuple[str, str]], list[dict]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``found``: ``_files_for_search(name)`` already read for this request (saves a query)."""
        from labkit.node import engine

        coll, parts, all_files = found or self._files_for_search(name)
        engine.check_search_params(int(coll["engine_type"]), params or {}, int(topk))
        tables = partition_tags.match(tags, name, parts)
        tset = set(tables)
        files = [f for f in all_files if f["table_id"] in tset]
        if self.role == "ro":
            # merged-away, re-indexed or dropped files of these partitions: free their memory
            live = {int(f["id"]) for f in files}
            newest = max(live, default=0)  # newer rows may have been loaded by a concurrent search
            self.cache.evict_where(lambda s: s.table_id in tset and s.file_row_id not in live and s.file_row_id <= newest)
        return self._search_files(coll, files, queries, topk, params)

    def search_in_files(self, name: str, file_ids: list[int], queries: np.ndarray, topk: int, params: dict, *,
                        found: tuple[dict, list[tuple[str, str]], list[dict]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``found``: ``_files_for_search(name)`` already read for this request."""
        from labkit.node import engine

        wanted = sorted({int(i) for i in file_ids})
        coll, _parts, files = found or self._files_for_search(name)
        engine.check_search_params(int(coll["engine_type"]), params or {}, int(topk))
        keep = set(wanted)
        files = [f for f in files if int(f["id"]) in keep]
        missing = sorted(set(wanted) - {int(f["id"]) for f in files})
        if missing:
            raise MilvusError(Code.FILE_NOT_FOUND, f"Files {missing} are not searchable files of collection {name}")
        return self._search_files(coll, files, queries, topk, params)

    def _search_files(self, coll: dict, files: list[dict], queries: np.ndarray, topk: int, params: dict) -> tuple[np.ndarray, np.ndarray]:
        metric = int(coll["metric_type"])
        q = np.ascontiguousarray(queries, dtype=np.uint8 if is_binary(metric) else np.float32)
        if q.ndim == 1:
            q = q[None, :]
        parts = [self._load(f, coll).search(q, int(topk), params or {}) for f in files]
        parts = [p for p in parts if p[1].shape[1] > 0]
        return topk_merge.merge(parts, int(topk), metric, nq=len(q))

    def get_vectors(self, name: str, ids: np.ndarray, tag: str = "") -> list[np.ndarray | None]:
        coll = self._collection(name)
        wanted = np.asarray(ids, dtype=np.int64)
        out: list[np.ndarray | None] = [None] * len(wanted)
        tables = [self._partition_table(name, tag)] if tag else self._all_tables(name)
        binary = is_binary(coll["metric_type"])
        for f in self._meta.files(tables):
            s = self._load(f, coll)
            where, offs = s.offsets_of(wanted)
            if where.size:
                rows = s.vectors_at(offs, binary)
                for k, w in enumerate(where):
                    out[int(w)] = rows[k]
        return out

    def list_ids_in_segment(self, name: str, segment_name: str) -> np.ndarray:
        self._collection(name)
        files = [f for f in self._meta.files(self._all_tables(name)) if f["segment_id"] == str(segment_name)]
        if not files:
            raise MilvusError(Code.UNEXPECTED_ERROR, f"Segment {segment_name} does not exist in collection {name}")
        f = files[0]
        s = self.cache.peek(int(f["id"]))
        if s is not None:
            return s.ids if s.deleted is None else s.ids[~s.deleted]
        d = seg.segment_dir(self.storage, f["table_id"], f["segment_id"])
        ids = seg.read_ids(d, f["segment_id"])
        return np.delete(ids, seg.read_deleted(d))

    def load(self, name: str, tags: list[str] | None = None) -> None:
        coll = self._collection(name)
        files = self._meta.files(self._match_tables(name, tags or []))
        need = sum(int(f["file_size"]) for f in files if self.cache.peek(int(f["id"])) is None)
        if need > self.cache.capacity:
            raise MilvusError(Code.UNEXPECTED_ERROR, f"Cannot load collection {name} into cache: it needs {need} bytes, cache_size is {self.cache.capacity}")
        for f in files:
            self._load(f, coll)

    def release(self, name: str) -> None:
        self._collection(name)
        tables = set(self._all_tables(name))
        self.cache.evict_where(lambda s: s.table_id in tables)

    def reload_segments(self, name: str, file_ids: list[int]) -> None:
        if self.role != "ro":
            return  # rw applies deletes to its cache at once; 1.1 ignores this outside ro cluster nodes
        self._collection(name)
        for fid in file_ids:
            s = self.cache.peek(int(fid))
            if s is not None:
                s.set_deleted(seg.read_deleted(s.seg_dir))

    def cache_info(self) -> dict:
        return self.cache.info()
