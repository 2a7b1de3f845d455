"""The store's public search contract: ``search_snapshot`` (one meta read), ``validation.search_params``
(the one check of topk and search parameters) and ``search`` / ``search_in_files`` over a snapshot."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.milvus.status import Code, MilvusError
from labkit.node import meta as m
from labkit.node import validation as check
from labkit.node.search_snapshot import snapshot_from_rows
from labkit.node.settings import StoreSettings
from labkit.node.store import Store

DIM = 8


@pytest.fixture
def store(tmp_path):
    st = Store(StoreSettings(storage_path=str(tmp_path / "data"), wal_path=str(tmp_path / "wal"),
                             auto_flush_interval=0, cache_size=64 << 20))
    st.maintenance_interval = 3600
    st.start()
    try:
        yield st
    finally:
        st.close()


def _rand(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32)


def test_snapshot_holds_the_collection_its_partitions_and_searchable_files(store):
    store.create_collection("c", DIM, 1, 2)  # IP
    store.create_partition("c", "p")
    store.insert("c", "", _rand(20), None)
    store.flush()
    store.insert("c", "p", _rand(30, 1), None)
    store.flush()
    store.create_collection("other", DIM, 1, 1)
    store.insert("other", "", _rand(5, 2), None)
    store.flush()

    snap = store.search_snapshot("c")
    part_table = store.tables("c")[1]
    assert (snap.name, snap.dim, snap.metric, snap.index_type) == ("c", DIM, 2, 1)
    assert snap.parts == [("_default", "c"), ("p", part_table)]
    assert [f["table_id"] for f in snap.files] == ["c", part_table]
    assert [f["row_count"] for f in snap.files] == [20, 30]
    assert [f["id"] for f in snap.files] == sorted(f["id"] for f in snap.files)
    assert {f["file_type"] for f in snap.files} <= set(m.SEARCHABLE)
    assert snap.fingerprint is None  # sqlite: nothing kept between searches
    assert snap.files_of({part_table}) == snap.files[1:]

    store.drop_partition("c", "p")
    assert store.search_snapshot("c").parts == [("_default", "c")]


def test_snapshot_of_a_missing_collection_is_code_4_with_the_describe_wording(store):
    with pytest.raises(MilvusError) as snap_err:
        store.search_snapshot("nope")
    with pytest.raises(MilvusError) as describe_err:
        store.describe_collection("nope")
    assert snap_err.value.code == Code.COLLECTION_NOT_EXISTS
    assert snap_err.value.reason == describe_err.value.reason


def test_search_reads_exactly_the_files_of_the_snapshot_it_is_given(store):
    store.create_collection("c", DIM, 1, 1)
    x = _rand(50)
    first = store.insert("c", "", x, None)
    store.flush()
    before = store.search_snapshot("c")
    y = _rand(50, 1)
    later = store.insert("c", "", y, None)
    store.flush()

    _, got = store.search("c", [], y[:2], 1, {}, snapshot=before)
    assert not set(got[:, 0].tolist()) & set(later.tolist())  # the later segment is not in `before`
    _, got = store.search("c", [], y[:2], 1, {})  # no snapshot: read now, so it is searched
    assert got[:, 0].tolist() == later[:2].tolist()
    _, got = store.search("c", [], x[:2], 1, {}, snapshot=before)
    assert got[:, 0].tolist() == first[:2].tolist()


def test_search_in_files_names_the_files_a_snapshot_does_not_hold(store):
    store.create_collection("c", DIM, 1, 1)
    x = _rand(10)
    ids = store.insert("c", "", x, None)
    store.flush()
    snap = store.search_snapshot("c")
    fid = snap.files[0]["id"]
    _, got = store.search_in_files("c", [fid], x[:1], 1, {}, snapshot=snap)
    assert got[0, 0] == ids[0]
    with pytest.raises(MilvusError) as err:
        store.search_in_files("c", [fid, fid + 999], x[:1], 1, {}, snapshot=snap)
    assert err.value.code == Code.FILE_NOT_FOUND
    assert f"[{fid + 999}]" in err.value.reason


def test_search_without_a_snapshot_checks_topk_and_params_itself(store):
    store.create_collection("c", DIM, 1, 1)
    store.insert("c", "", _rand(5000), None)
    store.flush()
    store.create_index("c", 2, {"nlist": 16})  # IVF_FLAT: nprobe required
    with pytest.raises(MilvusError) as err:
        store.search("c", [], _rand(1), 0, {"nprobe": 4})
    assert err.value.code == Code.ILLEGAL_TOPK
    with pytest.raises(MilvusError) as err:
        store.search("c", [], _rand(1), 1, {})
    assert err.value.code == Code.ILLEGAL_ARGUMENT
    assert store.search("c", [], _rand(1), 3, {"nprobe": 4})[1].shape == (1, 3)


class _Pair:
    def __init__(self, key: str, value: str) -> None:
        self.key, self.value = key, value


def test_search_params_is_the_one_check_of_topk_and_parameters():
    assert check.search_params(1, 5, [_Pair("params", '{"nprobe": 3}')]) == (5, {"nprobe": 3})
    assert check.search_params(1, 5, {}) == (5, {})  # FLAT: no parameter needed
    assert check.search_params(2, 5, {"nprobe": 8}) == (5, {"nprobe": 8})
    cases = [
        (1, 0, {}, Code.ILLEGAL_TOPK),
        (1, 16385, {}, Code.ILLEGAL_TOPK),
        (1, 0, [_Pair("params", "not json")], Code.ILLEGAL_TOPK),  # topk is checked first
        (1, 5, [_Pair("params", "not json")], Code.ILLEGAL_ARGUMENT),
        (2, 5, {}, Code.ILLEGAL_ARGUMENT),  # IVF_FLAT without nprobe
    ]
    for index_type, k, params, code in cases:
        with pytest.raises(MilvusError) as err:
            check.search_params(index_type, k, params)
        assert err.value.code == code, (index_type, k, params)


def test_meta_search_rows_are_the_snapshot_source(store):
    store.create_collection("c", DIM, 1, 1)
    store.create_partition("c", "p")  # a partition without files: one row, file columns None
    store.insert("c", "", _rand(10), None)
    store.flush()
    rows = store.meta.search_rows("c")
    assert [list(r) for r in rows] == [m.SEARCH_KEYS] * 2
    assert [r["table_id"] for r in rows] == ["c", store.tables("c")[1]]
    assert rows[0]["f_row_count"] == 10 and rows[1]["f_id"] is None
    assert store.meta.search_rows("nope") == []
    assert snapshot_from_rows("nope", []) is None
    snap = snapshot_from_rows("c", rows)
    assert snap is not None and [f["row_count"] for f in snap.files] == [10]
