"""The router's gRPC service: Milvus 1.1 wire protocol in front of a cluster of lab nodes.

Every RPC but the searches is passed through to the rw node as raw bytes (a generic handler
with identity (de)serializers: big inserts are never decoded). Search is split the Mishards way:
the collection's searchable files from MySQL, placed on read nodes by a consistent-hash ring,
ReloadSegments first where a file's updated_time grew, SearchInFiles to every node at once,
top-k merged per metric. A failing read node's files move to the others (MAX_RETRY rounds);
when no read node can serve them the rw node answers the whole search, so a reply is complete
or an error, never partial.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import numpy as np

from labkit.errors import LabError
from labkit.milvus.proto import messages
from labkit.router import merge as merging
from labkit.router.config import RouterConfig
from labkit.router.discovery import Discovery
from labkit.router.meta import CollectionFiles, FileRow, MetaReader
from labkit.router.placement import PlacementSender
from labkit.router.ring import Ring

log = logging.getLogger("labkit.router")

pb, status_pb, _ = messages()
SERVICE = "milvus.grpc.MilvusService"
PREFIX = f"/{SERVICE}/"
_METHODS = {m.name: m for m in pb.DESCRIPTOR.services_by_name["MilvusService"].methods}

# Codes that every node would answer alike (bad request, unknown collection): returned as is.
# Any other failure of a read node sends its files elsewhere.
FINAL_CODES = frozenset({4, 5, 6, 7, 8, 9, 10, 11, 12, 23})
UNEXPECTED = 1

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


# Writes after which the set of searchable files may have changed (the router refreshes its lists),
# with the request message that names the collection(s)
FILE_CHANGING = {"Flush": "FlushParam", "CreateIndex": "IndexParam", "DropIndex": "CollectionName",
                 "Compact": "CollectionName", "DeleteByID": "DeleteByIDParam",
                 "DropPartition": "PartitionParam", "DropCollection": "CollectionName"}


def written_collections(method: str, request: bytes) -> set[str] | None:
    """The collections a FILE_CHANGING request writes to; None means all (a Flush of everything)."""
    msg = getattr(pb, FILE_CHANGING[method]).FromString(request)
    if method == "Flush":
        return set(msg.collection_name_array) or None
    return {msg.collection_name}


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


def search_in_files_bytes(file_ids: Sequence[str], search_param: bytes) -> bytes:
    """SearchInFilesParam{file_id_array=1, search_param=2} around an already-encoded SearchParam."""
    out = bytearray()
    for fid in file_ids:
        raw = fid.encode()
        out += b"\x0a" + _varint(len(raw)) + raw
    out += b"\x12" + _varint(len(search_param)) + search_param
    return bytes(out)


def error_reply(method: str, code: int, reason: str) -> bytes:
    """The method's own reply type carrying ``Status{code, reason}``."""
    out_name = _METHODS[method].output_type.name if method in _METHODS else "Status"
    stat = status_pb.Status(error_code=code, reason=reason)
    if out_name == "Status":
        return stat.SerializeToString()
    return getattr(pb, out_name)(status=stat).SerializeToString()


def topk_reply(d: np.ndarray, i: np.ndarray, nq: int) -> bytes:
    if i.size == 0 or not (i >= 0).any():
        return pb.TopKQueryResult(status=status_pb.Status(), row_num=0).SerializeToString()
    res = pb.TopKQueryResult(status=status_pb.Status(), row_num=nq)
    res.ids.extend(i.ravel().tolist())
    res.distances.extend(d.ravel().tolist())
    return res.SerializeToString()


class NodeClient:
    """One reused channel per node; raw-bytes callables per method."""

    def __init__(self, addr: str) -> None:
        self.addr = addr
        self.channel = grpc.insecure_channel(addr, options=CHANNEL_OPTIONS)
        self._calls: dict[str, Any] = {}

    def method(self, name: str) -> Any:
        call = self._calls.get(name)
        if call is None:
            call = self._calls[name] = self.channel.unary_unary(PREFIX + name)
        return call

    def close(self) -> None:
        self.channel.close()


class _NodeFailed(Exception):
    pass


class Router:
    """Routing logic and state; ``handler()`` exposes it as a grpc generic handler."""

    def __init__(self, cfg: RouterConfig, meta: MetaReader | None = None) -> None:
        self.cfg = cfg
        self.discovery = Discovery(cfg)
        self.meta = meta or MetaReader(cfg.db)
        self._clients: dict[str, NodeClient] = {}
        self._rings: dict[tuple[str, ...], Ring] = {}
        self._seen: dict[str, dict[int, int]] = {}  # node -> file id -> updated_time it last searched
        self._files_cache: dict[tuple[str, tuple[str, ...]], CollectionFiles] = {}  # last list per search key
        self._lock = threading.Lock()
        self.stats = {"searches": 0, "routed": 0, "rw_served": 0, "rerouted_files": 0,
                      "node_failures": 0, "reloads": 0, "forwarded": 0, "stale_cache": 0}
        self._pool = ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix="fanout")
        self.special: dict[str, Callable[[bytes, Any], bytes]] = {
            "Search": self.search,
            "SearchInFiles": self.search_in_files,
            "Cmd": self.cmd,
            "ReloadSegments": lambda req, ctx: self.broadcast("ReloadSegments", req, ctx),
            "ReleaseCollection": lambda req, ctx: self.broadcast("ReleaseCollection", req, ctx),
            "PreloadCollection": lambda req, ctx: self.broadcast("PreloadCollection", req, ctx),
        }
        for name in FILE_CHANGING:
            self.special[name] = lambda req, ctx, _name=name: self.forward_and_refresh(_name, req, ctx)
        # each read node hears which files it is sent, so a preloading node reads only those
        self.placement = PlacementSender(self.discovery.live_nodes, self._cmd_call)
        self.placement.start()

    # -- plumbing --------------------------------------------------------------------------
    def client(self, addr: str) -> NodeClient:
        with self._lock:
            c = self._clients.get(addr)
            if c is None:
                c = self._clients[addr] = NodeClient(addr)
            return c

    def ring(self, nodes: Sequence[str]) -> Ring:
        key = tuple(sorted(nodes))
        with self._lock:
            r = self._rings.get(key)
            if r is None:
                if len(self._rings) > 32:
                    self._rings.clear()
                r = self._rings[key] = Ring(key)
            return r

    def rw(self) -> str:
        addr = self.discovery.woserver()
        if not addr:
            raise LabError("no rw node is known (WOSERVER unset and no running rw node in the lab)")
        return addr

    def _cmd_call(self, addr: str, request: bytes) -> bytes:
        return self.client(addr).method("Cmd")(request, timeout=min(self.cfg.search_timeout, 2.0))

    def close(self) -> None:
        self.placement.stop()
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for c in self._clients.values():
                c.close()
            self._clients.clear()
        self.meta.close()

    def handler(self) -> grpc.GenericRpcHandler:
        router = self

        class _Handler(grpc.GenericRpcHandler):
            def service(self, details):  # noqa: D102 - grpc API
                method = details.method
                if not method.startswith(PREFIX):
                    return None
                name = method[len(PREFIX):]
                fn = router.special.get(name)
                if fn is None:
                    def fn(req, ctx, _name=name):
                        return router.forward(_name, req, ctx)
                return grpc.unary_unary_rpc_method_handler(router._guard(name, fn))

        return _Handler()

    def _guard(self, name: str, fn: Callable[[bytes, Any], bytes]) -> Callable[[bytes, Any], bytes]:
        def run(req: bytes, ctx: Any) -> bytes:
            try:
                return fn(req, ctx)
            except LabError as exc:
                return error_reply(name, UNEXPECTED, f"router: {exc}")
            except grpc.RpcError:
                raise
            except Exception as exc:  # noqa: BLE001 - any bug must still answer with a Status
                log.exception("%s failed", name)
                return error_reply(name, UNEXPECTED, f"router: {type(exc).__name__}: {exc}")
        return run

    # -- pass-through ----------------------------------------------------------------------
    def forward(self, name: str, request: bytes, context: Any, addr: str | None = None) -> bytes:
        """Send the raw request to the rw node (or ``addr``) and return its raw reply."""
        addr = addr or self.rw()
        self.stats["forwarded"] += 1
        try:
            return self.client(addr).method(name)(request)
        except grpc.RpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return error_reply(name, UNEXPECTED, f"router: node {addr} is unreachable ({code.name})")
            if context is not None:
                context.abort(code, exc.details() or code.name)
            raise

    def forward_and_refresh(self, name: str, request: bytes, context: Any) -> bytes:
        """Forward a write that changes segment files, then re-read the cached file lists.

        Every write reaches the rw node through the router, so once the node acknowledges a
        flush or an index build the router already knows the new files: the next search finds
        its cached list current (one search, no redo), instead of discovering the change on the
        first query. Searches stay correct without this (each one checks the fingerprint).
        """
        reply = self.forward(name, request, context)
        names = written_collections(name, request)
        with self._lock:
            keys = [k for k in self._files_cache if names is None or k[0] in names]
        for key in keys:
            try:
                self._remember(key, self.meta.collection_files(key[0], list(key[1])))
            except Exception:  # noqa: BLE001 - a failed refresh only costs the next search a re-read
                log.warning("refreshing the file list of %s after %s failed", key[0], name, exc_info=True)
                with self._lock:
                    self._files_cache.pop(key, None)
        return reply

    def broadcast(self, name: str, request: bytes, context: Any) -> bytes:
        """The rw node and every live read node; the first failure wins, else the rw reply."""
        rw = self.rw()
        targets = [rw] + [n for n in self.discovery.live_nodes() if n != rw]
        futures = [(addr, self.client(addr).method(name).future(request, timeout=self.cfg.search_timeout))
                   for addr in targets]
        first = None
        for addr, fut in futures:
            try:
                raw = fut.result()
            except grpc.RpcError as exc:
                return error_reply(name, UNEXPECTED, f"router: {name} on {addr} failed ({exc.code().name})")
            if first is None:
                first = raw
            if status_pb.Status.FromString(raw).error_code:
                return raw
        return first or error_reply(name, UNEXPECTED, "router: no node answered")

    # -- search ----------------------------------------------------------------------------
    def search(self, request: bytes, context: Any) -> bytes:
        self.stats["searches"] += 1
        param = pb.SearchParam.FromString(request)
        tags = list(param.partition_tag_array)
        nq = len(param.query_record_array)

        def fallback() -> bytes:
            return self.forward("Search", request, context)

        key = (param.collection_name, tuple(tags))
        cached = self._files_cache.get(key)
        if cached is not None and cached.files and cached.fingerprint and self.discovery.read_nodes():
            # Search the file list of the last search while MySQL computes the fingerprint of the
            # rows it came from. The answer is kept only when the fingerprint is unchanged, so a
            # file flushed before this request arrived is never missed (the query starts after
            # the request came in); otherwise the list is read again and the search redone.
            fresh = self._pool.submit(self.meta.fingerprint, param.collection_name)
            reply, side = self._routed(cached, request, nq, param.topk, fallback, commit=False, speculative=True)
            if fresh.result() == cached.fingerprint:
                if reply is not None:
                    self._commit(side)
                    return reply
                found = cached  # a read node failed: the normal path below suspends and reroutes
            else:
                self.stats["stale_cache"] += 1
                found = self.meta.collection_files(param.collection_name, tags)
        else:
            found = self.meta.collection_files(param.collection_name, tags)
        self._remember(key, found)
        if found is None or not found.files or not self.discovery.read_nodes():
            # unknown collection/tags (the node words the error), nothing flushed, or no read nodes
            self.stats["rw_served"] += 1
            return fallback()
        reply, side = self._routed(found, request, nq, param.topk, fallback, commit=False)
        self._commit(side)
        return reply

    def _remember(self, key: tuple[str, tuple[str, ...]], found: CollectionFiles | None) -> None:
        with self._lock:
            if found is None:
                self._files_cache.pop(key, None)
                return
            if len(self._files_cache) >= 256:
                self._files_cache.clear()
            self._files_cache[key] = found

    def _commit(self, side: dict) -> None:
        """Apply a search's bookkeeping (counters, the segments each node has now searched)."""
        for k, v in side["stats"].items():
            self.stats[k] += v
        for node, files in side["seen"].items():
            self._seen.setdefault(node, {}).update(files)
        for node in side["suspend"]:
            self.discovery.suspend(node)

    def search_in_files(self, request: bytes, context: Any) -> bytes:
        self.stats["searches"] += 1
        param = pb.SearchInFilesParam.FromString(request)
        ids = list(dict.fromkeys(param.file_id_array))
        rows = self.meta.files_by_id([int(i) for i in ids]) if all(i.isdigit() for i in ids) else []
        sp = param.search_param
        found = self.meta.collection_files(sp.collection_name) if rows else None
        if found is None or len(rows) != len(ids) or not self.discovery.read_nodes():
            self.stats["rw_served"] += 1
            return self.forward("SearchInFiles", request, context)
        files = CollectionFiles(found.name, found.metric_type, found.dimension, sorted(rows, key=lambda f: f.id))
        reply, side = self._routed(files, sp.SerializeToString(), len(sp.query_record_array), sp.topk,
                                   fallback=lambda: self.forward("SearchInFiles", request, context), commit=False)
        self._commit(side)
        return reply

    def _routed(self, found: CollectionFiles, search_param: bytes, nq: int, topk: int,
                fallback: Callable[[], bytes], commit: bool = True, speculative: bool = False) -> Any:
        """The merged reply of the read nodes for ``found`` (or ``fallback()`` when they cannot).

        With ``commit=False`` returns ``(reply, side)``: the bookkeeping (counters, segments
        searched, nodes to suspend) is applied by ``_commit(side)`` only if the caller keeps the
        reply. ``speculative``: give up (reply None) at the first node failure instead of
        rerouting, since the failure may come from a stale file list.
        """
        by_id = {f.id: f for f in found.files}
        pending: list[FileRow] = list(found.files)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        excluded: set[str] = set()
        side: dict = {"stats": {}, "seen": {}, "suspend": set()}
        counts = side["stats"]

        def done(reply: bytes) -> Any:
            if commit:
                self._commit(side)
                return reply
            return reply, side

        for _round in range(self.cfg.max_retry + 1):
            nodes = [n for n in self.discovery.live_nodes() if n not in excluded]
            if not nodes:
                break
            plan = self.ring(nodes).assign(f.id for f in pending)
            outcomes = self._fan_out(found.name, plan, by_id, search_param)
            pending = []
            for node, (ok, value, _raw) in outcomes.items():
                if ok == "final":
                    return done(value)  # a request error every node would give
                if ok == "ok":
                    try:
                        part = merging.split_reply(value.row_num, value.ids, value.distances, nq)
                    except merging.MergeError as exc:
                        log.warning("bad reply from %s: %s", node, exc)
                        ok = "failed"
                    else:
                        if part is not None:
                            parts.append(part)
                        seen = side["seen"].setdefault(node, {})
                        for fid in plan[node]:
                            seen[int(fid)] = by_id[int(fid)].updated_time
                        continue
                if speculative:
                    return None, side
                excluded.add(node)
                side["suspend"].add(node)
                counts["node_failures"] = counts.get("node_failures", 0) + 1
                pending += [by_id[int(fid)] for fid in plan[node]]
            if not pending:
                counts["routed"] = counts.get("routed", 0) + 1
                if len(plan) == 1 and _round == 0:
                    return done(outcomes[next(iter(plan))][2])  # one node served it all: its reply as is
                d, i = merging.merge(parts, topk, found.metric_type)
                return done(topk_reply(d, i, nq))
            counts["rerouted_files"] = counts.get("rerouted_files", 0) + len(pending)
        if speculative:
            return None, side
        # no read node could serve every file: the rw node answers the whole search
        counts["rw_served"] = counts.get("rw_served", 0) + 1
        return done(fallback())

    def _fan_out(self, collection: str, plan: dict[str, list[str]], by_id: dict[int, FileRow],
                 search_param: bytes) -> dict[str, tuple[str, Any, bytes]]:
        """SearchInFiles on each node at once -> node -> (outcome, value, raw reply).

        outcome "ok" (value: TopKQueryResult), "final" (a request error to return), "failed" (why).
        Blocking calls: this thread serves one node, pool threads the others. (A grpc ``future``
        starts a channel polling thread per call on an idle channel, which cost more than the
        search itself.)
        """
        items = list(plan.items())
        futures = [(node, self._pool.submit(self._search_node, node, collection, fids, by_id, search_param))
                   for node, fids in items[1:]]
        out = {}
        if items:
            node, fids = items[0]
            out[node] = self._search_node(node, collection, fids, by_id, search_param)
        for node, fut in futures:
            out[node] = fut.result()
        return out

    def _search_node(self, node: str, collection: str, fids: list[str], by_id: dict[int, FileRow],
                     search_param: bytes) -> tuple[str, Any, bytes]:
        try:
            self._reload_if_changed(node, collection, fids, by_id)
            body = search_in_files_bytes(fids, search_param)
            raw = self.client(node).method("SearchInFiles")(body, timeout=self.cfg.search_timeout)
        except _NodeFailed as exc:
            return ("failed", str(exc), b"")
        except grpc.RpcError as exc:
            log.warning("read node %s failed: %s", node, exc.code().name)
            return ("failed", exc.code().name, b"")
        res = pb.TopKQueryResult.FromString(raw)
        code = res.status.error_code
        if code == 0:
            return ("ok", res, raw)
        if code in FINAL_CODES:
            return ("final", raw, raw)
        log.warning("read node %s answered %s: %s", node, code, res.status.reason)
        return ("failed", res.status.reason, raw)

    def _reload_if_changed(self, node: str, collection: str, fids: list[str], by_id: dict[int, FileRow]) -> None:
        seen = self._seen.get(node, {})
        stale = [f for f in fids if int(f) in seen and seen[int(f)] < by_id[int(f)].updated_time]
        if not stale:
            return
        req = pb.ReLoadSegmentsParam(collection_name=collection, segment_id_array=stale).SerializeToString()
        try:
            raw = self.client(node).method("ReloadSegments")(req, timeout=self.cfg.search_timeout)
        except grpc.RpcError as exc:
            raise _NodeFailed(f"ReloadSegments: {exc.code().name}") from None
        st = status_pb.Status.FromString(raw)
        if st.error_code:
            raise _NodeFailed(f"ReloadSegments: {st.reason}")
        self.stats["reloads"] += len(stale)

    # -- Cmd and introspection --------------------------------------------------------------
    def topology(self) -> dict:
        nodes = self.discovery.read_nodes()
        live = self.discovery.live_nodes()
        return {
            "router": f"{self.cfg.server_bind}:{self.cfg.server_port}",
            "woserver": self.discovery.woserver(),
            "discovery": self.cfg.discovery,
            "read_nodes": nodes,
            "live_nodes": live,
            "suspended": self.discovery.suspended(),
            "max_retry": self.cfg.max_retry,
            "stats": dict(self.stats),
        }

    def routing(self, collection: str, tags: Sequence[str] = ()) -> dict:
        """The ring and the file -> node map a search of ``collection`` would use now."""
        live = self.discovery.live_nodes()
        ring = self.ring(live)
        found = self.meta.collection_files(collection, list(tags))
        files = found.files if found else []
        plan = ring.assign(f.id for f in files) if live else {}
        node_of = {fid: n for n, fids in plan.items() for fid in fids}
        return {
            "collection": collection,
            "nodes": list(ring.nodes),
            "ring": [[round(p, 6), n] for p, n in ring.points()],
            "files": [
                {"id": f.id, "table_id": f.table_id, "partition_tag": f.partition_tag or "_default",
                 "file_type": f.file_type, "row_count": f.row_count, "updated_time": f.updated_time,
                 "position": round(ring.position(f.id), 6), "node": node_of.get(str(f.id), self.discovery.woserver())}
                for f in files
            ],
            "by_node": plan,
        }

    def cmd(self, request: bytes, context: Any) -> bytes:
        text = pb.Command.FromString(request).cmd.strip()
        verb, _, arg = text.partition(" ")
        arg = arg.strip()
        try:
            if verb == "conn_stats":
                return self._string(json.dumps(self.topology()))
            if verb == "add_node":
                self.discovery.add(arg)
                return self._string(json.dumps(self.topology()))
            if verb == "remove_node":
                self.discovery.remove(arg)
                return self._string(json.dumps(self.topology()))
            if verb == "refresh_nodes":
                self.discovery.refresh()
                return self._string(json.dumps(self.topology()))
            if verb == "routing":
                name, *tags = arg.split()
                return self._string(json.dumps(self.routing(name, tags)))
        except (LabError, ValueError) as exc:
            return pb.StringReply(status=status_pb.Status(error_code=5, reason=f"router: {exc}")).SerializeToString()
        return self.forward("Cmd", request, context)

    @staticmethod
    def _string(text: str) -> bytes:
        return pb.StringReply(status=status_pb.Status(), string_reply=text).SerializeToString()


SERVER_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.so_reuseport", 0),
]


def serve(cfg: RouterConfig) -> tuple[grpc.Server, Router]:
    """Start the router's gRPC server (non-blocking); returns the server and its Router."""
    router = Router(cfg)
    server = grpc.server(ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix="rpc"),
                         options=SERVER_OPTIONS)
    server.add_generic_rpc_handlers([router.handler()])
    bound = server.add_insecure_port(f"{cfg.server_bind}:{cfg.server_port}")
    if not bound:
        router.close()
        raise LabError(f"The router cannot listen on {cfg.server_bind}:{cfg.server_port} (port in use?).")
    cfg.server_port = bound
    server.start()
    log.info("router listening on %s:%s, rw %s, read nodes %s", cfg.server_bind, bound,
             cfg.woserver or "(lab state)", ",".join(router.discovery.read_nodes()) or "(none)")
    return server, router


def wait_forever(server: grpc.Server, stop: threading.Event) -> None:
    while not stop.is_set():
        stop.wait(0.5)
    server.stop(grace=1.0).wait(5)
    time.sleep(0)
