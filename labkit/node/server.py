"""The MilvusService of Milvus 1.1 over a ``Store``: validation, role checks, numpy <-> wire.

All 27 core RPCs answer as 1.1 did (its status codes and encodings);
the 14 hybrid RPCs answer gRPC UNIMPLEMENTED, as 1.1's generated base class did.

Where it differs on purpose (write RPCs refused on a ro node with PERMISSION_DENIED, the extra
Cmd strings ``cache_info`` / ``labkit_stats`` / ``labkit_placement``, ...):
docs/differences-from-milvus-1.1.md.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np

from labkit.milvus import fingerprint, frames, replies
from labkit.milvus.defaults import DEFAULT_TAG, MAX_MESSAGE, VERSION
from labkit.milvus.enums import is_binary
from labkit.milvus.proto import messages
from labkit.milvus.status import Code, MilvusError
from labkit.milvus.tags import valid_tag, valid_tags
from labkit.milvus.timing import Clock, StageTimes
from labkit.node import validation as check
from labkit.node import wire
from labkit.node.config import NodeConfig
from labkit.node.meta_watch import peer_host
from labkit.node.search_snapshot import SearchSnapshot

if TYPE_CHECKING:
    from labkit.node.store import Store

pb, status_pb, pb_grpc = messages()
log = logging.getLogger("labkit.node")

SERVICE = "milvus.grpc.MilvusService"
_SERVICE_DESCRIPTOR = pb.DESCRIPTOR.services_by_name["MilvusService"]

WRITE_RPCS = frozenset({
    "CreateCollection", "DropCollection", "CreateIndex", "DropIndex", "CreatePartition",
    "DropPartition", "Insert", "DeleteByID", "Flush", "Compact",
})
HYBRID_RPCS = (
    "CreateHybridCollection", "HasHybridCollection", "DropHybridCollection", "DescribeHybridCollection",
    "CountHybridCollection", "ShowHybridCollections", "ShowHybridCollectionInfo", "PreloadHybridCollection",
    "InsertEntity", "HybridSearch", "HybridSearchInSegments", "GetEntityByID", "GetEntityIDs",
    "DeleteEntitiesByID",
)


def _reply(reply_type: type | None) -> Callable:
    """Run the handler; a MilvusError (or any bug) becomes the reply's Status, never a gRPC error."""

    def deco(fn: Callable) -> Callable:
        def call(self: MilvusServicer, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                if fn.__name__ in WRITE_RPCS and self.role == "ro":
                    raise MilvusError(
                        Code.PERMISSION_DENIED,
                        f"{fn.__name__} refused: this node is read-only (cluster.role: ro); "
                        "send writes to the rw node or through the router.")
                return fn(self, request, context)
            except MilvusError as exc:
                st = wire.status(exc.code, exc.reason)
            except Exception as exc:  # a bug must not kill the connection; report it as 1
                log.exception("%s failed", fn.__name__)
                st = wire.status(Code.UNEXPECTED_ERROR, f"{fn.__name__} failed: {type(exc).__name__}: {exc}")
            return st if reply_type is None else reply_type(status=st)

        @functools.wraps(fn)
        def wrapper(self: MilvusServicer, request: Any, context: grpc.ServicerContext) -> Any:
            if self.metrics is None:
                return call(self, request, context)
            started = time.perf_counter()
            reply = call(self, request, context)
            st = reply.status if reply_type is not None else reply
            self.metrics.observe_rpc(fn.__name__, time.perf_counter() - started, st.error_code == 0,
                                     _rows(request, reply))
            return reply

        return wrapper

    return deco


class MilvusServicer:
    """One instance per node process, over a ``labkit.node.store.Store``."""

    def __init__(self, store: Store, config: NodeConfig) -> None:
        self.store = store
        self.config = config
        self.role = config.role
        self.started = time.time()
        self.metrics: Any = None  # labkit.node.metrics.NodeMetrics when metric.enable is true
        self._stats_lock = threading.Lock()
        self.stats = {"insert_calls": 0, "insert_rows": 0, "insert_bytes": 0, "insert_decode_seconds": 0.0,
                      "last_insert_decode_seconds": 0.0, "insert_fast_path": 0}
        self.timings = StageTimes()  # seconds per stage of Search / SearchInFiles (labkit_stats)
        self.frame_port: int | None = None  # labkit.node.frame_server's port, once it listens

    # -- helpers ----------------------------------------------------------------------------
    def _schema(self, name: str) -> dict:
        check.collection_name(name)
        return self.store.describe_collection(name)  # missing -> 4

    def _queries(self, records, snapshot: SearchSnapshot) -> np.ndarray:
        data = wire.records_to_array(records)
        return check.vectors(data, snapshot.dim, snapshot.metric)

    # -- collections ------------------------------------------------------------------------
    @_reply(None)
    def CreateCollection(self, request, context):
        name = check.collection_name(request.collection_name)
        check.dimension(request.dimension, request.metric_type)
        check.index_file_size(request.index_file_size)
        check.metric_type(request.metric_type)
        self.store.create_collection(name, request.dimension, request.index_file_size, request.metric_type)
        return wire.status()

    @_reply(pb.BoolReply)
    def HasCollection(self, request, context):
        name = check.collection_name(request.collection_name)
        return pb.BoolReply(status=wire.status(), bool_reply=bool(self.store.has_collection(name)))

    @_reply(pb.CollectionSchema)
    def DescribeCollection(self, request, context):
        s = self._schema(request.collection_name)
        return pb.CollectionSchema(status=wire.status(), collection_name=s["name"], dimension=s["dim"],
                                   index_file_size=s["index_file_size_mb"], metric_type=s["metric"])

    @_reply(pb.CollectionRowCount)
    def CountCollection(self, request, context):
        self._schema(request.collection_name)
        return pb.CollectionRowCount(status=wire.status(),
                                     collection_row_count=int(self.store.count(request.collection_name)))

    @_reply(pb.CollectionNameList)
    def ShowCollections(self, request, context):
        return pb.CollectionNameList(status=wire.status(), collection_names=self.store.list_collections())

    @_reply(pb.CollectionInfo)
    def ShowCollectionInfo(self, request, context):
        self._schema(request.collection_name)
        info = self.store.stats(request.collection_name)
        return pb.CollectionInfo(status=wire.status(), json_info=json.dumps(info))

    @_reply(None)
    def DropCollection(self, request, context):
        self._schema(request.collection_name)
        self.store.drop_collection(request.collection_name)
        return wire.status()

    # -- indexes ----------------------------------------------------------------------------
    @_reply(None)
    def CreateIndex(self, request, context):
        self._schema(request.collection_name)
        params = check.json_params(request.extra_params, "index params")
        self.store.create_index(request.collection_name, request.index_type, params)
        return wire.status()

    @_reply(pb.IndexParam)
    def DescribeIndex(self, request, context):
        self._schema(request.collection_name)
        index_type, params = self.store.describe_index(request.collection_name)
        reply = pb.IndexParam(status=wire.status(), collection_name=request.collection_name,
                              index_type=int(index_type))
        reply.extra_params.add(key="params", value=json.dumps(params or {}))
        return reply

    @_reply(None)
    def DropIndex(self, request, context):
        self._schema(request.collection_name)
        self.store.drop_index(request.collection_name)
        return wire.status()

    # -- partitions -------------------------------------------------------------------------
    @_reply(None)
    def CreatePartition(self, request, context):
        self._schema(request.collection_name)
        tag = valid_tag(request.tag)
        self.store.create_partition(request.collection_name, tag)  # refuses `_default`
        return wire.status()

    @_reply(pb.BoolReply)
    def HasPartition(self, request, context):
        self._schema(request.collection_name)
        tag = valid_tag(request.tag)
        return pb.BoolReply(status=wire.status(),
                            bool_reply=bool(self.store.has_partition(request.collection_name, tag)))

    @_reply(pb.PartitionList)
    def ShowPartitions(self, request, context):
        self._schema(request.collection_name)
        tags = list(self.store.list_partitions(request.collection_name))
        if DEFAULT_TAG in tags:  # `_default` first, as 1.1 lists it
            tags.remove(DEFAULT_TAG)
        return pb.PartitionList(status=wire.status(), partition_tag_array=[DEFAULT_TAG, *tags])

    @_reply(None)
    def DropPartition(self, request, context):
        self._schema(request.collection_name)
        tag = valid_tag(request.tag)
        self.store.drop_partition(request.collection_name, tag)  # refuses `_default`
        return wire.status()

    # -- data -------------------------------------------------------------------------------
    @_reply(pb.VectorIds)
    def Insert(self, request: bytes, context):
        req = wire.decode_insert(request)
        name = check.collection_name(req.collection_name)
        vectors = req.vectors
        if vectors.size == 0:
            raise MilvusError(Code.ILLEGAL_ROWRECORD,
                              "The vector array is empty. Make sure you have entered vector records.")
        user_ids = check.ids(req.ids, vectors.shape[0])
        tag = valid_tag(req.partition_tag) if req.partition_tag else ""
        s = self.store.describe_collection(name)
        check.vectors(vectors, s["dim"], s["metric"])
        ids = self.store.insert(name, tag, vectors, user_ids)
        with self._stats_lock:
            st = self.stats
            st["insert_calls"] += 1
            st["insert_rows"] += int(vectors.shape[0])
            st["insert_bytes"] += len(request)
            st["insert_decode_seconds"] += req.decode_seconds
            st["last_insert_decode_seconds"] = req.decode_seconds
            st["insert_fast_path"] += int(req.fast_path)
        return wire.vector_ids(ids)

    @_reply(pb.VectorsData)
    def GetVectorsByID(self, request, context):
        s = self._schema(request.collection_name)
        ids = check.entity_ids(np.asarray(request.id_array, dtype=np.int64))
        found = self.store.get_vectors(request.collection_name, ids, request.partition_tag)
        reply = pb.VectorsData(status=wire.status())
        binary = is_binary(s["metric"])
        for vec in found:
            rec = reply.vectors_data.add()
            if vec is None:
                continue  # missing id -> empty record (the client shows [])
            if binary:
                rec.binary_data = np.asarray(vec, dtype=np.uint8).tobytes()
            else:
                rec.float_data.extend(np.asarray(vec, dtype=np.float32).tolist())
        return reply

    @_reply(pb.VectorIds)
    def GetVectorIDs(self, request, context):
        self._schema(request.collection_name)
        if not request.segment_name:
            raise MilvusError(Code.ILLEGAL_ARGUMENT, "Segment name should not be empty.")
        ids = self.store.list_ids_in_segment(request.collection_name, request.segment_name)
        return wire.vector_ids(ids)

    @_reply(None)
    def DeleteByID(self, request, context):
        self._schema(request.collection_name)
        ids = np.asarray(request.id_array, dtype=np.int64)
        if ids.size == 0:
            raise MilvusError(Code.ILLEGAL_ARGUMENT, "No vector id specified.")
        self.store.delete(request.collection_name, ids, request.partition_tag)
        return wire.status()

    @_reply(None)
    def Flush(self, request, context):
        names = [n for n in request.collection_name_array if n]
        for name in names:
            self._schema(name)
        self.store.flush(names or None)
        return wire.status()

    @_reply(None)
    def Compact(self, request, context):
        self._schema(request.collection_name)
        self.store.compact(request.collection_name)
        return wire.status()

    # -- search -----------------------------------------------------------------------------
    @_reply(pb.TopKQueryResult)
    def Search(self, request, context):
        clock = Clock()
        name = check.collection_name(request.collection_name)
        snap = self.store.search_snapshot(name)  # one meta read serves the checks and the search
        clock.lap("meta")
        k, params = check.search_params(snap.index_type, request.topk, request.extra_params)
        tags = valid_tags(request.partition_tag_array)
        queries = self._queries(request.query_record_array, snap)
        clock.lap("decode")
        dist, ids = self.store.search(name, tags, queries, k, params, snapshot=snap)
        clock.lap("search")
        reply = replies.topk_result(dist, ids)
        clock.lap("reply")
        self.timings.record("Search", clock.stages)
        return reply

    @_reply(pb.TopKQueryResult)
    def SearchInFiles(self, request, context):
        clock = Clock()
        param = request.search_param
        name = check.collection_name(param.collection_name)
        try:
            file_ids, bad_ids = _file_ids(request.file_id_array), None
        except MilvusError as exc:  # reported after the collection and parameter checks
            file_ids, bad_ids = [], exc
        # the kept snapshot Search uses (and preload refreshes); no meta read when it has the file
        # list the router just checked against the meta (sent along in extra_params)
        file_list = next((fingerprint.from_text(kv.value) for kv in param.extra_params
                          if kv.key == fingerprint.FILE_LIST_KEY), None)
        snap = self.store.search_snapshot_for_files(name, file_ids, file_list)
        clock.lap("meta")
        k, params = check.search_params(snap.index_type, param.topk, param.extra_params)
        if bad_ids is not None:
            raise bad_ids
        queries = self._queries(param.query_record_array, snap)
        clock.lap("decode")
        dist, ids = self.store.search_in_files(name, file_ids, queries, k, params, snapshot=snap)
        clock.lap("search")
        reply = replies.topk_result(dist, ids)
        clock.lap("reply")
        self.timings.record("SearchInFiles", clock.stages)
        return reply

    @_reply(pb.TopKQueryResult)
    def SearchByID(self, request, context):
        name = check.collection_name(request.collection_name)
        snap = self.store.search_snapshot(name)
        k, params = check.search_params(snap.index_type, request.topk, request.extra_params)
        tags = valid_tags(request.partition_tag_array)
        ids = check.entity_ids(np.asarray(request.id_array, dtype=np.int64))
        found = self.store.get_vectors(name, ids)
        missing = [int(i) for i, v in zip(ids, found, strict=True) if v is None]
        if missing:
            raise MilvusError(Code.ILLEGAL_ARGUMENT, f"Vector ids not found: {missing[:10]}")
        queries = np.stack([np.asarray(v) for v in found])
        dist, out = self.store.search(name, tags, queries, k, params, snapshot=snap)
        return replies.topk_result(dist, out)

    # -- memory -----------------------------------------------------------------------------
    @_reply(None)
    def PreloadCollection(self, request, context):
        self._schema(request.collection_name)
        tags = valid_tags(request.partition_tag_array) or None
        self.store.load(request.collection_name, tags)
        return wire.status()

    @_reply(None)
    def ReleaseCollection(self, request, context):
        self._schema(request.collection_name)
        self.store.release(request.collection_name)
        return wire.status()

    @_reply(None)
    def ReloadSegments(self, request, context):
        self._schema(request.collection_name)
        self.store.reload_segments(request.collection_name, _file_ids(request.segment_id_array))
        return wire.status()

    # -- Cmd --------------------------------------------------------------------------------
    @_reply(pb.StringReply)
    def Cmd(self, request, context):
        return pb.StringReply(status=wire.status(), string_reply=self._cmd(request.cmd.strip(), context))

    def _cmd(self, cmd: str, context: Any = None) -> str:
        if cmd == "version":
            return VERSION
        if cmd == "status":
            return "OK"
        if cmd == "mode":
            return "CPU"
        if cmd == "tasktable":
            return ""
        if cmd == "build_commit_id":
            return "labkit"
        if cmd == "get_system_info":
            return json.dumps(_system_info())
        if cmd.startswith(("get_config", "set_config")):
            return self.config.cli(cmd)
        if cmd == frames.FRAME_CMD:  # labkit extension, asked by the router
            return json.dumps({"port": self.frame_port})
        if cmd == "cache_info":  # labkit extension
            return json.dumps(self.store.cache_info())
        if cmd.startswith("labkit_placement "):  # labkit extension, sent by the router
            try:
                spec = json.loads(cmd.partition(" ")[2])
                done = self.store.set_placement(str(spec["me"]), [str(n) for n in spec["nodes"]],
                                                float(spec.get("ttl_s", 10.0)))
            except (ValueError, KeyError, TypeError) as exc:
                raise MilvusError(Code.ILLEGAL_ARGUMENT, f"labkit_placement needs JSON "
                                  f'{{"me": "host:port", "nodes": [...], "ttl_s": 10}}: {exc}') from None
            return json.dumps(done)
        if cmd.startswith(("labkit_meta_watch ", "labkit_meta_unwatch ")):  # labkit extension, by the router
            return self._meta_watch(cmd, context)
        if cmd == "labkit_stats":  # labkit extension
            meta_ok = self.store.meta_reachable()  # a node without its metadata is not healthy
            with self._stats_lock:
                stats = dict(self.stats)
            return json.dumps({**stats, "role": self.role, "pid": os.getpid(),
                               "uptime_s": time.time() - self.started, "meta_ok": meta_ok,
                               "timings": self.timings.snapshot(), "snapshots": self.store.snapshot_stats(),
                               "meta_watch": self.store.meta_watch_stats()})
        return "Unknown command"

    def _meta_watch(self, cmd: str, context: Any) -> str:
        """A router's lease on being told of file-list changes (``labkit.node.meta_watch``)."""
        verb, _, arg = cmd.partition(" ")
        if self.role == "ro":
            raise MilvusError(Code.ILLEGAL_ARGUMENT, f"{verb}: only the rw node writes the metadata")
        try:
            spec = json.loads(arg)
            host = peer_host(context.peer())
            if verb == "labkit_meta_unwatch":
                return json.dumps(self.store.unwatch_meta(host, int(spec["port"])))
            return json.dumps(self.store.watch_meta(host, int(spec["port"]), float(spec["lease_s"])))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MilvusError(Code.ILLEGAL_ARGUMENT, f'{verb} needs JSON {{"port": 19530, "lease_s": 2}} '
                              f"from a gRPC caller: {exc}") from None


def _rows(request: Any, reply: Any) -> int:
    """Vectors an Insert stored or a search asked about, for the metrics."""
    if hasattr(reply, "vector_id_array"):
        return len(reply.vector_id_array)
    for attr in ("query_record_array", "id_array"):
        if hasattr(request, attr):
            return len(getattr(request, attr))
    if hasattr(request, "search_param"):
        return len(request.search_param.query_record_array)
    return 0


def _file_ids(values) -> list[int]:
    out = []
    for v in values:
        try:
            out.append(int(v))
        except ValueError:
            raise MilvusError(Code.ILLEGAL_ARGUMENT,
                              f"Invalid file id {v!r}: file ids are TableFiles.id numbers.") from None
    if not out:
        raise MilvusError(Code.ILLEGAL_ARGUMENT, "No file id specified.")
    return out


def _system_info() -> dict:
    info: dict[str, Any] = {"system": platform.system(), "cpu_num": os.cpu_count()}
    try:
        import psutil

        vm = psutil.virtual_memory()
        info.update(memory_total=vm.total, memory_available=vm.available)
    except ImportError:  # pragma: no cover
        pass
    return info


def _unimplemented(name: str) -> Callable:
    def handler(request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{name} is part of the hybrid API that Milvus 1.x "
                                                     "does not implement.")

    return handler


def _message_types(method: Any) -> tuple[type, type]:
    """The request and reply message classes of a MilvusService method descriptor."""
    out_name = method.output_type.name
    return getattr(pb, method.input_type.name), getattr(pb, out_name, None) or getattr(status_pb, out_name)


def method_handlers(servicer: MilvusServicer) -> grpc.GenericRpcHandler:
    """Handlers for every MilvusService method; Insert gets raw bytes (see ``wire.decode_insert``)."""
    handlers = {}
    for method in _SERVICE_DESCRIPTOR.methods:
        req_cls, resp_cls = _message_types(method)
        if method.name in HYBRID_RPCS:
            fn = _unimplemented(method.name)
        else:
            fn = getattr(servicer, method.name)
        deserializer = None if method.name == "Insert" else req_cls.FromString
        handlers[method.name] = grpc.unary_unary_rpc_method_handler(
            fn, request_deserializer=deserializer, response_serializer=resp_cls.SerializeToString)
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


def frame_handlers(servicer: MilvusServicer) -> dict[str, Callable[[bytes], bytes]]:
    """The methods served over frames (``labkit.milvus.frames``): bytes in, bytes out, as over gRPC."""
    out: dict[str, Callable[[bytes], bytes]] = {}
    for name in frames.METHODS:
        req_cls, _ = _message_types(_SERVICE_DESCRIPTOR.methods_by_name[name])
        fn = getattr(servicer, name)
        out[name] = lambda body, _fn=fn, _req=req_cls: _fn(_req.FromString(body), None).SerializeToString()
    port = str(servicer.config.port).encode()
    out[frames.HELLO] = lambda body: port
    return out


def build_server(servicer: MilvusServicer, address: str, port: int, max_workers: int = 16) -> grpc.Server:
    """A started-ready gRPC server bound to ``address:port`` (raises OSError if the port is taken)."""
    from concurrent import futures

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="milvus-rpc"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                 ("grpc.max_send_message_length", -1),
                 ("grpc.so_reuseport", 0)],
    )
    server.add_generic_rpc_handlers((method_handlers(servicer),))
    bound = server.add_insecure_port(f"{address}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {address}:{port} (port in use?)")
    return server
