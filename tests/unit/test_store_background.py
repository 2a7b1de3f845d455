"""Background work of the rw store (merge, index build, cleanup) and the ro store's view."""

from __future__ import annotations

import time

import numpy as np
import pytest

from labkit.milvus.status import Code, MilvusError
from labkit.node import meta as m
from labkit.node.settings import StoreSettings
from labkit.node.store import Store
from labkit.router.ring import Ring

DIM = 8


def _settings(tmp_path, **kw) -> StoreSettings:
    base = dict(storage_path=str(tmp_path / "data"), wal_path=str(tmp_path / "wal"), auto_flush_interval=0,
                cache_size=64 << 20, file_cleanup_timeout=0)
    base.update(kw)
    return StoreSettings(**base)


@pytest.fixture
def store(tmp_path):
    st = Store(_settings(tmp_path))
    st.maintenance_interval = 3600
    st.start()
    try:
        yield st
    finally:
        st.close()


def _rand(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32)


def _types(st: Store, name: str) -> list[int]:
    return sorted(f["file_type"] for f in st.meta.files(st.tables(name), tuple(range(8))))


def test_merge_small_raw_segments(store, tmp_path):
    store.create_collection("c", DIM, 1, 1)  # 1 MB index_file_size: 5 small segments fit in one
    for s in range(5):
        store.insert("c", "", _rand(100, s), None)
        store.flush()
    store.delete("c", store.list_ids_in_segment("c", store.meta.files(["c"])[0]["segment_id"])[:10])
    assert _types(store, "c") == [m.RAW] * 5
    out = store.maintain()
    assert out["merged"] == 1
    live = store.meta.files(["c"])
    assert len(live) == 1 and live[0]["file_type"] == m.RAW and live[0]["row_count"] == 490
    assert store.count("c") == 490
    assert out["removed"] == 5  # cleanup timeout 0: the merged sources are gone at once
    assert _types(store, "c") == [m.RAW]
    seg_dirs = list((tmp_path / "data" / "db" / "tables" / "c").iterdir())
    assert [p.name for p in seg_dirs] == [live[0]["segment_id"]]


def test_cleanup_waits_for_timeout(tmp_path):
    st = Store(_settings(tmp_path, file_cleanup_timeout=3600))
    st.maintenance_interval = 3600
    st.start()
    try:
        st.create_collection("c", DIM, 1, 1)
        for s in range(2):
            st.insert("c", "", _rand(10, s), None)
            st.flush()
        assert st.maintain() == {"merged": 1, "built": 0, "removed": 0}
        assert _types(st, "c") == [m.RAW, m.TO_DELETE, m.TO_DELETE]
    finally:
        st.close()


def test_index_build_states(store):
    store.create_collection("c", DIM, 1, 1)
    big = _rand(5000, 1)
    ids = store.insert("c", "", big, None)
    store.flush()
    store.insert("c", "", _rand(50, 2), None)  # merged into the big one by create_index
    store.create_partition("c", "small")
    store.insert("c", "small", _rand(50, 3), None)  # own partition, < 4096 rows: stays RAW
    store.create_index("c", 2, {"nlist": 32})
    assert store.describe_index("c") == (2, {"nlist": 32})
    assert _types(store, "c") == [m.RAW, m.INDEX, m.TO_DELETE, m.TO_DELETE, m.BACKUP]
    store.maintain()  # cleanup timeout 0: the merge sources go
    files = store.meta.files(store.tables("c"), tuple(range(8)))
    by_type = {f["file_type"]: f for f in files}
    assert by_type[m.INDEX]["segment_id"] == by_type[m.BACKUP]["segment_id"]
    assert by_type[m.INDEX]["row_count"] == 5050
    assert by_type[m.INDEX]["file_id"] != by_type[m.BACKUP]["file_id"]
    assert by_type[m.INDEX]["engine_type"] == 2
    assert store.count("c") == 5100
    stats = store.stats("c")["partitions"]
    assert [s["index_name"] for p in stats for s in p["segments"]] == ["IVFFLAT", "IDMAP"]
    _, got = store.search("c", [], big[:3], 1, {"nprobe": 32})
    assert got[:, 0].tolist() == ids[:3].tolist()
    with pytest.raises(MilvusError) as err:
        store.search("c", [], big[:1], 1, {})  # nprobe required for IVF
    assert err.value.code == Code.ILLEGAL_ARGUMENT
    store.delete("c", ids[:1])  # deletes reach indexed segments through deleted_docs
    _, got = store.search("c", [], big[:1], 1, {"nprobe": 32})
    assert got[0, 0] != ids[0]
    store.drop_index("c")
    assert store.describe_index("c") == (1, {})
    assert _types(store, "c") == [m.RAW, m.RAW, m.TO_DELETE]
    assert store.count("c") == 5099


def test_flush_marks_to_index_and_background_builds(store):
    store.create_collection("c", DIM, 1, 1)
    store.create_index("c", 3, {"nlist": 16})
    x = _rand(40000, 3)  # 1.28 MB >= 1 MB index_file_size
    store.insert("c", "", x, None)
    store.flush()
    (f,) = store.meta.files(["c"])
    assert f["file_type"] == m.TO_INDEX
    assert store.maintain()["built"] == 1
    assert sorted(f["file_type"] for f in store.meta.files(["c"], tuple(range(8)))) == [m.INDEX, m.BACKUP]


def test_ro_store_sees_flushes_and_applies_deletes_only_after_reload(tmp_path, store):
    ro = Store(_settings(tmp_path, cluster=True, role="ro", wal_path=str(tmp_path / "wal-ro")))
    ro.start()
    try:
        store.create_collection("c", DIM, 1, 1)
        x = _rand(100)
        ids = store.insert("c", "", x, None)
        assert ro.search("c", [], x[:1], 1, {})[1].shape[1] == 0  # unflushed: invisible
        store.flush()
        _, got = ro.search("c", [], x[:1], 1, {})
        assert got[0, 0] == ids[0]
        store.delete("c", ids[:1])
        _, got = ro.search("c", [], x[:1], 1, {})
        assert got[0, 0] == ids[0]  # cached segment: delete not seen yet (1.1 behaviour)
        assert ro.count("c") == 99  # but the meta row count is current
        ro.reload_segments("c", [f["id"] for f in ro.meta.files(["c"])])
        _, got = ro.search("c", [], x[:1], 1, {})
        assert got[0, 0] != ids[0]
        with pytest.raises(MilvusError):
            ro.insert("c", "", x[:1], None)
        assert not (tmp_path / "wal-ro").exists()  # ro keeps no WAL
    finally:
        ro.close()


def test_ro_preload_poller_loads_new_segments(tmp_path, store):
    ro = Store(_settings(tmp_path, cluster=True, role="ro", preload=True, preload_interval=0.05))
    ro.start()
    try:
        store.create_collection("c", DIM, 1, 1)
        store.insert("c", "", _rand(100), None)
        store.flush()
        (f,) = store.meta.files(["c"])
        deadline = time.monotonic() + 10
        while ro.cache.peek(f["id"]) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ro.cache.peek(f["id"]) is not None
        misses = ro.cache.misses
        ro.search("c", [], _rand(1), 1, {})
        assert ro.cache.misses == misses  # the first query found it loaded
    finally:
        ro.close()


def test_preload_records_where_the_load_time_went(tmp_path, store):
    ro = Store(_settings(tmp_path, cluster=True, role="ro", preload=True, preload_interval=0.01))
    ro.start()
    try:
        store.create_collection("c", DIM, 1, 1)
        store.create_partition("c", "p")
        store.insert("c", "p", _rand(100), None)
        store.flush()
        (f,) = store.meta.files(store.tables("c"))
        deadline = time.monotonic() + 10
        while ro.cache.peek(f["id"]) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        (seg,) = [s for s in ro.cache_info()["segments"] if s["file_row_id"] == f["id"]]
        load = seg["load"]
        assert load["by"] == "preload" and load["bytes"] == 100 * DIM * 4
        assert load["read_s"] > 0 and load["meta_lag_s"] is not None and load["meta_lag_s"] >= 0
        assert load["loaded_at"] >= load["committed_at"] == int(f["updated_time"]) / 1e6
        # the partition's file was loaded under its collection, whose kept snapshot already lists it
        assert f["id"] in ro.search_snapshot("c").file_ids
        misses = ro.cache.misses
        ro.search("c", ["p"], _rand(1), 1, {})
        assert ro.cache.misses == misses
    finally:
        ro.close()


def test_preload_with_a_placement_loads_only_the_files_routed_here(tmp_path, store):
    ro = Store(_settings(tmp_path, cluster=True, role="ro", preload=True, preload_interval=0.01))
    ro.start()
    try:
        ro.set_placement("n1:1", ["n1:1", "n2:2"], ttl_s=60)
        store.create_collection("c", DIM, 1, 1)
        for b in range(8):
            store.insert("c", "", _rand(50, b), None)
            store.flush()
        ids = [int(f["id"]) for f in store.meta.files(["c"])]
        mine = {i for i in ids if Ring(["n1:1", "n2:2"]).node_for(i) == "n1:1"}
        assert mine and mine != set(ids)  # 8 files over two nodes: both get some
        deadline = time.monotonic() + 10
        while {s.file_row_id for s in ro.cache.items()} != mine and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # more passes would load nothing else
        assert {s.file_row_id for s in ro.cache.items()} == mine
        ro.set_placement("n1:1", ["n1:1"], ttl_s=60)  # the other node left: its files move here
        deadline = time.monotonic() + 10
        while len(ro.cache.items()) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert {s.file_row_id for s in ro.cache.items()} == set(ids)
        ro.release("c")
        ro.set_placement("n1:1", ["n1:1", "n2:2"], ttl_s=0.2)  # not renewed: back to loading every file
        deadline = time.monotonic() + 10
        while len(ro.cache.items()) < len(ids) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert {s.file_row_id for s in ro.cache.items()} == set(ids)
        with pytest.raises(ValueError):
            ro.set_placement("n3:3", ["n1:1"], ttl_s=60)
    finally:
        ro.close()


def test_preload_pass_refreshes_snapshots_of_changed_collections_it_does_not_load(tmp_path, store):
    ro = Store(_settings(tmp_path, cluster=True, role="ro"))
    ro.start()
    try:
        refreshed: list[str] = []
        real = ro.search_snapshot
        ro.search_snapshot = lambda name: (refreshed.append(name), real(name))[1]
        ro.set_placement("n1:1", ["n1:1", "n2:2"], ttl_s=60)
        store.create_collection("c", DIM, 1, 1)
        store.insert("c", "", _rand(50), None)
        store.flush()
        (f,) = store.meta.files(["c"])
        me = Ring(["n1:1", "n2:2"]).node_for(f["id"]) == "n1:1"
        ro.set_placement("n1:1" if not me else "n2:2", ["n1:1", "n2:2"], ttl_s=60)  # the file is not ours
        assert ro.maintenance.preload_new() == 0 and ro.cache.peek(f["id"]) is None
        assert refreshed == ["c"]  # its rows changed: the snapshot follows the router's new list
        refreshed.clear()
        assert ro.maintenance.preload_new() == 0 and refreshed == []  # nothing changed since
    finally:
        ro.close()


def test_change_marker_moves_with_every_file_row_write(store):
    marks = [store.meta.change_marker()]
    store.create_collection("c", DIM, 1, 1)
    store.insert("c", "", _rand(10), None)
    store.flush()
    marks.append(store.meta.change_marker())
    (f,) = store.meta.files(["c"])
    time.sleep(0.002)
    store.meta.update_files([f["id"]], row_count=9)
    marks.append(store.meta.change_marker())
    store.meta.delete_files([f["id"]])
    marks.append(store.meta.change_marker())
    assert all(a != b for a, b in zip(marks, marks[1:], strict=False)), marks  # a poller sees each write
    assert store.meta.change_marker() == marks[-1]  # nothing written: the same marker


def test_cache_is_bounded_and_evicts_lru(tmp_path, store):
    seg_bytes = 100 * DIM * 4 + 100 * 8 * 3 + 100
    ro = Store(_settings(tmp_path, cluster=True, role="ro", cache_size=int(seg_bytes * 2.5)))
    ro.start()
    try:
        store.create_collection("c", DIM, 1, 1)
        for s in range(4):
            store.insert("c", "", _rand(100, s), None)
            store.flush()
        files = ro.meta.files(["c"])
        _, got = ro.search("c", [], _rand(2, 9), 400, {})
        assert (got >= 0).sum() == 800  # all four segments searched
        info = ro.cache_info()
        assert info["bytes"] <= info["capacity"] and len(info["segments"]) == 2
        assert [s["file_row_id"] for s in info["segments"]] == [f["id"] for f in files[2:]]
    finally:
        ro.close()


def test_rw_lock_refuses_second_writer(tmp_path, store):
    other = Store(_settings(tmp_path))
    with pytest.raises(MilvusError, match="locked"):
        other.start()


def test_background_merge_keeps_size_layers_apart(store):
    from labkit.node.store_maintain import _layer

    sizes = (0, (4 << 20) - 1, 4 << 20, (16 << 20) - 1, 16 << 20, 70 << 20)
    assert [_layer(n) for n in sizes] == [0, 0, 1, 1, 2, 3]
    store.create_collection("c", DIM, 64, 1)
    store.insert("c", "", _rand(140_000, 1), None)  # 4.5 MB: layer 1
    store.flush()
    for s in range(2):
        store.insert("c", "", _rand(100, s), None)  # tiny: layer 0
        store.flush()
    big = store.meta.files(["c"])[0]
    assert store.maintain()["merged"] == 1
    live = store.meta.files(["c"])
    assert len(live) == 2 and live[0]["id"] == big["id"]  # the big file was not rewritten
    store.create_index("c", 1, {})  # FLAT: no merge
    assert len(store.meta.files(["c"])) == 2


def test_ro_search_drops_cached_files_that_left_the_meta(tmp_path, store):
    ro = Store(_settings(tmp_path, cluster=True, role="ro"))
    ro.start()
    try:
        store.create_collection("c", DIM, 1, 1)
        for s in range(3):
            store.insert("c", "", _rand(50, s), None)
            store.flush()
        ro.search("c", [], _rand(1), 1, {})
        assert len(ro.cache_info()["segments"]) == 3
        store.maintain()  # merge: three files become one
        _, got = ro.search("c", [], _rand(1), 150, {})
        assert (got >= 0).sum() == 150
        (f,) = ro.meta.files(["c"])
        assert [s["file_row_id"] for s in ro.cache_info()["segments"]] == [f["id"]]
    finally:
        ro.close()
