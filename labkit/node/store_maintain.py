"""Index builds, merges, compaction, cleanup, the background threads and ro preloading of a Store.

``Maintenance(core)`` works through the small public ``StoreCore`` interface of the store. Merges,
index builds and cleanup run on the rw node only; a ro node runs the preload poller (when
configured). Heavy work (reading segments, building an index, writing merged files) happens
outside the write lock, under the build lock (one at a time); the switch of TableFiles rows
happens under the write lock in a single UPDATE, after deletes that arrived in between were
carried over.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from labkit.milvus.enums import is_binary
from labkit.milvus.status import Code, MilvusError
from labkit.node import meta as m
from labkit.node import segments as seg
from labkit.node import validation as check
from labkit.node.cache import LoadedSegment, SegmentCache
from labkit.node.loading import SegmentLoader
from labkit.node.search_snapshot import SearchSnapshot
from labkit.node.settings import StoreSettings

log = logging.getLogger("labkit.node.store")

BUILD_MIN_ROWS = 4096  # TO_INDEX files smaller than this stay raw (brute force)
RELEASE_INTERVAL = 2.0  # seconds between a ro node's polls for dropped or merged-away cached files
FLAT = 1


def _layer(nbytes: int) -> int:
    """Size layer of a file for background merges: 0 below 4 MB, then one per factor of 4."""
    layer, bound = 0, 4 << 20
    while nbytes >= bound:
        layer, bound = layer + 1, bound * 4
    return layer


def file_type_for(coll: dict, nbytes: int, force_index: bool = False) -> int:
    """RAW, or TO_INDEX when the collection has an index and the file is big enough (or ``force_index``)."""
    if int(coll["engine_type"]) != FLAT and (force_index or nbytes >= int(coll["index_file_size"])):
        return m.TO_INDEX
    return m.RAW


class StoreCore(Protocol):
    """What maintenance uses of the store."""

    settings: StoreSettings
    storage: Path
    cache: SegmentCache
    segments: SegmentLoader
    write_lock: threading.RLock  # buffers, flush, delete, meta commits

    @property
    def meta(self) -> m.Meta: ...
    def collection(self, name: str) -> dict: ...  # the Tables row; COLLECTION_NOT_EXISTS if missing
    def tables(self, name: str) -> list[str]: ...  # table_ids of the collection and its partitions
    def list_collections(self) -> list[str]: ...
    def writable(self) -> None: ...  # raises on a ro node
    def flush(self, names: list[str] | None = None) -> None: ...
    def flush_buffered(self) -> None: ...  # flush if any rows are buffered
    def load(self, name: str, tags: list[str] | None = None) -> None: ...
    def search_snapshot(self, name: str) -> SearchSnapshot: ...


class Placement:
    """Which files a router sends to this node: ``nodes`` on the router's consistent-hash ring, this
    node being ``me``; valid until ``expires`` (monotonic), after which the node preloads everything."""

    def __init__(self, me: str, nodes: list[str], ttl_s: float) -> None:
        from labkit.router.ring import Ring

        self.me = me
        self.ring = Ring(nodes)
        self.expires = time.monotonic() + ttl_s
        if me not in self.ring.nodes:
            raise ValueError(f"{me!r} is not one of the ring's nodes {list(self.ring.nodes)}")

    def mine(self, file_id: int) -> bool:
        return time.monotonic() > self.expires or self.ring.node_for(file_id) == self.me

    def same(self, other: Placement | None) -> bool:
        return other is not None and other.me == self.me and other.ring.nodes == self.ring.nodes


class Maintenance:
    """Merges, index builds, compaction and cleanup of one store, and its background threads."""

    def __init__(self, core: StoreCore) -> None:
        self.core = core
        self.interval = 1.0  # seconds between merge/index/cleanup passes (tests change it)
        self._build_lock = threading.Lock()  # one merge / index build / compact at a time
        self._failed_builds: set[tuple] = set()  # (file row id, engine_type, params) that failed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._placement: Placement | None = None  # the router's ring: preload only this node's files
        self._replan = threading.Event()  # the placement changed: the preload loop runs a pass
        self._seen_files: dict[str, frozenset] = {}  # collection -> its searchable rows at the last pass

    @property
    def _meta(self) -> m.Meta:
        return self.core.meta

    # ================================================================ lifecycle
    def start(self, role: str) -> None:
        """rw: the auto flush and maintenance threads; ro: the preload poller (when configured)."""
        self._stop.clear()
        if role == "rw":
            self._spawn(self._flush_loop, "auto-flush")
            self._spawn(self._maintain_loop, "maintain")
        elif self.core.settings.preload:
            self._spawn(self._preload_loop, "preload")  # releases as it polls
        else:
            self._spawn(self._release_loop, "release")

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)
        self._threads.clear()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=f"store-{name}", daemon=True)
        t.start()
        self._threads.append(t)

    def preload_configured(self) -> None:
        """Load the collections named by ``preload_collection`` (``*``: all); a failure stops the
        start, as in 1.1."""
        text = self.core.settings.preload_collection or ""
        names = [n.strip() for n in text.split(",") if n.strip()]
        if "*" in names:
            names = self.core.list_collections()
        for name in names:
            try:
                self.core.load(name)
            except MilvusError as exc:
                raise MilvusError(exc.code,
                                  f"Failed to preload tables: {text} ({name}: {exc.reason})") from None

    # ================================================================ indexes
    def describe_index(self, name: str) -> tuple[int, dict]:
        c = self.core.collection(name)
        return int(c["engine_type"]), json.loads(c["index_params"] or "{}")

    def create_index(self, name: str, index_type: int, params: dict) -> None:
        self.core.writable()
        coll = self.core.collection(name)
        check.index_params(int(index_type), int(coll["metric_type"]), int(coll["dimension"]), params or {})
        with self._build_lock:
            with self.core.write_lock:
                coll = self.core.collection(name)
                same = (int(coll["engine_type"]) == int(index_type)
                        and json.loads(coll["index_params"] or "{}") == (params or {}))
                if not same:
                    self._drop_index_locked(name)
                    for t in self.core.tables(name):
                        self._meta.update_table(t, engine_type=int(index_type), index_params=params or {})
                self.core.flush([name])
            if int(index_type) == FLAT:
                return
            self._merge_collection(name, force=True)
            with self.core.write_lock:
                raw = [f for f in self._meta.files(self.core.tables(name), (m.RAW,))
                       if int(f["row_count"]) >= BUILD_MIN_ROWS]
                self._meta.update_files([f["id"] for f in raw], file_type=m.TO_INDEX)
            self._build_pending(name)

    def drop_index(self, name: str) -> None:
        self.core.writable()
        with self._build_lock, self.core.write_lock:
            self.core.collection(name)
            self._drop_index_locked(name)
            for t in self.core.tables(name):
                self._meta.update_table(t, engine_type=FLAT, index_params={})

    def _drop_index_locked(self, name: str) -> None:
        tables = self.core.tables(name)
        idx = self._meta.files(tables, (m.INDEX, m.NEW_INDEX))
        back = self._meta.files(tables, (m.BACKUP, m.TO_INDEX))
        self._meta.set_file_types({**{int(f["id"]): m.TO_DELETE for f in idx},
                                   **{int(f["id"]): m.RAW for f in back}})
        gone = {int(f["id"]) for f in idx}
        self.core.cache.evict_where(lambda s: s.file_row_id in gone)

    def _build_pending(self, name: str | None = None) -> int:
        """Build indexes of TO_INDEX files with enough rows; returns how many were built."""
        built = 0
        names = [name] if name else self.core.list_collections()
        for cname in names:
            coll = self._meta.table(cname)
            if coll is None or int(coll["engine_type"]) == FLAT:
                continue
            for f in self._meta.files(self.core.tables(cname), (m.TO_INDEX,)):
                key = (int(f["id"]), coll["engine_type"], coll["index_params"])
                if int(f["row_count"]) < BUILD_MIN_ROWS or self._stop.is_set():
                    continue
                if name is None and key in self._failed_builds:
                    continue  # the background does not retry a failed build; create_index does
                try:
                    built += self._build_one(coll, f)
                except MilvusError:
                    raise
                except Exception as exc:
                    self._failed_builds.add(key)
                    raise MilvusError(Code.BUILD_INDEX_ERROR,
                                      f"Building the index of file {f['id']} failed: {exc}") from exc
        return built

    def _build_one(self, coll: dict, f: dict) -> int:
        from labkit.node.engine import SegmentIndex

        binary = is_binary(coll["metric_type"])
        dim = int(coll["dimension"])
        d = seg.segment_dir(self.core.storage, f["table_id"], f["segment_id"])
        vectors = seg.read_vectors(d, f["segment_id"], dim // 8 if binary else dim, binary)
        itype, params = int(coll["engine_type"]), json.loads(coll["index_params"] or "{}")
        file_id = str(m.ids.take())
        row_id = self._meta.insert_file(
            table_id=f["table_id"], segment_id=f["segment_id"], file_id=file_id, engine_type=itype,
            file_type=m.NEW_INDEX, row_count=f["row_count"], flush_lsn=f["flush_lsn"],
        )
        try:
            index = SegmentIndex.build(vectors, itype, int(coll["metric_type"]), params)
            size = seg.write_index(d, file_id, itype, index.to_bytes())
        except Exception:
            self._meta.update_files([row_id], file_type=m.TO_DELETE)
            raise
        with self.core.write_lock:
            now = self._meta.table(coll["table_id"])
            cur = self._meta.files_by_id([f["id"]])
            if (now is None or int(now["engine_type"]) != itype
                    or json.loads(now["index_params"] or "{}") != params
                    or not cur or cur[0]["file_type"] != m.TO_INDEX):
                # index changed or file gone meanwhile
                self._meta.update_files([row_id], file_type=m.TO_DELETE)
                return 0
            self._meta.update_files([row_id], file_size=size, row_count=cur[0]["row_count"])
            self._meta.set_file_types({row_id: m.INDEX, int(f["id"]): m.BACKUP})
            self.core.cache.evict(int(f["id"]))
            loaded = LoadedSegment(
                file_row_id=row_id, table_id=f["table_id"], segment_id=f["segment_id"], file_id=file_id,
                file_type=m.INDEX, updated_time=m.now_us(), metric=int(coll["metric_type"]), dim=dim,
                ids=self.core.segments.uids(f["table_id"], f["segment_id"]), index=index, seg_dir=d,
            )
            loaded.set_deleted(seg.read_deleted(d))
            self.core.cache.put(loaded)
        return 1

    # ================================================================ merge / compact
    def _merge_collection(self, name: str, force: bool = False) -> int:
        """Merge small RAW files of each partition up to index_file_size; returns merges done.

        Background merges only combine files of the same size layer (4 MB, 16 MB, 64 MB, ...),
        as 1.1's layered strategy does, so a big merged file is not rewritten with every small
        flush (that would also make read-only nodes reload it after every flush).
        ``force`` (create_index) merges all small files.
        """
        coll = self._meta.table(name)
        if coll is None:
            return 0
        limit = int(coll["index_file_size"])
        merges = 0
        for table_id in self.core.tables(name):
            small = [f for f in self._meta.files([table_id], (m.RAW,)) if int(f["file_size"]) < limit]
            buckets: dict[int, list[dict]] = defaultdict(list)
            for f in small:
                buckets[0 if force else _layer(int(f["file_size"]))].append(f)
            for files in buckets.values():
                group: list[dict] = []
                size = 0
                for f in files:
                    group.append(f)
                    size += int(f["file_size"])
                    if size >= limit:
                        merges += self._merge_group(coll, table_id, group)
                        group, size = [], 0
                if len(group) >= 2:
                    merges += self._merge_group(coll, table_id, group)
        return merges

    def _merge_group(self, coll: dict, table_id: str, group: list[dict]) -> int:
        if len(group) < 2:
            return 0
        return self._rewrite(coll, table_id, group, force_index=False)

    def compact(self, name: str, threshold: float = 0.1) -> None:
        self.core.writable()
        with self._build_lock:
            coll = self.core.collection(name)
            rebuilt = False
            for f in self._meta.files(self.core.tables(name)):
                if int(f["file_size"]) == 0:
                    continue
                d = seg.segment_dir(self.core.storage, f["table_id"], f["segment_id"])
                n = len(self.core.segments.uids(f["table_id"], f["segment_id"]))
                gone = seg.read_deleted(d).size
                if n and gone / n > threshold:
                    group = self._meta.files([f["table_id"]], (m.RAW, m.TO_INDEX, m.INDEX, m.BACKUP))
                    group = [g for g in group if g["segment_id"] == f["segment_id"]]
                    raw = [g for g in group if g["file_id"] == g["segment_id"]]
                    extra = [g for g in group if g["file_id"] != g["segment_id"]]
                    rebuilt |= bool(self._rewrite(coll, f["table_id"], raw,
                                                  force_index=f["file_type"] != m.RAW, retire=extra))
            if rebuilt:
                self._build_pending(name)

    def _rewrite(
        self, coll: dict, table_id: str, sources: list[dict], force_index: bool,
        retire: list[dict] | None = None,
    ) -> int:
        """One new segment from the live rows of ``sources`` (raw files); sources -> TO_DELETE.

        The new files are written under a NEW_MERGE row outside the write lock; the switch (new row
        searchable, sources TO_DELETE) happens under it, after carrying over deletes that arrived
        in between.
        """
        binary = is_binary(coll["metric_type"])
        dim = int(coll["dimension"])
        width = dim // 8 if binary else dim
        vecs, idss, maps = [], [], []
        start = 0
        for f in sources:
            d = seg.segment_dir(self.core.storage, table_id, f["segment_id"])
            v = seg.read_vectors(d, f["segment_id"], width, binary)
            ids = self.core.segments.uids(table_id, f["segment_id"])
            keep = np.ones(len(ids), dtype=bool)
            keep[seg.read_deleted(d)] = False
            newpos = np.full(len(ids), -1, dtype=np.int64)
            newpos[keep] = np.arange(start, start + int(keep.sum()))
            start += int(keep.sum())
            vecs.append(v[keep])
            idss.append(ids[keep])
            maps.append((d, newpos))
        retired = [int(f["id"]) for f in sources] + [int(r["id"]) for r in retire or []]
        row_id, file_id = 0, ""
        if start:
            ids = np.concatenate(idss)
            vectors = np.ascontiguousarray(np.concatenate(vecs))
            del vecs
            file_id = str(m.ids.take())
            lsn = max(int(f["flush_lsn"]) for f in sources)
            row_id = self._meta.insert_file(
                table_id=table_id, segment_id=file_id, file_id=file_id, engine_type=int(coll["engine_type"]),
                file_type=m.NEW_MERGE, file_size=0, row_count=0, flush_lsn=lsn,
            )
            nd = seg.segment_dir(self.core.storage, table_id, file_id)
            seg.write_raw(nd, file_id, vectors, ids)
        with self.core.write_lock:
            cur = {int(r["id"]): r for r in self._meta.files_by_id([f["id"] for f in sources])}
            if any(int(f["id"]) not in cur or cur[int(f["id"])]["file_type"] != f["file_type"]
                   for f in sources):
                if row_id:
                    self._meta.update_files([row_id], file_type=m.TO_DELETE)
                return 0  # dropped or changed meanwhile
            if row_id:
                late = [newpos[now][newpos[now] >= 0] for d, newpos in maps for now in [seg.read_deleted(d)]]
                late_arr = np.unique(np.concatenate(late)).astype(np.int32) if late else np.empty(0, np.int32)
                if late_arr.size:
                    seg.write_deleted(nd, late_arr)
                ftype = file_type_for(coll, vectors.nbytes, force_index=force_index)
                self._meta.update_files([row_id], file_size=int(vectors.nbytes),
                                        row_count=len(ids) - int(late_arr.size))
                self.core.segments.cache_written(coll, row_id, table_id, file_id, ftype, ids, vectors,
                                                 late_arr)
            self._meta.set_file_types({**{i: m.TO_DELETE for i in retired},
                                       **({row_id: ftype} if row_id else {})})
            gone = set(retired)
            self.core.cache.evict_where(lambda s: s.file_row_id in gone)
        return 1

    # ================================================================ cleanup
    def clean_shadow_files(self) -> None:
        """At start (rw): unfinished NEW / NEW_MERGE / NEW_INDEX rows of a crashed run go away."""
        shadow = self._meta.files_of_type((m.NEW, m.NEW_MERGE, m.NEW_INDEX))
        self._meta.update_files([f["id"] for f in shadow], file_type=m.TO_DELETE, updated_time=0)

    def _cleanup(self, force: bool = False) -> int:
        cutoff = m.now_us() - int(self.core.settings.file_cleanup_timeout * 1e6)
        removed = 0
        with self.core.write_lock:
            for f in self._meta.files_of_type((m.TO_DELETE,)):
                if not force and int(f["updated_time"]) > cutoff:
                    continue
                d = seg.segment_dir(self.core.storage, f["table_id"], f["segment_id"])
                if f["file_id"] != f["segment_id"]:
                    seg.remove_index(d, f["file_id"])
                else:
                    seg.remove_segment(d)
                    self.core.segments.forget(f["table_id"], f["segment_id"])
                self._meta.delete_files([f["id"]])
                removed += 1
        return removed

    # ================================================================ background threads
    def _flush_loop(self) -> None:
        # re-read each tick: set_config storage.auto_flush_interval applies at once
        while not self._stop.wait(max(float(self.core.settings.auto_flush_interval), 0) or 1.0):
            if float(self.core.settings.auto_flush_interval) <= 0:
                continue
            try:
                self.core.flush_buffered()
            except Exception:  # noqa: BLE001 - keep the loop alive; the next tick retries
                log.exception("auto flush failed")

    def _maintain_loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.maintain()
            except Exception:  # noqa: BLE001
                log.exception("background maintenance failed")

    def maintain(self) -> dict:
        """One pass of merge, index build and cleanup (what the background thread runs)."""
        merged = built = 0
        with self._build_lock:
            for name in self.core.list_collections():
                if self._stop.is_set():
                    break
                merged += self._merge_collection(name)
            built = self._build_pending()
        removed = self._cleanup()
        return {"merged": merged, "built": built, "removed": removed}

    def _release_loop(self) -> None:
        while not self._stop.wait(RELEASE_INTERVAL):
            try:
                self.release_gone()
            except Exception:  # noqa: BLE001 - metadata unreachable: next poll
                log.debug("release poll failed", exc_info=True)

    def release_gone(self) -> int:
        """ro: evict cached segments whose TableFiles row is no longer searchable; how many.

        The rw node drops collections and partitions and merges files in the metadata only;
        a read node learns of it here. The cache is listed before the metadata is read, so a
        segment a search loads meanwhile is never taken for a gone one.
        """
        cached = [s.file_row_id for s in self.core.cache.items()]
        if not cached:
            return 0
        live = {int(f["id"]) for f in self._meta.files_by_id(cached) if int(f["file_type"]) in m.SEARCHABLE}
        gone = set(cached) - live
        if gone:
            self.core.cache.evict_where(lambda s: s.file_row_id in gone)
        return len(gone)
    def set_placement(self, me: str, nodes: list[str], ttl_s: float) -> dict:
        """The router's ring (labkit extension): preload only the files it routes to ``me``.

        Renewed by the router every few seconds; once ``ttl_s`` passes without renewal (no
        router), every file is preloaded again. A changed ring runs a preload pass at once.
        """
        new = Placement(me, nodes, ttl_s)
        old, self._placement = self._placement, new
        if not new.same(old):
            self._replan.set()
        return {"me": me, "nodes": list(new.ring.nodes), "ttl_s": ttl_s, "changed": not new.same(old)}

    def _preload_loop(self) -> None:
        """Check the meta's one-row change marker every ``preload_interval`` on a connection of its
        own (searches never wait for it); read the file list and load only when it changed, or
        again after a load failed (a file this mount does not show yet)."""
        watcher = m.Meta(self.core.settings.meta_uri, self.core.storage)
        marker: tuple | None = None
        try:
            while not self._stop.wait(self.core.settings.preload_interval):
                try:
                    now = watcher.change_marker()
                    if self._replan.is_set() or self._placement_expired():
                        self._replan.clear()
                        marker = None
                    if now == marker:
                        continue
                    _, failed = self._preload_pass(watcher, time.time())
                    marker = None if failed else now
                except Exception:  # noqa: BLE001
                    log.exception("preload poll failed")
                    marker = None
        finally:
            watcher.close()

    def _placement_expired(self) -> bool:
        p = self._placement
        if p is not None and time.monotonic() > p.expires:
            self._placement = None
            return True
        return False

    def preload_new(self) -> int:
        """ro + preload: load searchable files not yet cached; returns how many were loaded."""
        return self._preload_pass(self._meta, time.time())[0]

    def _preload_pass(self, meta: m.Meta, seen: float) -> tuple[int, int]:
        """Load the searchable files not cached yet, newest first; (loaded, failed). With a
        placement from the router, only the files it routes to this node.

        The search snapshots of the collections concerned are refreshed meanwhile (on the store's
        own meta connection), so the query that follows the load finds both ready.
        """
        files = meta.searchable_files()
        live = {int(f["id"]) for f in files}
        placement = self._placement
        todo = [f for f in files if self.core.cache.peek(int(f["id"])) is None
                and (placement is None or placement.mine(int(f["id"])))]
        # collections whose searchable rows changed since the last pass, loaded here or not: their
        # kept snapshots match the router's new file list again before the next query
        rows: dict[str, set] = defaultdict(set)
        for f in files:
            rows[f["collection"]].add((int(f["id"]), int(f["file_type"]), int(f["row_count"]),
                                       int(f["updated_time"])))
        now = {name: frozenset(r) for name, r in rows.items()}
        changed = {name for name, sig in now.items() if self._seen_files.get(name) != sig}
        self._seen_files = now
        refresh = None
        if todo or changed:
            names = sorted({f["collection"] for f in todo} | changed)
            refresh = threading.Thread(target=self._refresh_snapshots, args=(names,),
                                       name="store-preload-snap", daemon=True)
            refresh.start()
        loaded = failed = 0
        for f in todo:
            if self._stop.is_set():
                break
            coll = {"table_id": f["collection"], "metric_type": f["metric_type"], "dimension": f["dimension"]}
            try:
                self.core.segments.load(f, coll, seen=seen, by="preload")
                loaded += 1
            except MilvusError:
                failed += 1  # not visible on this mount yet: the next pass retries
        if refresh is not None:
            refresh.join()
        # merged away or dropped; ids above the newest one read here may be rows a search just loaded
        newest = max(live, default=0)
        self.core.cache.evict_where(lambda s: s.file_row_id not in live and s.file_row_id <= newest)
        return loaded, failed

    def _refresh_snapshots(self, names: list[str]) -> None:
        for name in names:
            try:
                self.core.search_snapshot(name)
            except MilvusError:
                pass  # dropped meanwhile: the next search reports it
