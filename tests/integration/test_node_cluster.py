"""A rw and a ro lab node on MariaDB metadata and two JuiceFS mounts, driven by pymilvus 1.1.2.

Every public client method, results against numpy ground truth, bad input with 1.1 codes,
kill -9 recovery of acknowledged inserts, and a ro node seeing rw's flushed data.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest
from milvus import IndexType, MetricType, Milvus
from milvus.client.prepare import Prepare

from labkit.lab import cluster, procs

pytestmark = pytest.mark.integration

DIM = 16
N = 3000
RW, RO = "it_rw", "it_ro"


@pytest.fixture(scope="module")
def nodes(lab):
    """(rw record, ro record) on a fresh `milvus` database; stopped, purged and unmounted afterwards."""
    db = "node_it"
    lab.create_database(db)
    started = []
    try:
        common = dict(meta_uri=lab.meta_uri(db), cache_size="256MB", insert_buffer_size="64MB",
                      auto_flush_interval=1)
        rw = cluster.start_node(lab, RW, role="rw", **common)
        started.append(RW)
        ro = cluster.start_node(lab, RO, role="ro", **common)
        started.append(RO)
        yield rw, ro
    finally:
        for name in started:
            cluster.stop_node(lab, name, purge=True)
        for name in (RW, RO):
            lab.umount(name)
        lab.drop_database(db)


@pytest.fixture(scope="module")
def rw_client(nodes):
    c = cluster.connect(nodes[0])
    yield c
    c.close()


@pytest.fixture(scope="module")
def ro_client(nodes):
    c = cluster.connect(nodes[1])
    yield c
    c.close()


@pytest.fixture
def coll(rw_client, request):
    """A fresh L2 collection named after the test; dropped afterwards."""
    name = "t_" + request.node.name.replace("[", "_").replace("]", "").replace("-", "_")[:60]
    st = rw_client.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                                      "metric_type": MetricType.L2})
    assert st.OK(), st.message
    yield name
    rw_client.drop_collection(name)


def data(n=N, dim=DIM, seed=0):
    return np.random.default_rng(seed).random((n, dim), dtype=np.float32)


def l2_truth(x, q, k):
    d = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return idx, np.take_along_axis(d, idx, 1)


def insert_flush(client, name, x, ids=None, tag=None):
    st, got = client.insert(name, x.tolist(), ids=ids, partition_tag=tag)
    assert st.OK(), st.message
    assert client.flush([name]).OK()
    return np.array(got)


# -- basics ----------------------------------------------------------------------------------

def test_version_status_mode_config(rw_client, ro_client, nodes):
    for c in (rw_client, ro_client):
        st, v = c.server_version()
        assert st.OK() and v.startswith("1.1.")
        st, s = c.server_status()
        assert st.OK() and s == "OK"
        st, mode = c._cmd("mode")
        assert mode == "CPU"
    st, path = rw_client.get_config("storage", "path")
    assert st.OK() and path == nodes[0]["storage_path"]
    st, role = ro_client.get_config("cluster", "role")
    assert role == "ro"
    assert rw_client.set_config("cache", "cache_size", "1GB")[0].OK()
    assert rw_client.get_config("cache", "cache_size")[1] == "1GB"
    st, _ = rw_client.get_config("nope", "key")
    assert st.code == 1 and "nope.key" in st.message


def test_collection_lifecycle(rw_client, coll):
    st, ok = rw_client.has_collection(coll)
    assert st.OK() and ok
    st, ok = rw_client.has_collection("missing_coll")
    assert st.OK() and not ok
    st, info = rw_client.get_collection_info(coll)
    assert st.OK() and info.dimension == DIM and info.index_file_size == 1
    assert info.metric_type == MetricType.L2
    st, names = rw_client.list_collections()
    assert coll in names
    st = rw_client.create_collection({"collection_name": coll, "dimension": DIM})
    assert st.code == 9  # duplicate


def test_insert_auto_ids_flush_count_search_flat(rw_client, coll):
    x = data()
    ids = insert_flush(rw_client, coll, x)
    assert len(set(ids.tolist())) == N
    st, count = rw_client.count_entities(coll)
    assert st.OK() and count == N
    q = x[:5] + 0.01
    st, res = rw_client.search(coll, 10, q.tolist())
    assert st.OK()
    idx, dist = l2_truth(x, q, 10)
    assert res.id_array == ids[idx].tolist()
    np.testing.assert_allclose(np.array(res.distance_array), dist, rtol=1e-4, atol=1e-5)  # squared L2


def test_user_ids_get_entity_delete_compact(rw_client, coll):
    x = data(500, seed=1)
    uid = list(range(10_000, 10_500))
    insert_flush(rw_client, coll, x, ids=uid)
    st, vecs = rw_client.get_entity_by_id(coll, [10_003, 99])
    assert st.OK() and np.allclose(vecs[0], x[3]) and vecs[1] == []
    assert rw_client.delete_entity_by_id(coll, [10_003, 10_004]).OK()
    assert rw_client.flush([coll]).OK()
    st, count = rw_client.count_entities(coll)
    assert count == 498
    st, res = rw_client.search(coll, 1, [x[3].tolist()])
    assert res.id_array[0][0] != 10_003
    assert rw_client.compact(coll).OK()
    assert rw_client.count_entities(coll)[1] == 498
    # mixing auto ids into a user-id collection -> 12
    st, _ = rw_client.insert(coll, x[:2].tolist())
    assert st.code == 12


def test_stats_segments_list_ids_search_in_segment(rw_client, coll, lab, nodes):
    x = data(1000, seed=2)
    ids = insert_flush(rw_client, coll, x)
    st, stats = rw_client.get_collection_stats(coll)
    assert st.OK() and stats["row_count"] == 1000
    part = stats["partitions"][0]
    assert part["tag"] == "_default"
    seg = part["segments"][0]
    assert {"name", "row_count", "index_name", "data_size"} <= set(seg)
    st, seg_ids = rw_client.list_id_in_segment(coll, seg["name"])
    assert st.OK() and set(seg_ids) <= set(ids.tolist()) and len(seg_ids) == seg["row_count"]
    # search_in_segment takes TableFiles.id values; read them from MySQL as Mishards does
    import pymysql

    params = lab.mysql_params()
    params["database"] = "node_it"
    with pymysql.connect(**params) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM TableFiles WHERE table_id=%s AND file_type IN (1,2,3)", (coll,))
        file_ids = [str(r[0]) for r in cur.fetchall()]
    assert file_ids
    st, res = rw_client.search_in_segment(coll, file_ids, x[:3].tolist(), 5, {})
    assert st.OK() and [r[0].id for r in res] == ids[:3].tolist()
    st, res = rw_client.search_in_segment(coll, ["999999999"], x[:1].tolist(), 5, {})
    assert not st.OK()


def test_partitions_and_tag_search(rw_client, coll):
    assert rw_client.create_partition(coll, "p1").OK()
    st, ok = rw_client.has_partition(coll, "p1")
    assert ok
    st, parts = rw_client.list_partitions(coll)
    assert [p.tag for p in parts] == ["_default", "p1"]
    a, b = data(300, seed=3), data(300, seed=4)
    ids_a = insert_flush(rw_client, coll, a)
    ids_b = insert_flush(rw_client, coll, b, tag="p1")
    st, res = rw_client.search(coll, 3, b[:2].tolist(), partition_tags=["p1"])
    assert st.OK() and all(i in set(ids_b.tolist()) for row in res.id_array for i in row)
    st, res = rw_client.search(coll, 1, a[:1].tolist(), partition_tags=["_default"])
    assert res.id_array[0][0] == ids_a[0]
    st, res = rw_client.search(coll, 1, a[:1].tolist(), partition_tags=["nope"])
    assert st.code == 1  # unknown partition
    assert rw_client.create_partition(coll, "p1").code == 9  # duplicate
    assert rw_client.drop_partition(coll, "_default").code == 9
    assert rw_client.create_partition(coll, "_default").code == 1
    assert rw_client.drop_partition(coll, "p1").OK()
    assert not rw_client.has_partition(coll, "p1")[1]


def test_load_release(rw_client, coll):
    insert_flush(rw_client, coll, data(200))
    assert rw_client.load_collection(coll).OK()
    assert rw_client.release_collection(coll).OK()
    assert rw_client.load_collection("missing_coll").code == 4


@pytest.mark.parametrize("index_type,params,search", [
    (IndexType.FLAT, {}, {}),
    (IndexType.IVF_FLAT, {"nlist": 16}, {"nprobe": 8}),
    (IndexType.IVF_SQ8, {"nlist": 16}, {"nprobe": 8}),
    (IndexType.IVF_PQ, {"nlist": 16, "m": 4}, {"nprobe": 16}),
    (IndexType.HNSW, {"M": 16, "efConstruction": 64}, {"ef": 64}),
])
def test_indexes(rw_client, coll, index_type, params, search):
    x = data(5000, seed=5)  # >= 4096 rows, so the segment really gets indexed
    ids = insert_flush(rw_client, coll, x)
    st = rw_client.create_index(coll, index_type, params)
    assert st.OK(), st.message
    st, idx = rw_client.get_index_info(coll)
    assert st.OK() and idx.index_type == index_type and idx.params == params
    q = x[:50]
    st, res = rw_client.search(coll, 10, q.tolist(), params=search)
    assert st.OK(), st.message
    truth, _ = l2_truth(x, q, 10)
    got = np.array(res.id_array)
    recall = np.mean([len(set(got[i]) & set(ids[truth[i]])) / 10 for i in range(len(q))])
    floor = 0.99 if index_type == IndexType.FLAT else (0.5 if index_type == IndexType.IVF_PQ else 0.95)
    assert recall >= floor, recall
    assert rw_client.drop_index(coll).OK()
    assert rw_client.get_index_info(coll)[1].index_type == IndexType.FLAT


# -- bad input ---------------------------------------------------------------------------------

def raw_insert(client: Milvus, name: str, records, ids=None):
    """Bypass pymilvus' own checks (ragged/empty rows) and send through its real stub."""
    param = Prepare.insert_param(name, [], None, ids=ids)
    for r in records:
        param.row_record_array.add(float_data=r)
    st, _ = client.insert(name, [[0.0]], insert_param=param)
    return st


def test_bad_input_codes_and_node_survives(rw_client, coll):
    x = data(10, seed=6)
    insert_flush(rw_client, coll, x)
    assert rw_client.insert(coll, data(2, dim=DIM + 1).tolist())[0].code == 7  # wrong dimension
    assert raw_insert(rw_client, coll, [[0.1] * DIM, [0.1] * (DIM - 1)]).code == 11  # ragged
    assert raw_insert(rw_client, coll, []).code == 11  # empty
    nan = x[:2].copy()
    nan[1, 3] = np.nan
    assert rw_client.insert(coll, nan.tolist())[0].code == 11
    inf = x[:2].copy()
    inf[0, 0] = np.inf
    assert rw_client.insert(coll, inf.tolist())[0].code == 11
    assert raw_insert(rw_client, coll, x[:2].tolist(), ids=[1, 2, 3]).code == 12  # id count mismatch
    assert rw_client.create_collection({"collection_name": "1bad", "dimension": 8}).code == 9
    assert rw_client.create_collection({"collection_name": "a-b", "dimension": 8}).code == 9
    assert rw_client.create_collection({"collection_name": "ok_dim", "dimension": 0}).code == 7
    assert rw_client.create_collection({"collection_name": "ok_dim", "dimension": 40000}).code == 7
    assert rw_client.create_collection({"collection_name": "ok_ifs", "dimension": 8,
                                        "index_file_size": 5000}).code == 5
    assert rw_client.count_entities("missing_coll")[0].code == 4
    assert rw_client.insert(coll, x[:1].tolist(), partition_tag="nope")[0].code == 1
    assert rw_client.search(coll, 0, x[:1].tolist())[0].code == 10
    assert rw_client.search(coll, 16385, x[:1].tolist())[0].code == 10
    assert rw_client.get_entity_by_id(coll, list(range(1001)))[0].code == 5
    assert rw_client.create_index(coll, IndexType.IVF_FLAT, {"nlist": 0}).code == 5
    assert rw_client.create_index(coll, IndexType.IVF_FLAT, {}).code == 5
    assert rw_client.create_index(coll, IndexType.HNSW, {"M": 2, "efConstruction": 64}).code == 5
    assert rw_client.create_index(coll, IndexType.HNSW, {"M": 16, "efConstruction": 1}).code == 5
    assert rw_client.create_index(coll, IndexType.IVF_PQ, {"nlist": 16, "m": 5}).code == 7
    assert rw_client.create_index(coll, IndexType.IVF_SQ8H, {"nlist": 16}).code == 8
    assert rw_client.create_index(coll, IndexType.RNSG, {"search_length": 45, "out_degree": 50,
                                                         "candidate_pool_size": 300, "knng": 301}).code == 5
    assert rw_client.create_index(coll, IndexType.IVF_FLAT, {"nlist": 16}).OK()
    assert rw_client.search(coll, 1, x[:1].tolist(), params={})[0].code == 5  # nprobe missing
    assert rw_client.search(coll, 1, x[:1].tolist(), params={"nprobe": 0})[0].code == 5
    # nothing stored was lost, and the node still answers
    assert rw_client.count_entities(coll)[1] == 10
    assert rw_client.server_status()[1] == "OK"


def test_too_large_insert_is_11(rw_client):
    name = "t_too_large"
    # 32760 bits: MySQL's `dimension` column is a SMALLINT (max 32767), as in 1.1's schema
    assert rw_client.create_collection({"collection_name": name, "dimension": 32760,
                                        "metric_type": MetricType.HAMMING}).OK()
    try:
        row = bytes(32760 // 8)
        st, _ = rw_client.insert(name, [row] * ((256 << 20) // len(row) + 1))  # just over 256 MB
        assert st.code == 11 and "256 MB" in st.message
        assert rw_client.count_entities(name)[1] == 0
    finally:
        rw_client.drop_collection(name)


# -- cluster behaviour ---------------------------------------------------------------------------

def test_ro_refuses_writes_but_searches_flushed_data(rw_client, ro_client, coll):
    st = ro_client.insert(coll, data(2).tolist())[0]
    assert st.code == 3 and "read-only" in st.message
    assert ro_client.create_collection({"collection_name": "t_on_ro", "dimension": 8}).code == 3
    assert ro_client.flush([coll]).code == 3
    x = data(800, seed=7)
    ids = insert_flush(rw_client, coll, x)
    st, res = ro_client.search(coll, 1, x[:5].tolist())  # no restart of the ro node
    assert st.OK(), st.message
    assert [r[0].id for r in res] == ids[:5].tolist()
    assert ro_client.count_entities(coll)[1] == 800
    # deletes reach a ro node that cached the segment after reload_segments (1.1 semantics)
    assert rw_client.delete_entity_by_id(coll, [int(ids[0])]).OK()
    assert rw_client.flush([coll]).OK()
    st, stats = ro_client.get_collection_stats(coll)
    assert st.OK()


def test_kill9_after_acknowledged_inserts(lab, nodes, coll):
    rw = nodes[0]
    got = []
    for round_ in range(3):
        c = cluster.connect(rw)
        x = data(400, seed=100 + round_)
        st, ids = c.insert(coll, x.tolist())  # acknowledged, not flushed
        assert st.OK()
        got.append((x, ids))
        pid = rw["pid"]
        os.kill(pid, signal.SIGKILL)
        procs.wait_until(lambda p=pid: not procs.alive(p), 10, "killed node")
        c.close()
        rw = cluster.start_node(lab, RW, role="rw", meta_uri=lab.meta_uri("node_it"), cache_size="256MB",
                                insert_buffer_size="64MB", auto_flush_interval=1)
        assert rw["pid"] != pid
    c = cluster.connect(rw)
    try:
        assert c.flush([coll]).OK()
        assert c.count_entities(coll)[1] == 1200
        for x, ids in got:
            st, res = c.search(coll, 1, x[:20].tolist())
            assert [r[0].id for r in res] == ids[:20]
    finally:
        c.close()


def test_hybrid_rpcs_unimplemented(rw_client):
    import grpc

    from labkit.milvus.proto import messages

    pb, _, pb_grpc = messages()
    with grpc.insecure_channel(rw_client._connection().client().server_address) as ch:
        stub = pb_grpc.MilvusServiceStub(ch)
        with pytest.raises(grpc.RpcError) as err:
            stub.HasHybridCollection(pb.CollectionName(collection_name="x"), timeout=5)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_labkit_stats_reports_fast_decode(rw_client, coll):
    insert_flush(rw_client, coll, data(2000, seed=9))
    st, reply = rw_client._cmd("labkit_stats")
    stats = json.loads(reply)
    assert stats["insert_fast_path"] >= 1 and stats["insert_rows"] >= 2000
    assert stats["role"] == "rw"


def test_ro_preload_loads_new_segments_before_a_query(lab, nodes, rw_client, coll):
    """Beyond 1.1 (opt-in): cache.preload_new_segments makes a ro node load flushed segments itself."""
    ro2 = cluster.start_node(lab, "it_ro2", role="ro", preload=True, meta_uri=lab.meta_uri("node_it"),
                             cache_size="256MB", preload_poll_interval=0.1)
    c = cluster.connect(ro2)
    try:
        st, conf = c.get_config("cache", "preload_new_segments")
        assert conf == "true"
        insert_flush(rw_client, coll, data(300, seed=11))

        def cached() -> int:
            return len(json.loads(c._cmd("cache_info")[1]).get("segments", []))

        procs.wait_until(lambda: cached() > 0, 10, "preloaded segment on it_ro2")
    finally:
        c.close()
        cluster.stop_node(lab, "it_ro2", purge=True)
        lab.umount("it_ro2")
