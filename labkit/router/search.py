"""Routed search: Search and SearchInFiles spread over the read nodes, the Mishards way.

A search reads the collection's searchable files from MySQL, or reuses the list of the last
search: with no query at all while the rw node's change messages vouch for it (``MetaWatch``),
else while one fingerprint query confirms it. It places them on the live read nodes with the
consistent-hash ring, sends ``ReloadSegments`` first where a file's updated_time grew, then
``SearchInFiles`` to every node at once and merges the partial top-k per metric. A failing read
node's files move to the others (``max_retry`` rounds); when no read node can serve them the rw
node answers the whole search, so a reply is complete or an error, never partial. Anything the
router cannot resolve itself (unknown collection, partition tags that do not match) goes to the
rw node, so its answer and wording are the node's own.

Path of one search: ``SearchRouter.search`` -> ``route`` -> ``fan_out`` -> ``search_node``
(SearchInFiles on a node: ``labkit.node.server``) -> ``labkit.milvus.topk.merge`` ->
``labkit.milvus.replies.topk_bytes``.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import grpc
import numpy as np

from labkit.milvus import fingerprint, replies, topk
from labkit.milvus.proto import messages
from labkit.milvus.status import Code
from labkit.milvus.timing import Clock, StageTimes
from labkit.router.config import RouterConfig
from labkit.router.counters import Counters
from labkit.router.discovery import Discovery
from labkit.router.meta import CollectionFiles, FileRow, MetaReader
from labkit.router.meta_watch import MetaWatch
from labkit.router.ring import Ring

log = logging.getLogger("labkit.router")

pb, status_pb, _ = messages()

# Codes every node would answer alike (bad request, unknown collection): returned as they are.
# Any other failure of a read node sends its files elsewhere.
FINAL_CODES = frozenset({Code.COLLECTION_NOT_EXISTS, Code.ILLEGAL_ARGUMENT, Code.ILLEGAL_RANGE,
                         Code.ILLEGAL_DIMENSION, Code.ILLEGAL_INDEX_TYPE, Code.ILLEGAL_COLLECTION_NAME,
                         Code.ILLEGAL_TOPK, Code.ILLEGAL_ROWRECORD, Code.ILLEGAL_VECTOR_ID,
                         Code.ILLEGAL_METRIC_TYPE})
_CACHE_MAX = 256  # file lists kept (collection, tags)

SearchKey = tuple[str, tuple[str, ...]]  # (collection, partition tags)


class Outcome(Enum):
    OK = "ok"  # the node searched its files; ``NodeAnswer.result`` is its TopKQueryResult
    FINAL = "final"  # a request error every node would give; ``NodeAnswer.raw`` is the reply
    FAILED = "failed"  # unreachable, reload failed or another error; its files go elsewhere


@dataclass(frozen=True)
class NodeAnswer:
    """What one read node answered to its share of a search."""

    outcome: Outcome
    raw: bytes = b""  # the reply as sent (OK and FINAL, and FAILED when the node answered)
    result: Any = None  # parsed TopKQueryResult (OK)
    reason: str = ""  # why it failed (FAILED)
    unreachable: bool = False  # FAILED without an answer (timeout, connection): not a stale file list


@dataclass
class Bookkeeping:
    """A search's effects on the router, applied (``SearchRouter.commit``) only if its reply is kept."""

    counts: Counter = field(default_factory=Counter)
    seen: dict[str, dict[int, int]] = field(default_factory=dict)  # node -> file id -> updated_time
    suspend: set[str] = field(default_factory=set)  # nodes that failed
    unreachable: set[str] = field(default_factory=set)  # nodes that did not answer (already suspended)


@dataclass(frozen=True)
class Routed:
    """The merged reply of a routed search and its bookkeeping.

    ``reply`` is None only for a speculative search that met a node failure (the caller then
    searches again on a fresh file list).
    """

    reply: bytes | None
    book: Bookkeeping


class _NodeFailed(Exception):
    def __init__(self, reason: str, unreachable: bool) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


@functools.lru_cache(maxsize=256)
def _file_id_fields(file_ids: tuple[str, ...]) -> bytes:
    out = bytearray()
    for fid in file_ids:
        raw = fid.encode()
        out += b"\x0a" + _varint(len(raw)) + raw
    return bytes(out)


def search_in_files_bytes(file_ids: Sequence[str], search_param: bytes) -> bytes:
    """SearchInFilesParam{file_id_array=1, search_param=2} around an already-encoded SearchParam."""
    return b"".join((_file_id_fields(tuple(file_ids)), b"\x12", _varint(len(search_param)), search_param))


def with_file_list(search_param: bytes, fp: fingerprint.Fingerprint | None) -> bytes:
    """The encoded SearchParam plus one extra_params pair naming the file list's fingerprint.

    Appended, not re-encoded: a repeated field's entries may follow the rest of the message. The
    node searches with its kept snapshot when that snapshot has this fingerprint (see
    ``labkit.milvus.fingerprint.FILE_LIST_KEY``); other servers ignore an unknown key.
    """
    return search_param if fp is None else search_param + _file_list_field(fp)


@functools.lru_cache(maxsize=256)
def _file_list_field(fp: fingerprint.Fingerprint) -> bytes:
    kv = pb.KeyValuePair(key=fingerprint.FILE_LIST_KEY, value=fingerprint.as_text(fp)).SerializeToString()
    return b"\x2a" + _varint(len(kv)) + kv


class SearchRouter:
    """Search and SearchInFiles across the read nodes; the rw node answers what they cannot.

    ``client(addr)`` gives a node's raw-bytes stubs (``.method(name)``), ``ring(nodes)`` the
    consistent-hash ring over those nodes.
    """

    def __init__(self, cfg: RouterConfig, discovery: Discovery, meta: MetaReader, counters: Counters,
                 client: Callable[[str], Any], ring: Callable[[Sequence[str]], Ring],
                 pool: ThreadPoolExecutor, watch: MetaWatch) -> None:
        self.cfg = cfg
        self.watch = watch
        self.discovery = discovery
        self.meta = meta
        self.counters = counters
        self.client = client
        self.ring = ring
        self.pool = pool
        # fingerprint checks run on two long-lived threads that keep their MySQL connections (one
        # per thread) open: a check never pays a connect, as it would on a fan-out thread new to it
        self._checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="meta-check")
        self._lock = threading.Lock()
        self._seen: dict[str, dict[int, int]] = {}  # node -> file id -> updated_time it last searched
        # the file list of the last search per key, and the watch generation it is exact at
        self._files: dict[SearchKey, tuple[CollectionFiles, int]] = {}
        # seconds per stage of each routed Search (labkit_topology "timings"): parse, list (the kept file
        # list, or reading it), nodes (SearchInFiles on the read nodes), merge (top-k and reply),
        # check (waiting for the fingerprint query that confirms the kept list)
        self.timings = StageTimes()

    # -- the two search RPCs -----------------------------------------------------------------
    def search(self, request: bytes, forward: Callable[[], bytes]) -> bytes:
        """A Search request (serialized SearchParam); ``forward()`` asks the rw node instead."""
        clock = Clock()
        self.counters.add("searches")
        param = pb.SearchParam.FromString(request)
        tags = list(param.partition_tag_array)
        nq = len(param.query_record_array)
        key = (param.collection_name, tuple(tags))
        clock.lap("parse")
        with self._lock:
            cached, cached_at = self._files.get(key, (None, -1))
        nodes = self.discovery.read_nodes()
        if cached is not None and cached.files and nodes and self.watch.fresh(cached_at):
            # The rw node has reported no change since the list was read, and it reports each change
            # before acknowledging it (labkit.router.meta_watch): no metadata read at all.
            self.counters.add("watched")
            clock.lap("list")
            reply = self._kept(self.route(cached, request, nq, param.topk, forward, clock=clock))
            self.timings.record("Search", clock.stages)
            return reply
        generation = self.watch.current()  # what a list read (or confirmed) from here on is exact at
        if cached is not None and cached.files and cached.fingerprint and nodes:
            # Search the file list of the last search while MySQL computes the fingerprint of the
            # rows it came from. The answer is kept only when the fingerprint is unchanged, so a
            # file flushed before this request arrived is never missed (the query starts after
            # the request came in); otherwise the list is read again and the search redone.
            fresh = self._checks.submit(self.meta.fingerprint, param.collection_name)
            clock.lap("list")
            routed = self.route(cached, request, nq, param.topk, forward, speculative=True, clock=clock)
            # a node that did not answer is not asked again by this search (it is suspended already)
            skip = routed.book.unreachable
            same = fresh.result() == cached.fingerprint
            clock.lap("check")
            if same:
                if routed.reply is not None:
                    self.remember(key, cached, generation)  # confirmed by a query begun at that generation
                    self.commit(routed.book)
                    self.timings.record("Search", clock.stages)
                    return routed.reply
                found = cached  # a read node failed: the normal path below reroutes its files
            else:
                self.counters.add("stale_cache")
                generation = self.watch.current()
                found = self.meta.collection_files(param.collection_name, tags)
        else:
            found, skip = self.meta.collection_files(param.collection_name, tags), set()
        self.remember(key, found, generation)
        clock.lap("list")
        if found is None or not found.files or not self.discovery.read_nodes():
            # unknown collection or tags (the node words the error), nothing flushed, or no read nodes
            self.counters.add("rw_served")
            return forward()
        reply = self._kept(self.route(found, request, nq, param.topk, forward, skip=skip, clock=clock))
        self.timings.record("Search", clock.stages)
        return reply

    def search_in_files(self, request: bytes, forward: Callable[[], bytes]) -> bytes:
        """A SearchInFiles request: the named files, placed on the read nodes like a Search's."""
        self.counters.add("searches")
        param = pb.SearchInFilesParam.FromString(request)
        ids = list(dict.fromkeys(param.file_id_array))
        rows = self.meta.files_by_id([int(i) for i in ids]) if all(i.isdigit() for i in ids) else []
        sp = param.search_param
        found = self.meta.collection_files(sp.collection_name) if rows else None
        if found is None or len(rows) != len(ids) or not self.discovery.read_nodes():
            self.counters.add("rw_served")
            return forward()
        rows.sort(key=lambda f: f.id)
        files = CollectionFiles(found.name, found.metric_type, found.dimension, rows)
        nq = len(sp.query_record_array)
        return self._kept(self.route(files, sp.SerializeToString(), nq, sp.topk, forward))

    def close(self) -> None:
        self._checks.shutdown(wait=False, cancel_futures=True)

    def _kept(self, routed: Routed) -> bytes:
        if routed.reply is None:
            raise AssertionError("only a speculative search ends without a reply")
        self.commit(routed.book)
        return routed.reply

    # -- file lists ----------------------------------------------------------------------------
    def remember(self, key: SearchKey, found: CollectionFiles | None, generation: int) -> None:
        """Keep ``found`` as the file list of ``key``, exact at watch ``generation`` (None forgets it)."""
        with self._lock:
            if found is None:
                self._files.pop(key, None)
                return
            if len(self._files) >= _CACHE_MAX:
                self._files.clear()
            self._files[key] = (found, generation)

    def refresh(self, collections: set[str] | None, why: str) -> None:
        """Read again the kept file lists of ``collections`` (None: all), after a write changed them.

        Every write reaches the rw node through the router, so once the node acknowledges a
        flush or an index build the router already knows the new files: the next search finds
        its kept list current (one search, no redo). Searches stay correct without this (each
        one checks the fingerprint).
        """
        with self._lock:
            keys = [k for k in self._files if collections is None or k[0] in collections]
        for key in keys:
            generation = self.watch.current()
            try:
                self.remember(key, self.meta.collection_files(key[0], list(key[1])), generation)
            except Exception:  # noqa: BLE001 - a failed refresh only costs the next search a re-read
                log.warning("refreshing the file list of %s after %s failed", key[0], why, exc_info=True)
                self.remember(key, None, generation)

    # -- routing -------------------------------------------------------------------------------
    def route(self, found: CollectionFiles, search_param: bytes, nq: int, k: int,
              fallback: Callable[[], bytes], speculative: bool = False,
              skip: set[str] | None = None, clock: Clock | None = None) -> Routed:
        """The merged reply of the read nodes for ``found`` (or ``fallback()`` when they cannot).

        ``speculative``: give up (reply None) at the first node failure instead of rerouting,
        since the failure may come from a stale file list. ``skip``: nodes this search already
        waited for in vain. A node that does not answer (timeout, connection) is suspended at
        once, so concurrent searches stop waiting for it too; each search waits for it once.
        """
        by_id = {f.id: f for f in found.files}
        search_param = with_file_list(search_param, found.fingerprint)
        pending: list[FileRow] = list(found.files)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        excluded: set[str] = set(skip or ())
        book = Bookkeeping(suspend=set(excluded), unreachable=set(excluded))
        book.counts["node_failures"] += len(excluded)  # met by this search's speculative pass
        for round_ in range(self.cfg.max_retry + 1):
            nodes = [n for n in self.discovery.live_nodes() if n not in excluded]
            if not nodes:
                break
            plan = self.ring(nodes).assign(f.id for f in pending)
            answers = self.fan_out(found.name, plan, by_id, search_param)
            if clock is not None:
                clock.lap("nodes")
            pending = []
            for node, answer in answers.items():
                if answer.outcome is Outcome.FINAL:
                    return Routed(answer.raw, book)
                if answer.outcome is Outcome.OK:
                    res = answer.result
                    try:
                        part = replies.topk_arrays(res.row_num, res.ids, res.distances, nq)
                    except replies.ReplyError as exc:
                        log.warning("bad reply from %s: %s", node, exc)
                    else:
                        if part is not None:
                            parts.append(part)
                        seen = book.seen.setdefault(node, {})
                        for fid in plan[node]:
                            seen[int(fid)] = by_id[int(fid)].updated_time
                        continue
                if answer.unreachable:
                    self.discovery.suspend(node, unreachable=True)
                    book.unreachable.add(node)
                if speculative:
                    return Routed(None, book)
                excluded.add(node)
                book.suspend.add(node)
                book.counts["node_failures"] += 1
                pending += [by_id[int(fid)] for fid in plan[node]]
            if not pending:
                book.counts["routed"] += 1
                if len(plan) == 1 and round_ == 0:
                    return Routed(answers[next(iter(plan))].raw, book)  # one node served it all: as is
                d, i = topk.merge(parts, k, found.metric_type, nq=nq)
                reply = replies.topk_bytes(d, i)
                if clock is not None:
                    clock.lap("merge")
                return Routed(reply, book)
            book.counts["rerouted_files"] += len(pending)
        if speculative:
            return Routed(None, book)
        # no read node could serve every file: the rw node answers the whole search
        book.counts["rw_served"] += 1
        return Routed(fallback(), book)

    def commit(self, book: Bookkeeping) -> None:
        """Apply a kept search's bookkeeping: counters, segments each node has searched, suspensions."""
        self.counters.add_all(book.counts)
        with self._lock:
            for node, files in book.seen.items():
                self._seen.setdefault(node, {}).update(files)
        for node in book.suspend:
            self.discovery.suspend(node)
        self.discovery.answered(set(book.seen) - book.suspend)

    def fan_out(self, collection: str, plan: dict[str, list[str]], by_id: dict[int, FileRow],
                search_param: bytes) -> dict[str, NodeAnswer]:
        """SearchInFiles on each node of ``plan`` at once -> node -> its answer.

        Blocking calls: this thread serves the node with the most files (the longest leg, which
        then waits for no thread hand-off), pool threads the others. (A grpc ``future`` starts a
        channel polling thread per call on an idle channel, which cost more than the search itself.)
        """
        items = sorted(plan.items(), key=lambda item: -len(item[1]))
        submitted = time.perf_counter()
        futures = [(node, self.pool.submit(self.search_node, node, collection, fids, by_id, search_param,
                                           submitted))
                   for node, fids in items[1:]]
        out = {}
        if items:
            node, fids = items[0]
            out[node] = self.search_node(node, collection, fids, by_id, search_param)
        for node, fut in futures:
            out[node] = fut.result()
        return out

    def search_node(self, node: str, collection: str, fids: list[str], by_id: dict[int, FileRow],
                    search_param: bytes, submitted: float | None = None) -> NodeAnswer:
        """One read node's SearchInFiles over ``fids``, after reloading the files it saw older.

        Timed as kind ``SearchInFiles call`` (labkit_topology timings): ``handoff`` from ``submitted``
        (a pool thread's start delay), ``call`` the RPC as seen from here (the node's own stages are
        in its ``labkit_stats``; the rest is gRPC and scheduling).
        """
        clock = Clock()
        if submitted is not None:
            clock.stages["handoff"] = clock.started - submitted
        try:
            self._reload_if_changed(node, collection, fids, by_id)
            body = search_in_files_bytes(fids, search_param)
            clock.lap("prepare")
            raw = self.client(node).method("SearchInFiles")(body, timeout=self.cfg.search_timeout)
            clock.lap("call")
            self.timings.record("SearchInFiles call", clock.stages)
        except _NodeFailed as exc:
            return NodeAnswer(Outcome.FAILED, reason=str(exc), unreachable=exc.unreachable)
        except grpc.RpcError as exc:
            log.warning("read node %s failed: %s", node, exc.code().name)
            return NodeAnswer(Outcome.FAILED, reason=exc.code().name, unreachable=True)
        res = pb.TopKQueryResult.FromString(raw)
        code = res.status.error_code
        if code == Code.SUCCESS:
            return NodeAnswer(Outcome.OK, raw, res)
        if code in FINAL_CODES:
            return NodeAnswer(Outcome.FINAL, raw)
        log.warning("read node %s answered %s: %s", node, code, res.status.reason)
        return NodeAnswer(Outcome.FAILED, raw, reason=res.status.reason)

    def _reload_if_changed(self, node: str, collection: str, fids: list[str],
                           by_id: dict[int, FileRow]) -> None:
        with self._lock:
            seen = self._seen.get(node, {})
            stale = [f for f in fids if int(f) in seen and seen[int(f)] < by_id[int(f)].updated_time]
        if not stale:
            return
        req = pb.ReLoadSegmentsParam(collection_name=collection, segment_id_array=stale).SerializeToString()
        try:
            raw = self.client(node).method("ReloadSegments")(req, timeout=self.cfg.search_timeout)
        except grpc.RpcError as exc:
            raise _NodeFailed(f"ReloadSegments: {exc.code().name}", unreachable=True) from None
        st = status_pb.Status.FromString(raw)
        if st.error_code:
            raise _NodeFailed(f"ReloadSegments: {st.reason}", unreachable=False)
        self.counters.add("reloads", len(stale))
