"""pymilvus 1.1.2 with ``handler="HTTP"`` against a real node's REST API (Milvus 1.1's web server shape)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests

from labkit.lab.procs import free_port
from labkit.milvus import proto

proto.install()
from milvus import IndexType, MetricType, Milvus  # noqa: E402

from tests.integration.test_node_operator import NodeProcess  # noqa: E402

DIM = 8


@pytest.fixture
def http_node(tmp_path: Path) -> Iterator[tuple[Milvus, str, NodeProcess]]:
    http_port = free_port()
    node = NodeProcess(tmp_path, http_enable=True, http_port=http_port)
    grpc_client = node.start()
    grpc_client.close()
    client = Milvus(host="127.0.0.1", port=http_port, handler="HTTP")
    try:
        yield client, f"http://127.0.0.1:{http_port}", node
    finally:
        client.close()
        node.stop()


def test_pymilvus_http_handler_end_to_end(http_node) -> None:
    client, url, node = http_node
    assert client.server_version() == (client.server_version()[0], "1.1.1")
    assert client.server_status()[1] == "OK"
    assert client.create_collection({"collection_name": "h", "dimension": DIM, "index_file_size": 1,
                                     "metric_type": MetricType.L2}).OK()
    status = client.create_collection({"collection_name": "h", "dimension": DIM, "index_file_size": 1,
                                       "metric_type": MetricType.L2})
    assert status.code == 9  # duplicate name, same code as gRPC
    assert client.has_collection("h")[1] is True and client.has_collection("nope")[1] is False
    assert client.list_collections()[1] == ["h"]
    schema = client.get_collection_info("h")[1]
    assert (schema.dimension, schema.index_file_size, schema.metric_type) == (DIM, 1, MetricType.L2)

    assert client.create_partition("h", "p1").OK()
    assert client.has_partition("h", "p1")[1] is True
    assert [p.tag for p in client.list_partitions("h")[1]] == ["_default", "p1"]

    rng = np.random.default_rng(3)
    x = rng.random((300, DIM), dtype=np.float32)
    status, ids = client.insert("h", x[:200].tolist(), ids=list(range(1, 201)))
    assert status.OK() and ids == list(range(1, 201))
    status, _ = client.insert("h", x[:2].tolist())  # auto ids after user ids: 1.1's code 12
    assert status.code == 12
    status, pids = client.insert("h", x[200:].tolist(), ids=list(range(10_000, 10_100)), partition_tag="p1")
    assert status.OK() and pids == list(range(10_000, 10_100))
    assert client.flush(["h"]).OK()
    assert client.count_entities("h")[1] == 300

    assert client.create_index("h", IndexType.IVF_FLAT, {"nlist": 4}).OK()
    index = client.get_index_info("h")[1]
    assert index.index_type == IndexType.IVF_FLAT and index.params == {"nlist": 4}

    status, result = client.search("h", 3, x[:2].tolist(), params={"nprobe": 4})
    assert status.OK() and len(result) == 2 and result[0][0].id == ids[0] and result[0][0].distance < 1e-5
    status, result = client.search("h", 3, x[200:201].tolist(), partition_tags=["p1"], params={"nprobe": 4})
    assert status.OK() and result[0][0].id == 10_000
    status, _ = client.search("h", 3, x[:1].tolist(), params={})
    assert status.code == 5 and "nprobe" in status.message

    # search_in_segment: TableFiles ids, read here from the node's sqlite metadata
    import sqlite3

    with sqlite3.connect(node.root / "milvus" / "db" / "meta.sqlite") as db:
        files = [r[0] for r in db.execute("SELECT id FROM TableFiles "
                                          "WHERE table_id = 'h' AND file_type IN (1,2,3)")]
    status, result = client.search_in_segment("h", [str(f) for f in files], x[:1].tolist(), 2, {"nprobe": 4})
    assert status.OK() and result[0][0].id == ids[0]
    assert client.flush().OK()  # flush() of every collection: an empty name list

    status, vectors = client.get_entity_by_id("h", [ids[5], 123456789])
    assert status.OK() and np.allclose(vectors[0], x[5]) and vectors[1] == []

    stats = client.get_collection_stats("h")[1]
    assert stats["row_count"] == 300
    segment = stats["partitions"][0]["segments"][0]["name"]
    status, seg_ids = client.list_id_in_segment("h", segment)
    assert status.OK() and set(seg_ids) <= set(ids)

    assert client.delete_entity_by_id("h", ids[:10]).OK()
    assert client.flush(["h"]).OK()
    assert client.count_entities("h")[1] == 290
    status, result = client.search("h", 1, x[:1].tolist(), params={"nprobe": 4})
    assert status.OK() and result[0][0].id != ids[0]
    assert client.compact("h").OK()

    assert client.load_collection("h").OK()
    assert client.release_collection("h").OK()

    # config through /system/config
    status, value = client.get_config("cache", "cache_size")
    assert status.OK() and value == "4GB"
    status, _ = client.set_config("cache", "cache_size", "1GB")
    assert status.OK() and client.get_config("cache", "cache_size")[1] == "1GB"
    status, _ = client.set_config("cache", "cache_size", "lots")
    assert status.code == 5

    assert client.drop_index("h").OK()
    assert client.get_index_info("h")[1].index_type == IndexType.FLAT
    assert client.drop_partition("h", "p1").OK()
    assert client.drop_collection("h").OK()
    assert client.has_collection("h")[1] is False
    status, _ = client.count_entities("h")
    assert status.code == 4


def test_rest_endpoints_answer_as_milvus_1_1(http_node) -> None:
    _, url, _ = http_node
    assert requests.get(url + "/state").json() == {"code": 0, "message": "Success"}
    assert requests.get(url + "/devices").json()["cpu"]["memory"] > 0
    advanced = requests.get(url + "/config/advanced").json()
    assert advanced["use_blas_threshold"] == 1100 and advanced["cache_insert_data"] is False
    r = requests.put(url + "/config/advanced", json={"cpu_cache_capacity": 1 << 30, "cache_insert_data": True,
                                                     "use_blas_threshold": 900})
    assert r.status_code == 200, r.text
    assert requests.get(url + "/config/advanced").json()["use_blas_threshold"] == 900
    assert requests.get(url + "/config/gpu_resources").status_code == 400
    config = requests.get(url + "/system/config").json()
    assert config["restart_required"] is False and config["cache"]["cache_insert_data"] == "true"
    r = requests.put(url + "/system/config", json={"logs": {"level": "info"}})
    assert r.status_code == 200 and r.json()["restart_required"] is True
    assert requests.get(url + "/system/mode").json()["reply"] == "CPU"

    r = requests.post(url + "/collections", json={"collection_name": "r", "dimension": 4,
                                                   "index_file_size": 1, "metric_type": "IP"})
    assert r.status_code == 201
    assert requests.post(url + "/collections", json={
        "collection_name": "r2", "dimension": 4, "index_file_size": 1, "metric_type": "COSINE"}).json() == {
        "code": 23, "message": "metric_type is illegal"}
    r = requests.get(url + "/collections/missing")
    assert r.status_code == 404 and r.json()["code"] == 4
    r = requests.post(url + "/collections/r/vectors", json={"vectors": [[1, 0, 0, 0], [0, 1, 0, 0]]})
    assert r.status_code == 201 and len(r.json()["ids"]) == 2
    requests.put(url + "/system/task", json={"flush": {"collection_names": ["r"]}}).raise_for_status()
    listing = requests.get(url + "/collections", params={"offset": 0, "page_size": 10}).json()
    assert listing["count"] == 1 and listing["collections"][0]["metric_type"] == "IP"
    assert listing["collections"][0]["count"] == 2
    segments = requests.get(url + "/collections/r/segments").json()
    assert segments["count"] == 1 and segments["segments"][0]["count"] == 2
    seg = segments["segments"][0]["segment_name"]
    vecs = requests.get(url + f"/collections/r/segments/{seg}/vectors").json()
    assert vecs["count"] == 2 and [v["vector"] for v in vecs["vectors"]] == [[1, 0, 0, 0], [0, 1, 0, 0]]
    got = requests.put(url + "/collections/r/vectors",
                       data=json.dumps({"search": {"topk": 2, "vectors": [[1, 0, 0, 0]],
                                                   "params": {}}})).json()
    assert got["num"] == 1 and float(got["result"][0][0]["distance"]) == pytest.approx(1.0)
    r = requests.put(url + "/collections/r/vectors", data="{not json")
    assert r.status_code == 400 and r.json()["code"] == 36
    assert requests.get(url + "/nowhere").json()["code"] == 32
    r = requests.delete(url + "/collections/r")
    assert r.status_code == 204
