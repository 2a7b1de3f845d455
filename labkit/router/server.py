"""The router's gRPC service: Milvus 1.1 wire protocol in front of a cluster of lab nodes.

Every RPC but the searches is passed through to the rw node as raw bytes (a generic handler
with identity (de)serializers: big inserts are never decoded); ReloadSegments, PreloadCollection
and ReleaseCollection go to every node; writes that change segment files refresh the router's
file lists; ``Cmd`` answers the router's own introspection verbs. Search and SearchInFiles are
routed over the read nodes by ``labkit.router.search``.
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

from labkit.errors import LabError
from labkit.milvus import frames
from labkit.milvus.defaults import DEFAULT_TAG, MAX_MESSAGE, VERSION
from labkit.milvus.proto import messages
from labkit.milvus.status import Code
from labkit.router.config import RouterConfig
from labkit.router.counters import Counters
from labkit.router.discovery import Discovery
from labkit.router.frame_link import FrameError, FrameLink
from labkit.router.meta import MetaReader
from labkit.router.meta_watch import MetaWatch
from labkit.router.placement import PlacementSender
from labkit.router.ring import Ring
from labkit.router.search import SearchRouter

log = logging.getLogger("labkit.router")

pb, status_pb, _ = messages()
SERVICE = "milvus.grpc.MilvusService"
PREFIX = f"/{SERVICE}/"
_METHODS = {m.name: m for m in pb.DESCRIPTOR.services_by_name["MilvusService"].methods}

CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", -1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
]
_NO_TIMEOUT = 3600.0  # a framed call without a deadline still ends (gRPC's would wait forever)


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


def error_reply(method: str, code: int, reason: str) -> bytes:
    """The method's own reply type carrying ``Status{code, reason}``."""
    out_name = _METHODS[method].output_type.name if method in _METHODS else "Status"
    stat = status_pb.Status(error_code=code, reason=reason)
    if out_name == "Status":
        return stat.SerializeToString()
    return getattr(pb, out_name)(status=stat).SerializeToString()


class NodeClient:
    """One reused channel per node; raw-bytes callables per method, each call counted and timed.

    With ``frames``, the per-search methods (``labkit.milvus.frames.METHODS``) go over a framed TCP
    link when the node offers one (``labkit.router.frame_link``), over the channel otherwise.
    """

    def __init__(self, addr: str, frames_on: bool = True) -> None:
        self.addr = addr
        self.channel = grpc.insecure_channel(addr, options=CHANNEL_OPTIONS)
        self.link = FrameLink(addr, self._ask_frame_port) if frames_on else None
        self._calls: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.called_times = 0
        self.total_time = 0.0  # seconds, summed over finished calls

    def method(self, name: str) -> Any:
        call = self._calls.get(name)
        if call is None:
            stub = self.channel.unary_unary(PREFIX + name)
            if self.link is not None and name in frames.METHODS:
                stub = _Framed(name, self.link, stub)
            call = self._calls[name] = _Timed(stub, self._record)
        return call

    def link_info(self) -> dict:
        """How the per-search calls reach this node: frames (with the node's frame port) or grpc."""
        if self.link is None or not self.link.usable() or self.link.port is None:
            return {"link": "grpc", "frame_port": None}
        return {"link": "frames", "frame_port": self.link.port}

    def _ask_frame_port(self, timeout: float) -> str:
        raw = self.method("Cmd")(pb.Command(cmd=frames.FRAME_CMD).SerializeToString(), timeout=timeout)
        reply = pb.StringReply.FromString(raw)
        return reply.string_reply if reply.status.error_code == Code.SUCCESS else ""

    def _record(self, seconds: float) -> None:
        with self._lock:
            self.called_times += 1
            self.total_time += seconds

    def stats(self) -> dict:
        """pymilvus 1.x's pool ``stats()`` shape, which Mishards's conn_stats reports per node."""
        with self._lock:
            conns = {str(id(self.channel)): {"total_time": self.total_time,
                                             "called_times": self.called_times}}
            return {"connections": conns, "max-time": self.total_time, "num": 1 if self.called_times else 0}

    def close(self) -> None:
        if self.link is not None:
            self.link.close()
        self.channel.close()


class _Framed:
    """``name`` over the node's frame link while it has one, else its gRPC stub (same bytes either way)."""

    def __init__(self, name: str, link: FrameLink, stub: Any) -> None:
        self._name, self._link, self._stub = name, link, stub

    def __call__(self, request: bytes, timeout: float | None = None) -> bytes:
        if self._link.usable():
            try:
                return self._link.call(self._name, request, timeout if timeout is not None else _NO_TIMEOUT)
            except FrameError as exc:
                if exc.code() != grpc.StatusCode.UNIMPLEMENTED:
                    raise
                # a node without frames (a real Milvus 1.1 image): gRPC, as Mishards calls it
        return self._stub(request, timeout=timeout)

    def future(self, request: bytes, **kw: Any) -> Any:
        return self._stub.future(request, **kw)


class _Timed:
    """A gRPC unary callable whose calls (direct or ``future``) report their duration."""

    def __init__(self, call: Any, record: Callable[[float], None]) -> None:
        self._call, self._record = call, record

    def __call__(self, request: bytes, **kw: Any) -> bytes:
        started = time.perf_counter()
        try:
            return self._call(request, **kw)
        finally:
            self._record(time.perf_counter() - started)

    def future(self, request: bytes, **kw: Any) -> Any:
        started = time.perf_counter()
        fut = self._call.future(request, **kw)
        fut.add_done_callback(lambda _f: self._record(time.perf_counter() - started))
        return fut


class Router:
    """Routing logic and state; ``handler()`` exposes it as a grpc generic handler."""

    def __init__(self, cfg: RouterConfig, meta: MetaReader | None = None) -> None:
        self.cfg = cfg
        self.discovery = Discovery(cfg)
        self.meta = meta or MetaReader(cfg.db, echo=cfg.sql_echo, pool_size=cfg.pool_size,
                                       max_overflow=cfg.max_overflow, pool_recycle=cfg.pool_recycle,
                                       pool_timeout=cfg.pool_timeout, pre_ping=cfg.pool_pre_ping)
        self._clients: dict[str, NodeClient] = {}
        self._rings: dict[tuple[str, ...], Ring] = {}
        self._lock = threading.Lock()
        self.stats = Counters(["searches", "routed", "rw_served", "rerouted_files", "node_failures",
                               "reloads", "forwarded", "stale_cache", "watched"])
        self._pool = ThreadPoolExecutor(max_workers=cfg.max_workers, thread_name_prefix="fanout")
        # the rw node's change messages: kept file lists searched without a metadata read
        self.watch = MetaWatch(self.discovery.woserver, lambda addr: self.client(addr).channel,
                               lambda addr, req, t: self.client(addr).method("Cmd")(req, timeout=t),
                               lambda: self.cfg.server_port)
        self.searches = SearchRouter(cfg, self.discovery, self.meta, self.stats, self.client, self.ring,
                                     self._pool, self.watch)
        self.discovery.set_prober(self.probe)
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
                c = self._clients[addr] = NodeClient(addr, self.cfg.node_frames)
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

    def probe(self, node: str) -> bool:
        """Whether ``node`` answers a status command within a second (a suspended node returns then)."""
        try:
            raw = self.client(node).method("Cmd")(pb.Command(cmd="status").SerializeToString(), timeout=1.0)
        except grpc.RpcError:
            return False
        return pb.StringReply.FromString(raw).status.error_code == Code.SUCCESS
    def _cmd_call(self, addr: str, request: bytes) -> bytes:
        return self.client(addr).method("Cmd")(request, timeout=min(self.cfg.search_timeout, 2.0))

    def close(self) -> None:
        self.watch.stop()
        self.placement.stop()
        self.searches.close()
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
                return error_reply(name, Code.UNEXPECTED_ERROR, f"router: {exc}")
            except grpc.RpcError:
                raise
            except Exception as exc:  # noqa: BLE001 - any bug must still answer with a Status
                log.exception("%s failed", name)
                return error_reply(name, Code.UNEXPECTED_ERROR, f"router: {type(exc).__name__}: {exc}")
        return run

    # -- pass-through ----------------------------------------------------------------------
    def forward(self, name: str, request: bytes, context: Any, addr: str | None = None) -> bytes:
        """Send the raw request to the rw node (or ``addr``) and return its raw reply."""
        addr = addr or self.rw()
        self.stats.add("forwarded")
        try:
            return self.client(addr).method(name)(request)
        except grpc.RpcError as exc:
            code = exc.code()
            if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return error_reply(name, Code.UNEXPECTED_ERROR,
                                   f"router: node {addr} is unreachable ({code.name})")
            if context is not None:
                context.abort(code, exc.details() or code.name)
            raise

    def forward_and_refresh(self, name: str, request: bytes, context: Any) -> bytes:
        """Forward a write that changes segment files, then re-read the kept file lists it touched."""
        reply = self.forward(name, request, context)
        self.searches.refresh(written_collections(name, request), name)
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
                return error_reply(name, Code.UNEXPECTED_ERROR,
                                   f"router: {name} on {addr} failed ({exc.code().name})")
            if first is None:
                first = raw
            if status_pb.Status.FromString(raw).error_code:
                return raw
        # a successful Status serializes to b"": test for None, not falsiness
        if first is not None:
            return first
        return error_reply(name, Code.UNEXPECTED_ERROR, "router: no node answered")

    # -- search ----------------------------------------------------------------------------
    def search(self, request: bytes, context: Any) -> bytes:
        """Search, routed over the read nodes (``SearchRouter.search``); the rw node as fallback."""
        return self.searches.search(request, lambda: self.forward("Search", request, context))

    def search_in_files(self, request: bytes, context: Any) -> bytes:
        """SearchInFiles, routed like Search (``SearchRouter.search_in_files``)."""
        return self.searches.search_in_files(request, lambda: self.forward("SearchInFiles", request, context))

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
            "stats": self.stats.snapshot(),
            "timings": self.searches.timings.snapshot(),  # seconds per stage of routed searches
            "meta_watch": self.watch.info(),
            "links": {n: self.client(n).link_info() for n in nodes},
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
                {"id": f.id, "table_id": f.table_id, "partition_tag": f.partition_tag or DEFAULT_TAG,
                 "file_type": f.file_type, "row_count": f.row_count, "updated_time": f.updated_time,
                 "position": round(ring.position(f.id), 6),
                 "node": node_of.get(str(f.id), self.discovery.woserver())}
                for f in files
            ],
            "by_node": plan,
        }

    def conn_stats(self) -> dict:
        """Each read node as its own group (Mishards's static discovery), with its call count and time."""
        return {addr: {addr: self.client(addr).stats()} for addr in self.discovery.live_nodes()}

    def cmd(self, request: bytes, context: Any) -> bytes:
        text = pb.Command.FromString(request).cmd.strip()
        verb, _, arg = text.partition(" ")
        arg = arg.strip()
        try:
            if verb == "conn_stats":  # Mishards: {group: {node: pool stats}} of the read nodes
                return self._string(json.dumps(self.conn_stats(), indent=2))
            if verb == "labkit_topology":
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
            if verb == "labkit_meta_changed":  # from the rw node, before it acknowledges a change
                self.watch.changed(arg)
                return self._string("OK")
            if verb == "routing":
                name, *tags = arg.split()
                return self._string(json.dumps(self.routing(name, tags)))
            # pymilvus checks server_version when it connects and pings with status: the router
            # answers both itself, so clients connect while the rw node is down (searches still work)
            if text == "version":
                return self._string(VERSION)
            if text == "status":
                return self._string("OK")
        except (LabError, ValueError) as exc:
            bad = status_pb.Status(error_code=Code.ILLEGAL_ARGUMENT, reason=f"router: {exc}")
            return pb.StringReply(status=bad).SerializeToString()
        return self.forward("Cmd", request, context)

    @staticmethod
    def _string(text: str) -> bytes:
        return pb.StringReply(status=status_pb.Status(), string_reply=text).SerializeToString()


SERVER_OPTIONS = [
    ("grpc.max_send_message_length", -1),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
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
    router.watch.start()
    log.info("router listening on %s:%s, rw %s, read nodes %s", cfg.server_bind, bound,
             cfg.woserver or "(lab state)", ",".join(router.discovery.read_nodes()) or "(none)")
    return server, router


def wait_forever(server: grpc.Server, stop: threading.Event) -> None:
    while not stop.is_set():
        stop.wait(0.5)
    server.stop(grace=1.0).wait(5)
    time.sleep(0)
