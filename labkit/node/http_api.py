"""Milvus 1.1's REST API (core/src/server/web_impl) on ``network.http.port``, over the node's own RPCs.

Every endpoint turns its JSON into the MilvusService request the gRPC API would get and calls the
same servicer method, so checks, codes and messages are the gRPC ones. Replies follow 1.1's web
server: ``{"code", "message"}`` bodies on errors with HTTP 404 for a missing collection and 400
otherwise; 201 for creations, 204 for drops; ids and distances as strings in search results.
pymilvus 1.1.2's ``Milvus(handler="HTTP")`` speaks this API.

aiohttp serves it from its own thread and event loop; the RPC handlers (blocking) run in a pool.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from aiohttp import web

from labkit.milvus.enums import REST_INDEX_NAMES, MetricType, is_binary
from labkit.milvus.proto import messages
from labkit.milvus.status import Code

pb, _status_pb, _ = messages()
log = logging.getLogger("labkit.node.http")

# web-only codes of 1.1's web server (web_impl/Constants.h)
PATH_PARAM_LOSS, UNKNOWN_PATH, QUERY_PARAM_LOSS, BODY_FIELD_LOSS = 31, 32, 33, 34
ILLEGAL_BODY, BODY_PARSE_FAIL, ILLEGAL_QUERY_PARAM = 35, 36, 37

INDEX_NAMES = REST_INDEX_NAMES
INDEX_CODES = {v: k for k, v in INDEX_NAMES.items()}
METRIC_NAMES = {int(m): m.name for m in MetricType}
METRIC_CODES = {v: k for k, v in METRIC_NAMES.items()}


class WebError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = int(code), message


def _fail(code: int, message: str) -> web.Response:
    http = 404 if code == Code.COLLECTION_NOT_EXISTS else 400
    return web.json_response({"code": int(code), "message": message}, status=http)


def _ok(body: dict | None = None, status: int = 200) -> web.Response:
    if status == 204:
        return web.Response(status=204)
    return web.json_response({"code": 0, "message": "OK"} if body is None else body, status=status)


def _check(st: Any) -> None:
    if st.error_code != 0:
        raise WebError(st.error_code, st.reason)


def _params(obj: Any) -> list:
    return [pb.KeyValuePair(key="params", value=json.dumps(obj if obj is not None else {}))]


async def _json(request: web.Request) -> Any:
    text = await request.text()
    if not text:
        raise WebError(BODY_FIELD_LOSS, "Request payload is required.")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise WebError(BODY_PARSE_FAIL, f"json error: {exc}") from None


def _int_query(request: web.Request, key: str, default: int) -> int:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return default
    if not raw.isdigit():
        raise WebError(ILLEGAL_QUERY_PARAM,
                       f"Query param '{key}' is illegal, only non-negative integer supported")
    return int(raw)


def _ids(values: Any, field: str = "ids") -> list[int]:
    if not isinstance(values, list):
        raise WebError(ILLEGAL_BODY, f"Field \"{field}\" must be a array")
    out = []
    for v in values:
        if isinstance(v, bool) or not (isinstance(v, int)
                                       or (isinstance(v, str) and v.lstrip("-").isdigit())):
            raise WebError(ILLEGAL_BODY, f"Members in \"{field}\" must be integer string")
        out.append(int(v))
    return out


def _records(values: Any, binary: bool) -> list:
    if not isinstance(values, list):
        raise WebError(ILLEGAL_BODY, "field \"vectors\" must be a array")
    rows = []
    for vec in values:
        if not isinstance(vec, list):
            raise WebError(ILLEGAL_BODY, "A vector in field \"vectors\" must be a float array")
        try:
            rows.append(pb.RowRecord(binary_data=bytes(int(x) for x in vec)) if binary
                        else pb.RowRecord(float_data=[float(x) for x in vec]))
        except (TypeError, ValueError) as exc:
            raise WebError(BODY_PARSE_FAIL, f"json error: {exc}") from None
    return rows


class RestApi:
    """The aiohttp application over ``servicer`` (a MilvusServicer)."""

    def __init__(self, servicer: Any) -> None:
        self.s = servicer
        app = self.app = web.Application(client_max_size=512 << 20, middlewares=[self._errors])
        r = app.router
        r.add_get("/state", self.state)
        r.add_get("/devices", self.devices)
        r.add_get("/config/advanced", self.get_advanced)
        r.add_put("/config/advanced", self.set_advanced)
        r.add_get("/config/gpu_resources", self.gpu)
        r.add_put("/config/gpu_resources", self.gpu)
        r.add_get("/collections", self.list_collections)
        r.add_post("/collections", self.create_collection)
        r.add_get("/collections/{name}", self.get_collection)
        r.add_delete("/collections/{name}", self.drop_collection)
        r.add_get("/collections/{name}/indexes", self.get_index)
        r.add_post("/collections/{name}/indexes", self.create_index)
        r.add_delete("/collections/{name}/indexes", self.drop_index)
        r.add_get("/collections/{name}/partitions", self.list_partitions)
        r.add_post("/collections/{name}/partitions", self.create_partition)
        r.add_delete("/collections/{name}/partitions", self.drop_partition)
        r.add_get("/collections/{name}/segments", self.list_segments)
        r.add_get("/collections/{name}/segments/{segment}/{info}", self.segment_info)
        r.add_get("/collections/{name}/vectors", self.get_vectors)
        r.add_post("/collections/{name}/vectors", self.insert)
        r.add_put("/collections/{name}/vectors", self.vectors_op)
        r.add_get("/system/{msg}", self.system_info)
        r.add_put("/system/{op}", self.system_op)

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable) -> web.StreamResponse:
        try:
            return await handler(request)
        except WebError as exc:
            return _fail(exc.code, exc.message)
        except web.HTTPNotFound:
            return _fail(UNKNOWN_PATH, f"Unknown path: {request.path}")
        except web.HTTPException:
            raise
        except Exception as exc:  # a bug answers 1, as the gRPC side does
            log.exception("%s %s failed", request.method, request.path)
            return _fail(Code.UNEXPECTED_ERROR, f"{type(exc).__name__}: {exc}")

    async def rpc(self, method: str, request: Any) -> Any:
        """Call the servicer's RPC in the default pool (it blocks); raise WebError on a non-zero status."""
        loop = asyncio.get_running_loop()
        reply = await loop.run_in_executor(None, getattr(self.s, method), request, None)
        _check(reply.status if hasattr(reply, "status") else reply)
        return reply

    async def cmd(self, text: str) -> str:
        return (await self.rpc("Cmd", pb.Command(cmd=text))).string_reply

    # -- system -----------------------------------------------------------------------------
    async def state(self, request: web.Request) -> web.Response:
        return _ok({"code": 0, "message": "Success"})

    async def devices(self, request: web.Request) -> web.Response:
        info = json.loads(await self.cmd("get_system_info"))
        return _ok({"cpu": {"memory": int(info.get("memory_total", 0)) >> 30}, "gpus": {}})

    async def get_advanced(self, request: web.Request) -> web.Response:
        from labkit.node import config_rules as rules

        return _ok({
            "cpu_cache_capacity": rules.parse_bytes(await self.cmd("get_config cache.cache_size")),
            "cache_insert_data": rules.to_bool(await self.cmd("get_config cache.cache_insert_data")),
            "use_blas_threshold": int(await self.cmd("get_config engine_config.use_blas_threshold")),
        })

    async def set_advanced(self, request: web.Request) -> web.Response:
        body = await _json(request)
        for field in ("cpu_cache_capacity", "cache_insert_data", "use_blas_threshold"):
            if field not in body:
                raise WebError(BODY_FIELD_LOSS, f"Field '{field}' miss.")
        await self.cmd(f"set_config cache.cache_size {int(body['cpu_cache_capacity'])}")
        await self.cmd(f"set_config cache.cache_insert_data {str(bool(body['cache_insert_data'])).lower()}")
        await self.cmd(f"set_config engine_config.use_blas_threshold {int(body['use_blas_threshold'])}")
        return _ok()

    async def gpu(self, request: web.Request) -> web.Response:
        raise WebError(Code.UNEXPECTED_ERROR, "GPU resources are not available: this is a CPU node.")

    async def system_info(self, request: web.Request) -> web.Response:
        msg = request.match_info["msg"]
        if msg == "config":
            body = json.loads(await self.cmd("get_config *"))
            body["restart_required"] = bool(getattr(self.s.config, "restart_required", False))
            return _ok(body)
        reply = await self.cmd("get_system_info" if msg == "info" else msg)
        return _ok({"code": 0, "message": "OK", "reply": reply})

    async def system_op(self, request: web.Request) -> web.Response:
        op = request.match_info["op"]
        body = await _json(request)
        if op == "config":
            return await self._set_config(body)
        if op != "task":
            raise WebError(UNKNOWN_PATH, f"Unknown path: /system/{op}")
        if "load" in body or "release" in body:
            what = "load" if "load" in body else "release"
            task = body[what] or {}
            if "collection_name" not in task:
                raise WebError(BODY_FIELD_LOSS, f"Field \"{what}\" must contains collection_name")
            param = pb.PreloadCollectionParam(collection_name=str(task["collection_name"]),
                                              partition_tag_array=list(task.get("partition_tags") or []))
            await self.rpc("PreloadCollection" if what == "load" else "ReleaseCollection", param)
        elif "flush" in body:
            names = (body["flush"] or {}).get("collection_names")
            if names is None:
                raise WebError(BODY_FIELD_LOSS, "Field \"flush\" must contains collection_names")
            if not isinstance(names, list):
                raise WebError(BODY_FIELD_LOSS, "Field \"collection_names\" must be and array")
            await self.rpc("Flush", pb.FlushParam(collection_name_array=[str(n) for n in names]))
        elif "compact" in body:
            name = (body["compact"] or {}).get("collection_name")
            if not isinstance(name, str):
                raise WebError(BODY_FIELD_LOSS, "Field \"compact\" must contains collection_names")
            await self.rpc("Compact", pb.CollectionName(collection_name=name))
        else:
            raise WebError(ILLEGAL_BODY, "Unknown body")
        return _ok()

    async def _set_config(self, body: Any) -> web.Response:
        if not isinstance(body, dict):
            raise WebError(ILLEGAL_BODY, "Payload must be a map")
        cmds = []
        for section, items in body.items():
            if not isinstance(items, dict):
                raise WebError(ILLEGAL_BODY, "Invalid payload format, the root value must be json map")
            for key, value in items.items():
                if not isinstance(value, str | int | float | bool):
                    raise WebError(ILLEGAL_BODY, "Config value must be one of string, numeric or boolean")
                text = str(value).lower() if isinstance(value, bool) else str(value)
                cmds.append(f"set_config {section}.{key} {text}")
        msg = ""
        for c in cmds:
            await self.cmd(c)
            msg += c + " successfully;"
        return _ok({"code": 0, "message": msg,
                    "restart_required": bool(getattr(self.s.config, "restart_required", False))})

    # -- collections ------------------------------------------------------------------------
    async def _meta(self, name: str) -> dict:
        schema = await self.rpc("DescribeCollection", pb.CollectionName(collection_name=name))
        count = await self.rpc("CountCollection", pb.CollectionName(collection_name=name))
        index = await self.rpc("DescribeIndex", pb.CollectionName(collection_name=name))
        params = next((kv.value for kv in index.extra_params if kv.key == "params"), "{}")
        return {"collection_name": schema.collection_name, "dimension": schema.dimension,
                "index_file_size": schema.index_file_size, "index": INDEX_NAMES.get(index.index_type, "FLAT"),
                "index_params": params, "metric_type": METRIC_NAMES.get(schema.metric_type, "L2"),
                "count": count.collection_row_count}

    async def _binary(self, name: str) -> bool:
        schema = await self.rpc("DescribeCollection", pb.CollectionName(collection_name=name))
        return is_binary(schema.metric_type)

    async def list_collections(self, request: web.Request) -> web.Response:
        offset = _int_query(request, "offset", 0)
        page = _int_query(request, "page_size", 10)
        names = list((await self.rpc("ShowCollections", pb.Command(cmd=""))).collection_names)
        if request.query.get("all_required", "").lower() == "true":
            offset, page = 0, len(names)
        chosen = names[min(offset, len(names)): min(offset, len(names)) + page]
        return _ok({"collections": [await self._meta(n) for n in chosen], "count": len(names)})

    async def create_collection(self, request: web.Request) -> web.Response:
        body = await _json(request)
        for field in ("collection_name", "dimension", "index_file_size", "metric_type"):
            if field not in body:
                raise WebError(BODY_FIELD_LOSS, f"Field '{field}' is missing")
        if body["metric_type"] not in METRIC_CODES:
            raise WebError(Code.ILLEGAL_METRIC_TYPE, "metric_type is illegal")
        await self.rpc("CreateCollection", pb.CollectionSchema(
            collection_name=str(body["collection_name"]), dimension=int(body["dimension"]),
            index_file_size=int(body["index_file_size"]), metric_type=METRIC_CODES[body["metric_type"]]))
        return _ok(status=201)

    async def get_collection(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if request.query.get("info") == "stat":
            info = await self.rpc("ShowCollectionInfo", pb.CollectionName(collection_name=name))
            return _ok(json.loads(info.json_info))
        return _ok(await self._meta(name))

    async def drop_collection(self, request: web.Request) -> web.Response:
        await self.rpc("DropCollection", pb.CollectionName(collection_name=request.match_info["name"]))
        return _ok(status=204)

    # -- indexes ----------------------------------------------------------------------------
    async def get_index(self, request: web.Request) -> web.Response:
        index = await self.rpc("DescribeIndex", pb.CollectionName(collection_name=request.match_info["name"]))
        params = next((kv.value for kv in index.extra_params if kv.key == "params"), "{}")
        return _ok({"index_type": INDEX_NAMES.get(index.index_type, "FLAT"),
                    "params": json.loads(params or "{}")})

    async def create_index(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if "index_type" not in body:
            raise WebError(BODY_FIELD_LOSS, "Field 'index_type' is required")
        if body["index_type"] not in INDEX_CODES:
            raise WebError(Code.ILLEGAL_INDEX_TYPE, "The index type is invalid.")
        if "params" not in body:
            raise WebError(BODY_FIELD_LOSS, "Field 'params' is required")
        await self.rpc("CreateIndex", pb.IndexParam(collection_name=request.match_info["name"],
                                                    index_type=INDEX_CODES[body["index_type"]],
                                                    extra_params=_params(body["params"])))
        return _ok(status=201)

    async def drop_index(self, request: web.Request) -> web.Response:
        await self.rpc("DropIndex", pb.CollectionName(collection_name=request.match_info["name"]))
        return _ok(status=204)

    # -- partitions -------------------------------------------------------------------------
    async def list_partitions(self, request: web.Request) -> web.Response:
        offset = _int_query(request, "offset", 0)
        page = _int_query(request, "page_size", 10)
        tags = list((await self.rpc("ShowPartitions", pb.CollectionName(
            collection_name=request.match_info["name"]))).partition_tag_array)
        if request.query.get("all_required", "").lower() == "true":
            offset, page = 0, len(tags)
        chosen = tags[min(offset, len(tags)): min(offset, len(tags)) + page]
        return _ok({"count": len(tags), "partitions": [{"partition_tag": t} for t in chosen]})

    async def create_partition(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if "partition_tag" not in body:
            raise WebError(BODY_FIELD_LOSS, "Field 'partition_tag' is required")
        await self.rpc("CreatePartition", pb.PartitionParam(collection_name=request.match_info["name"],
                                                            tag=str(body["partition_tag"])))
        return _ok(status=201)

    async def drop_partition(self, request: web.Request) -> web.Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("partition_tag"), str):
            raise WebError(BODY_PARSE_FAIL, "Field 'partition_tag' is required")
        await self.rpc("DropPartition", pb.PartitionParam(collection_name=request.match_info["name"],
                                                          tag=body["partition_tag"]))
        return _ok(status=204)

    # -- segments ---------------------------------------------------------------------------
    async def list_segments(self, request: web.Request) -> web.Response:
        offset = _int_query(request, "offset", 0)
        page = _int_query(request, "page_size", 10)
        tag = request.query.get("partition_tag", "")
        every = request.query.get("all_required", "").lower() == "true"
        info = json.loads((await self.rpc("ShowCollectionInfo", pb.CollectionName(
            collection_name=request.match_info["name"]))).json_info)
        segments = [(p["tag"], s) for p in info.get("partitions", []) if every or not tag or p["tag"] == tag
                    for s in p.get("segments", [])]
        segments.sort(key=lambda ps: ps[1]["name"], reverse=True)
        if not every:
            segments_page = segments[min(offset, len(segments)): min(offset + page, len(segments))]
        else:
            segments_page = segments
        return _ok({"code": 0, "message": "OK", "count": len(segments), "segments": [
            {"segment_name": s["name"], "index": s.get("index_name", ""), "count": s["row_count"],
             "size": s.get("data_size", 0), "partition_tag": t} for t, s in segments_page]})

    async def segment_info(self, request: web.Request) -> web.Response:
        name, segment, what = (request.match_info[k] for k in ("name", "segment", "info"))
        if what not in ("ids", "vectors"):
            raise WebError(UNKNOWN_PATH, f"Unknown path: {request.path}")
        offset = _int_query(request, "offset", 0)
        page = _int_query(request, "page_size", 10)
        ids = list((await self.rpc("GetVectorIDs", pb.GetVectorIDsParam(
            collection_name=name, segment_name=segment))).vector_id_array)
        chosen = ids[min(offset, len(ids)): min(offset + page, len(ids))]
        if what == "ids":
            return _ok({"ids": [str(i) for i in chosen], "count": len(ids)})
        vectors = await self._vectors(name, chosen, "")
        return _ok({"vectors": vectors, "count": len(ids), "code": 0, "message": "OK"})

    # -- vectors ----------------------------------------------------------------------------
    async def _vectors(self, name: str, ids: list[int], tag: str) -> list[dict]:
        if not ids:
            return []
        binary = await self._binary(name)
        data = await self.rpc("GetVectorsByID", pb.VectorsIdentity(collection_name=name, id_array=ids,
                                                                   partition_tag=tag))
        out = []
        for i, rec in zip(ids, data.vectors_data, strict=False):
            vec = list(rec.binary_data) if binary else [float(x) for x in rec.float_data]
            out.append({"id": str(i), "vector": vec})
        return out

    async def get_vectors(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        raw = request.query.get("ids") or request.query.get("id")
        if not raw:
            raise WebError(QUERY_PARAM_LOSS, "Query param \"ids\" is required")
        ids = _ids(raw.split(","), "ids")
        vectors = await self._vectors(name, ids, request.query.get("partition_tag", ""))
        return _ok({"vectors": vectors, "code": 0, "message": "OK"})

    async def insert(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await _json(request)
        binary = await self._binary(name)
        if "vectors" not in body:
            raise WebError(BODY_FIELD_LOSS, "Field 'vectors' is required")
        param = pb.InsertParam(collection_name=name, row_record_array=_records(body["vectors"], binary),
                               partition_tag=str(body.get("partition_tag") or ""))
        if "ids" in body:
            param.row_id_array.extend(_ids(body["ids"]))
        reply = await self.rpc("Insert", param.SerializeToString())
        return web.json_response({"ids": [str(i) for i in reply.vector_id_array]}, status=201)

    async def vectors_op(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await _json(request)
        if not isinstance(body, dict):
            raise WebError(ILLEGAL_BODY, "Unknown body")
        if "delete" in body:
            task = body["delete"] or {}
            if "ids" not in task:
                raise WebError(BODY_FIELD_LOSS, "Field \"delete\" must contains \"ids\"")
            await self.rpc("DeleteByID", pb.DeleteByIDParam(
                collection_name=name, id_array=_ids(task["ids"]),
                partition_tag=str(task.get("partition_tag") or "")))
            return _ok()
        if "search" in body:
            return await self._search(name, body["search"] or {})
        raise WebError(ILLEGAL_BODY, "Unknown body")

    async def _search(self, name: str, q: dict) -> web.Response:
        if "topk" not in q:
            raise WebError(BODY_FIELD_LOSS, "Field 'topk' is required")
        tags = q.get("partition_tags") or []
        if not isinstance(tags, list):
            raise WebError(BODY_PARSE_FAIL, "Field \"partition_tags\" must be a array")
        topk = int(q["topk"])
        params = _params(q.get("params"))
        if "ids" in q:
            reply = await self.rpc("SearchByID", pb.SearchByIDParam(
                collection_name=name, partition_tag_array=tags, id_array=_ids(q["ids"]), topk=topk,
                extra_params=params))
        else:
            if "params" not in q:
                raise WebError(BODY_FIELD_LOSS, "Field 'params' is required")
            if "vectors" not in q:
                raise WebError(BODY_FIELD_LOSS, "Field \"vectors\" is required")
            binary = await self._binary(name)
            search = pb.SearchParam(collection_name=name, partition_tag_array=tags, topk=topk,
                                    query_record_array=_records(q["vectors"], binary), extra_params=params)
            if q.get("file_ids"):
                reply = await self.rpc("SearchInFiles", pb.SearchInFilesParam(
                    file_id_array=[str(f) for f in q["file_ids"]], search_param=search))
            else:
                reply = await self.rpc("Search", search)
        rows = int(reply.row_num)
        if rows == 0:
            return _ok({"num": 0, "result": []})
        step = len(reply.ids) // rows
        result = [[{"id": str(reply.ids[r * step + j]),
                    "distance": repr(float(reply.distances[r * step + j]))}
                   for j in range(step)] for r in range(rows)]
        return _ok({"num": rows, "result": result})


class HttpServer:
    """Serve ``RestApi`` on ``address:port`` from a daemon thread.

    ``start`` raises OSError if it cannot bind.
    """

    def __init__(self, servicer: Any, address: str, port: int) -> None:
        self.api = RestApi(servicer)
        self.address, self.port = address, int(port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> HttpServer:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            runner = self._runner = web.AppRunner(self.api.app, access_log=None)
            try:
                loop.run_until_complete(runner.setup())
                loop.run_until_complete(web.TCPSite(runner, self.address, self.port).start())
            except BaseException as exc:  # noqa: BLE001 - reported to start()
                failure.append(exc)
                ready.set()
                loop.run_until_complete(runner.cleanup())
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="milvus-http", daemon=True)
        self._thread.start()
        ready.wait(30)
        if failure:
            raise OSError(f"cannot serve HTTP on {self.address}:{self.port}: {failure[0]}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
