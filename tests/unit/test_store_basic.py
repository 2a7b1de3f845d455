"""Store on sqlite + a tmp dir with the real engine: flush, count, search, delete, partitions, ids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from labkit.milvus.status import Code, MilvusError
from labkit.node import meta as m
from labkit.node import segments as seg
from labkit.node.settings import StoreSettings
from labkit.node.store import Store

DIM = 8


@pytest.fixture
def store(tmp_path):
    st = Store(StoreSettings(storage_path=str(tmp_path / "data"), wal_path=str(tmp_path / "wal"),
                             auto_flush_interval=0, cache_size=64 << 20))
    st.maintenance_interval = 3600  # background passes are driven by the tests
    st.start()
    try:
        yield st
    finally:
        st.close()


def _rand(n: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, dim), dtype=np.float32)


def _files(st: Store, name: str, types=tuple(range(8))) -> list[dict]:
    return st.meta.files(st.tables(name), types)


def _code(fn, *args) -> Code:
    with pytest.raises(MilvusError) as err:
        fn(*args)
    return err.value.code


def test_flush_writes_segment_and_row_and_count_sees_only_flushed(store, tmp_path):
    store.create_collection("c", DIM, 1, 1)
    x = _rand(300)
    ids = store.insert("c", "", x, None)
    assert len(ids) == 300 and len(set(ids.tolist())) == 300
    assert store.count("c") == 0  # unflushed rows are not counted
    assert store.search("c", [], x[:1], 3, {})[1].shape == (1, 0)  # nor searched
    store.flush(["c"])
    assert store.count("c") == 300
    (f,) = _files(store, "c")
    assert f["file_type"] == m.RAW and f["segment_id"] == f["file_id"] and f["row_count"] == 300
    assert f["file_size"] == x.nbytes
    assert abs(int(f["file_id"]) // 1000 - m.now_us()) < 60_000_000  # µs·1000 ids
    d = tmp_path / "data" / "db" / "tables" / "c" / f["segment_id"]
    assert np.array_equal(seg.read_vectors(d, f["file_id"], DIM, False), x)
    assert np.array_equal(seg.read_ids(d, f["file_id"]), ids)


@pytest.mark.parametrize("metric", [1, 2])
def test_search_is_exact_over_several_segments(store, metric):
    store.create_collection("c", DIM, 1, metric)
    parts = [_rand(200, seed=s) for s in range(3)]
    all_ids = []
    for p in parts:
        all_ids.append(store.insert("c", "", p, None))
        store.flush()
    x, ids = np.concatenate(parts), np.concatenate(all_ids)
    q = _rand(4, seed=9)
    dist, got = store.search("c", [], q, 10, {})
    if metric == 1:
        ref = ((q[:, None, :] - x[None]) ** 2).sum(-1)
        order = np.argsort(ref, axis=1)[:, :10]
    else:
        ref = q @ x.T
        order = np.argsort(-ref, axis=1)[:, :10]
    assert np.array_equal(got, ids[order])
    np.testing.assert_allclose(dist, np.take_along_axis(ref, order, 1), rtol=1e-4, atol=1e-5)


def test_binary_hamming_search(store):
    store.create_collection("b", 64, 1, 3)
    codes = np.random.default_rng(1).integers(0, 256, (100, 8), dtype=np.uint8)
    ids = store.insert("b", "", codes, np.arange(100))
    store.flush()
    dist, got = store.search("b", [], codes[5:6], 3, {})
    assert got[0, 0] == ids[5] and dist[0, 0] == 0
    assert np.array_equal(store.get_vectors("b", np.array([7]))[0], codes[7])


def test_user_and_auto_ids_do_not_mix(store):
    store.create_collection("u", DIM, 1, 1)
    store.insert("u", "", _rand(3), np.array([1, 2, 3]))
    assert _code(store.insert, "u", "", _rand(2), None) == Code.ILLEGAL_VECTOR_ID
    store.create_collection("a", DIM, 1, 1)
    store.insert("a", "", _rand(3), None)
    assert _code(store.insert, "a", "", _rand(1), np.array([5])) == Code.ILLEGAL_VECTOR_ID
    assert store.meta.table("u")["flag"] == m.FLAG_USER_ID and store.meta.table("a")["flag"] == m.FLAG_AUTO_ID


def test_collection_errors_and_describe(store):
    store.create_collection("c", DIM, 16, 2)
    assert _code(store.create_collection, "c", DIM, 16, 1) == Code.ILLEGAL_COLLECTION_NAME
    assert _code(store.describe_collection, "nope") == Code.COLLECTION_NOT_EXISTS
    assert _code(store.count, "nope") == Code.COLLECTION_NOT_EXISTS
    assert store.describe_collection("c") == {"name": "c", "dim": DIM, "index_file_size_mb": 16, "metric": 2,
                                              "index_type": 1, "index_params": {}}
    assert store.meta.table("c")["index_file_size"] == 16 << 20  # bytes in meta
    assert store.list_collections() == ["c"] and store.has_collection("c") and not store.has_collection("x")
    assert store.describe_index("c") == (1, {})
    store.drop_collection("c")
    assert not store.has_collection("c") and store.list_collections() == []


def test_partitions_and_tag_regex(store):
    store.create_collection("c", DIM, 1, 1)
    store.create_partition("c", "p2021")
    store.create_partition("c", "p2022")
    assert _code(store.create_partition, "c", "p2021") == Code.ILLEGAL_COLLECTION_NAME
    assert _code(store.create_partition, "c", "_default") == Code.UNEXPECTED_ERROR
    assert store.list_partitions("c") == ["_default", "p2021", "p2022"]
    part = store.meta.partitions("c")[0]
    assert part["owner_table"] == "c" and part["table_id"] != "p2021"  # own generated table_id
    a = store.insert("c", "", _rand(5, seed=1), None)
    b = store.insert("c", "p2021", _rand(5, seed=2), None)
    c = store.insert("c", "p2022", _rand(5, seed=3), None)
    assert _code(store.insert, "c", "nope", _rand(1), None) == Code.UNEXPECTED_ERROR
    store.flush()
    assert store.count("c") == 15
    q = _rand(1, seed=2)[:1]
    _, got = store.search("c", ["p20.*"], q, 20, {})
    assert set(got[0].tolist()) == set(b.tolist()) | set(c.tolist())
    _, got = store.search("c", ["_default"], q, 20, {})
    assert set(got[0].tolist()) == set(a.tolist())
    assert _code(store.search, "c", ["zzz"], q, 5, {}) == Code.UNEXPECTED_ERROR
    stats = store.stats("c")
    assert stats["row_count"] == 15
    assert [p["tag"] for p in stats["partitions"]] == ["_default", "p2021", "p2022"]
    assert stats["partitions"][1]["segments"][0]["index_name"] == "IDMAP"
    json.dumps(stats)
    store.drop_partition("c", "p2021")
    assert store.count("c") == 10 and store.list_partitions("c") == ["_default", "p2022"]
    assert _code(store.drop_partition, "c", "_default") == Code.ILLEGAL_COLLECTION_NAME


def test_delete_from_buffer_and_segments(store, tmp_path):
    store.create_collection("c", DIM, 1, 1)
    x = _rand(50)
    ids = store.insert("c", "", x, np.arange(50))
    store.flush()
    store.insert("c", "", _rand(10, seed=4), np.arange(100, 110))
    store.delete("c", np.array([3, 4, 105, 999]))
    (f,) = _files(store, "c")
    assert f["row_count"] == 48
    assert store.count("c") == 48
    d = tmp_path / "data" / "db" / "tables" / "c" / f["segment_id"]
    assert seg.read_deleted(d).tolist() == [3, 4]
    _, got = store.search("c", [], x[3:4], 50, {})
    assert 3 not in got[0].tolist() and 4 not in got[0].tolist()
    store.flush()
    assert store.count("c") == 57  # 105 never reached a segment
    vec = store.get_vectors("c", np.array([3, 7, 105, 108]))
    assert vec[0] is None and vec[2] is None and np.array_equal(vec[1], x[7]) and vec[3] is not None
    assert set(store.list_ids_in_segment("c", f["segment_id"]).tolist()) == set(ids.tolist()) - {3, 4}
    assert _code(store.list_ids_in_segment, "c", "123") == Code.UNEXPECTED_ERROR


def test_compact_rewrites_segments_over_threshold(store):
    store.create_collection("c", DIM, 1, 1)
    store.insert("c", "", _rand(100), np.arange(100))
    store.flush()
    store.insert("c", "", _rand(100, seed=1), np.arange(100, 200))
    store.flush()
    store.delete("c", np.arange(0, 30))  # 30% of the first segment
    store.delete("c", np.array([150]))  # 1% of the second
    before = {f["segment_id"] for f in _files(store, "c", m.SEARCHABLE)}
    store.compact("c", 0.1)
    live = _files(store, "c", m.SEARCHABLE)
    assert len(live) == 2 and store.count("c") == 169
    after = {f["segment_id"] for f in live}
    assert len(before & after) == 1  # only the first one was rewritten
    new = [f for f in live if f["segment_id"] not in before][0]
    assert new["row_count"] == 70 and new["file_size"] == 70 * DIM * 4
    assert len(_files(store, "c", (m.TO_DELETE,))) == 1
    assert set(store.list_ids_in_segment("c", new["segment_id"]).tolist()) == set(range(30, 100))


def test_search_in_files_and_unknown_ids(store):
    store.create_collection("c", DIM, 1, 1)
    for s in range(2):
        store.insert("c", "", _rand(20, seed=s), None)
        store.flush()
    f1, f2 = _files(store, "c")
    q = _rand(1, seed=1)
    _, got = store.search_in_files("c", [f2["id"]], q, 5, {})
    only2 = set(store.list_ids_in_segment("c", f2["segment_id"]).tolist())
    assert set(got[0].tolist()) <= only2
    assert _code(store.search_in_files, "c", [f1["id"], 987654], q, 5, {}) == Code.FILE_NOT_FOUND


def test_load_release_and_cache_info(store):
    store.create_collection("c", DIM, 1, 1)
    store.insert("c", "", _rand(100), None)
    store.flush()
    store.release("c")
    assert store.cache_info()["bytes"] == 0
    store.load("c")
    info = store.cache_info()
    assert len(info["segments"]) == 1 and info["bytes"] >= 100 * DIM * 4 and info["capacity"] == 64 << 20


def test_cache_insert_data_decides_whether_a_flush_fills_the_cache(store, tmp_path):
    store.create_collection("c", DIM, 1, 1)
    store.insert("c", "", _rand(100), None)
    store.flush()
    assert store.cache_info()["bytes"] == 0  # 1.1's default: cache.cache_insert_data false
    store.settings.cache_insert_data = True  # what set_config cache.cache_insert_data true changes
    store.insert("c", "", _rand(100, seed=1), None)
    store.flush()
    assert store.cache_info()["bytes"] >= 100 * DIM * 4
    assert store.count("c") == 200
