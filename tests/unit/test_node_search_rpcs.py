"""Search, SearchInFiles and SearchByID of the servicer over a real (sqlite) Store, called in process:
the snapshot read once serves the checks and the search; codes and their order are Milvus 1.1's."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.milvus.proto import messages
from labkit.node.config import NodeConfig
from labkit.node.server import MilvusServicer
from labkit.node.settings import StoreSettings
from labkit.node.store import Store

pb, _status_pb, _grpc = messages()
DIM = 8


@pytest.fixture
def node(tmp_path):
    st = Store(StoreSettings(storage_path=str(tmp_path / "data"), wal_path=str(tmp_path / "wal"),
                             auto_flush_interval=0, cache_size=64 << 20))
    st.maintenance_interval = 3600
    st.start()
    try:
        yield st, MilvusServicer(st, NodeConfig())
    finally:
        st.close()


def _param(name: str, queries: np.ndarray, topk: int, params: str = "", tags: tuple = ()) -> pb.SearchParam:
    req = pb.SearchParam(collection_name=name, topk=topk, partition_tag_array=list(tags))
    for q in queries:
        req.query_record_array.add().float_data.extend(q.tolist())
    if params:
        req.extra_params.add(key="params", value=params)
    return req


def _ids(reply) -> np.ndarray:
    return np.asarray(reply.ids).reshape(reply.row_num, -1)


def test_search_rpcs_answer_what_the_store_finds(node):
    st, svc = node
    st.create_collection("c", DIM, 1, 1)
    st.create_partition("c", "p")
    x = np.random.default_rng(0).random((40, DIM), dtype=np.float32)
    ids = st.insert("c", "", x[:20], None)
    pids = st.insert("c", "p", x[20:], None)
    st.flush()

    reply = svc.Search(_param("c", x[:2], 1), None)
    assert reply.status.error_code == 0 and _ids(reply)[:, 0].tolist() == ids[:2].tolist()
    reply = svc.Search(_param("c", x[20:22], 1, tags=("p",)), None)
    assert _ids(reply)[:, 0].tolist() == pids[:2].tolist()

    root = [f["id"] for f in st.search_snapshot("c").files if f["table_id"] == "c"]
    req = pb.SearchInFilesParam(file_id_array=[str(i) for i in root], search_param=_param("c", x[:1], 1))
    reply = svc.SearchInFiles(req, None)
    assert reply.status.error_code == 0 and _ids(reply)[0, 0] == ids[0]

    req = pb.SearchByIDParam(collection_name="c", id_array=[int(pids[3])], topk=1)
    reply = svc.SearchByID(req, None)
    assert reply.status.error_code == 0 and _ids(reply)[0, 0] == pids[3]

    import json

    timings = json.loads(svc._cmd("labkit_stats"))["timings"]  # where each search's time went
    assert timings["Search"]["calls"] == 2 and timings["SearchInFiles"]["calls"] == 1
    assert set(timings["Search"]["seconds"]) == {"meta", "decode", "search", "reply"}
    assert all(v >= 0 for v in timings["Search"]["seconds"].values())
    assert timings["Search"]["seconds"]["search"] > 0


def test_search_rpc_errors_keep_their_codes_and_order(node):
    st, svc = node
    st.create_collection("c", DIM, 1, 1)
    x = np.random.default_rng(1).random((5, DIM), dtype=np.float32)
    st.insert("c", "", x, None)
    st.flush()
    wrong_dim = np.ones((1, DIM + 1), np.float32)

    def code(reply) -> int:
        return reply.status.error_code

    assert code(svc.Search(_param("1bad", x[:1], 1), None)) == 9  # name checked first
    missing = svc.Search(_param("nope", x[:1], 1), None)
    assert code(missing) == 4 and "does not exist" in missing.status.reason
    assert code(svc.Search(_param("c", wrong_dim, 0), None)) == 10  # topk before the vectors
    assert code(svc.Search(_param("c", wrong_dim, 1, params="[1]"), None)) == 5  # params before vectors
    assert code(svc.Search(_param("c", wrong_dim, 1, tags=(" ",)), None)) == 1  # tags before vectors
    assert code(svc.Search(_param("c", wrong_dim, 1), None)) == 7
    assert code(svc.Search(_param("c", x[:1], 1, tags=("missing",)), None)) == 1

    req = pb.SearchInFilesParam(file_id_array=["x"], search_param=_param("c", x[:1], 0))
    assert code(svc.SearchInFiles(req, None)) == 10  # bad file ids are reported after the checks
    req = pb.SearchInFilesParam(file_id_array=["x"], search_param=_param("c", x[:1], 1))
    assert code(svc.SearchInFiles(req, None)) == 5
    req = pb.SearchInFilesParam(file_id_array=["999999"], search_param=_param("c", x[:1], 1))
    assert code(svc.SearchInFiles(req, None)) == 14

    assert code(svc.SearchByID(pb.SearchByIDParam(collection_name="nope", id_array=[1], topk=1), None)) == 4
    assert code(svc.SearchByID(pb.SearchByIDParam(collection_name="c", id_array=[1], topk=0), None)) == 10
    assert code(svc.SearchByID(pb.SearchByIDParam(collection_name="c", id_array=[-5], topk=1), None)) == 5


def test_the_servicer_uses_only_public_store_members():
    import ast
    import inspect

    from labkit.node import server

    tree = ast.parse(inspect.getsource(server))
    used = {n.attr for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Attribute)
            and n.value.attr == "store"}
    assert {"search_snapshot", "search", "search_in_files"} <= used
    assert not [name for name in used if name.startswith("_")]
    assert all(callable(getattr(Store, name, None)) for name in used), used - set(dir(Store))
