"""``Maintenance`` works through ``StoreCore`` alone: run over a view of a real Store that exposes only
the members StoreCore declares, merges, index builds, compaction and cleanup still do their work."""

from __future__ import annotations

import numpy as np
import pytest

from labkit.node import meta as m
from labkit.node.settings import StoreSettings
from labkit.node.store import Store
from labkit.node.store_maintain import Maintenance, StoreCore

DIM = 8
CORE_NAMES = frozenset(StoreCore.__annotations__) | {n for n in vars(StoreCore) if not n.startswith("_")}


class CoreView:
    """The StoreCore members of a store, and nothing else (any other name raises AttributeError)."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.used: set[str] = set()

    def __getattr__(self, name: str):
        if name not in CORE_NAMES:
            raise AttributeError(f"Maintenance used {name!r}, which StoreCore does not declare")
        self.used.add(name)
        return getattr(self._store, name)


@pytest.fixture
def store(tmp_path):
    st = Store(StoreSettings(storage_path=str(tmp_path / "data"), wal_path=str(tmp_path / "wal"),
                             auto_flush_interval=0, cache_size=64 << 20, file_cleanup_timeout=0))
    st.maintenance_interval = 3600
    st.start()
    try:
        yield st
    finally:
        st.close()


def _types(st: Store, name: str) -> list[int]:
    return sorted(f["file_type"] for f in st.meta.files(st.tables(name), tuple(range(8))))


def test_core_names_are_the_small_interface():
    assert {"meta", "cache", "segments", "write_lock", "collection", "tables", "flush"} <= CORE_NAMES
    assert not any(n.startswith("_") for n in CORE_NAMES)


def test_maintenance_over_the_core_view_merges_builds_compacts_and_cleans(store):
    view = CoreView(store)
    mt = Maintenance(view)
    rng = np.random.default_rng(0)
    store.create_collection("c", DIM, 1, 1)
    ids = []
    for _ in range(3):
        ids.append(store.insert("c", "", rng.random((2000, DIM), dtype=np.float32), None))
        store.flush()
    assert _types(store, "c") == [m.RAW] * 3

    assert mt.maintain() == {"merged": 1, "built": 0, "removed": 3}
    assert _types(store, "c") == [m.RAW]
    mt.create_index("c", 2, {"nlist": 16})
    assert mt.describe_index("c") == (2, {"nlist": 16})
    assert _types(store, "c") == [m.INDEX, m.BACKUP]
    store.delete("c", ids[0][:1000])
    mt.compact("c")  # 1000 of 6000 rows deleted: rewritten and indexed again
    mt.maintain()
    assert _types(store, "c") == [m.INDEX, m.BACKUP]
    assert store.count("c") == 5000
    mt.drop_index("c")
    assert _types(store, "c") == [m.RAW, m.TO_DELETE]
    assert {"collection", "tables", "write_lock", "segments", "meta"} <= view.used
