"""Inserts, deletes and searches while the background threads flush, merge and build indexes."""

from __future__ import annotations

import threading
import time

import numpy as np

from labkit.node import meta as m
from labkit.node.settings import StoreSettings
from labkit.node.store import Store

DIM = 8


def test_writers_readers_and_background_threads_agree(tmp_path):
    st = Store(StoreSettings(storage_path=str(tmp_path / "data"), wal_path=str(tmp_path / "wal"),
                             auto_flush_interval=0.05, file_cleanup_timeout=0, cache_size=64 << 20))
    st.maintenance_interval = 0.05
    st.start()
    ro = Store(StoreSettings(storage_path=str(tmp_path / "data"), cluster=True, role="ro",
                             cache_size=64 << 20, preload=True, preload_interval=0.02))
    ro.start()
    errors: list[BaseException] = []
    stop = threading.Event()
    try:
        st.create_collection("c", DIM, 1, 1)
        st.create_index("c", 2, {"nlist": 8})

        def reader(s: Store) -> None:
            q = np.random.default_rng(5).random((2, DIM), dtype=np.float32)
            while not stop.is_set():
                try:
                    _, ids = s.search("c", [], q, 5, {"nprobe": 8})
                    row = ids[0][ids[0] >= 0]
                    assert len(set(row.tolist())) == len(row)  # a row never shows up twice
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)
                    return

        readers = [threading.Thread(target=reader, args=(s,)) for s in (st, ro)]
        for t in readers:
            t.start()
        rng = np.random.default_rng(0)
        for b in range(30):
            st.insert("c", "", rng.random((300, DIM), dtype=np.float32), np.arange(b * 300, b * 300 + 300))
            if b % 10 == 9:
                st.delete("c", np.arange(b * 300 - 50, b * 300))  # rows of the previous batch
            time.sleep(0.01)
        st.flush()
        stop.set()
        for t in readers:
            t.join(timeout=30)
        assert not errors, errors[0]
        assert st.count("c") == 9000 - 150
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and st.maintain()["merged"]:
            pass
        st.create_index("c", 2, {"nlist": 8})  # force merge + build what remains
        assert st.count("c") == 9000 - 150
        types = {f["file_type"] for f in st.meta.files(["c"])}
        assert types == {m.INDEX}
        got = st.get_vectors("c", np.array([0, 2650, 5699, 8999]))
        assert got[0] is not None and got[1] is None and got[2] is None and got[3] is not None
        _, ids = ro.search("c", [], rng.random((1, DIM), dtype=np.float32), 9000, {"nprobe": 8})
        assert (ids >= 0).sum() == 8850
    finally:
        stop.set()
        ro.close()
        st.close()


def test_a_search_whose_files_were_merged_away_and_removed_searches_their_successor(tmp_path):
    """With file_cleanup_timeout 0 a merge removes the old files at once; a search that listed them
    just before reads the file list again instead of failing (Milvus 1.1 keeps such files while a
    query holds them)."""
    st = Store(StoreSettings(storage_path=str(tmp_path / "data"), wal_path=str(tmp_path / "wal"),
                             auto_flush_interval=0, file_cleanup_timeout=0, cache_size=64 << 20))
    st.maintenance_interval = 3600  # only the explicit maintain() below
    st.start()
    try:
        st.create_collection("c", DIM, 1024, 1)
        rng = np.random.default_rng(3)
        data = rng.random((200, DIM), dtype=np.float32)
        for lo in (0, 100):
            st.insert("c", "", data[lo:lo + 100], np.arange(lo, lo + 100))
            st.flush(["c"])
        old = st.search_snapshot("c")
        assert len(old.file_ids) == 2
        for _ in range(3):
            st.maintain()
        assert not old.file_ids & st.search_snapshot("c").file_ids  # merged into a new file
        d, ids = st.search("c", [], data[:3], 1, {}, snapshot=old)
        assert ids[:, 0].tolist() == [0, 1, 2] and np.allclose(d[:, 0], 0.0)
    finally:
        st.close()
