"""RNSG and ANNOY through a real node and pymilvus 1.1.2: build, search (recall against brute force
printed), get and delete; IVF_SQ8H refused as a CPU build of 1.1 refuses it."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from labkit.milvus import proto

proto.install()
from milvus import IndexType, MetricType, Milvus  # noqa: E402

from tests.integration.test_node_operator import NodeProcess  # noqa: E402

DIM, ROWS, NQ, TOPK = 32, 5000, 20, 10  # a segment of >= 4096 rows is indexed (1.1's rule)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Milvus]:
    node = NodeProcess(tmp_path_factory.mktemp("idx"))
    c = node.start()
    try:
        yield c
    finally:
        c.close()
        node.stop()


def _recall(got, want: np.ndarray) -> float:
    return float(np.mean([len({h.id for h in row} & set(w.tolist())) / len(w) for row, w in zip(got, want,
                                                                                              strict=True)]))


@pytest.mark.parametrize(("index_type", "build", "search"), [
    (IndexType.RNSG, {"search_length": 60, "out_degree": 30, "candidate_pool_size": 100, "knng": 30},
     {"search_length": 100}),
    (IndexType.ANNOY, {"n_trees": 16}, {"search_k": 4000}),
])
def test_graph_index_build_search_get_delete(client: Milvus, index_type, build, search) -> None:
    name = f"g_{int(index_type)}"
    rng = np.random.default_rng(int(index_type))
    centers = rng.normal(size=(50, DIM)).astype(np.float32) * 3
    x = (centers[rng.integers(0, 50, ROWS)] + rng.normal(size=(ROWS, DIM))).astype(np.float32)
    q = (centers[rng.integers(0, 50, NQ)] + rng.normal(size=(NQ, DIM))).astype(np.float32)
    assert client.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1024,
                                     "metric_type": MetricType.L2}).OK()
    ids = np.arange(1, ROWS + 1)
    assert client.insert(name, x.tolist(), ids=ids.tolist())[0].OK()
    assert client.flush([name]).OK()

    bad = {k: 0 for k in build}
    status = client.create_index(name, index_type, bad)
    assert status.code == 5 and "Valid range" in status.message
    assert client.create_index(name, index_type, build).OK()
    info = client.get_index_info(name)[1]
    assert info.index_type == index_type and info.params == build
    stats = client.get_collection_stats(name)[1]
    assert stats["partitions"][0]["segments"][0]["index_name"] == (
        "NSG" if index_type == IndexType.RNSG else "ANNOY")

    want = ids[np.argsort(((q[:, None, :] - x[None]) ** 2).sum(-1), axis=1)[:, :TOPK]]
    status, result = client.search(name, TOPK, q.tolist(), params=search)
    assert status.OK() and result.shape == (NQ, TOPK)
    recall = _recall(result, want)
    print(f"{index_type.name} recall@{TOPK} vs brute force over {ROWS} rows: {recall:.3f}")
    assert recall >= 0.9
    status, _ = client.search(name, TOPK, q.tolist(), params={})
    assert status.code == 5  # the index's search parameter is required, as in 1.1

    status, vectors = client.get_entity_by_id(name, [int(ids[7]), 10**9])
    assert status.OK() and np.allclose(vectors[0], x[7]) and vectors[1] == []

    nearest = [row[0].id for row in result]
    assert client.delete_entity_by_id(name, nearest).OK() and client.flush([name]).OK()
    status, after = client.search(name, TOPK, q.tolist(), params=search)
    assert status.OK() and not ({h.id for row in after for h in row} & set(nearest))
    assert client.count_entities(name)[1] == ROWS - len(set(nearest))


def test_ivf_sq8h_is_refused_on_a_cpu_node(client: Milvus) -> None:
    assert client.create_collection({"collection_name": "h8", "dimension": DIM, "index_file_size": 1,
                                     "metric_type": MetricType.L2}).OK()
    status = client.create_index("h8", IndexType.IVF_SQ8H, {"nlist": 16})
    assert (status.code, status.message) == (8, "Unsupported index type: 5")
