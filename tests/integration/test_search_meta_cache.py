"""The ro node's search keeps the metadata rows it read and reuses them only while one rowhash
query finds the same rows in MySQL: a segment flushed between two searches is searched by the
second, a dropped collection is reported, and MySQL's hash agrees with Python's (non-ASCII tag)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from labkit.milvus.status import MilvusError

pytestmark = pytest.mark.integration
DIM = 16


@pytest.fixture
def pair(lab, fresh_database, store_pair):
    """(writer, reader): rw Store on mount A, ro Store on mount B, one fresh metadata database."""
    db = "smc_" + uuid.uuid4().hex[:8]
    fresh_database(db)
    with store_pair(lab.meta_uri(db), "smc-w", "smc-r") as (w, r):
        yield w, r


def _rand(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, DIM), dtype=np.float32)


def test_reader_reuses_its_file_list_only_while_the_meta_rows_are_unchanged(pair):
    w, r = pair
    w.create_collection("c", DIM, 1, 1)
    w.create_partition("c", "pé")
    x = _rand(3000)
    ids = w.insert("c", "", x[:2000], None)
    pids = w.insert("c", "pé", x[2000:], None)
    w.flush()
    first = r.search_snapshot("c")
    assert r.search_snapshot("c") is first  # unchanged rows: the kept snapshot, not a new read
    assert first.fingerprint is not None
    assert r.meta.search_fingerprint("c") == first.fingerprint  # MySQL and Python agree
    assert [t for t, _ in first.parts] == ["_default", "pé"]

    y = _rand(500, seed=1)
    more = w.insert("c", "", y, None)
    w.flush()  # between two searches of the reader
    _, got = r.search("c", [], y[:3], 1, {})
    assert got[:, 0].tolist() == more[:3].tolist()
    assert r.search_snapshot("c") is not first
    _, got = r.search("c", ["pé"], x[2000:2002], 1, {})
    assert got[:, 0].tolist() == pids[:2].tolist()
    root_files = [f["id"] for f in r.search_snapshot("c").files if f["table_id"] == "c"]
    _, got = r.search_in_files("c", root_files[:1], x[:2], 1, {})
    assert got[:, 0].tolist() == ids[:2].tolist()

    kept = r.search_snapshot("c")
    w.delete("c", ids[:1])  # rewrites the file's row (row_count, updated_time): the kept snapshot is stale
    again = r.search_snapshot("c")
    assert again is not kept
    assert [f["row_count"] for f in again.files] != [f["row_count"] for f in kept.files]

    w.drop_collection("c")
    with pytest.raises(MilvusError) as err:
        r.search("c", [], x[:1], 1, {})
    assert err.value.code == 4


def test_search_in_files_with_the_routers_file_list_reads_no_meta(pair):
    from labkit.router.config import parse_sqlalchemy_uri
    from labkit.router.meta import MetaReader

    w, r = pair
    w.create_collection("c", DIM, 1, 1)
    w.create_partition("c", "p")
    x = _rand(1000)
    ids = w.insert("c", "", x, None)
    w.insert("c", "p", _rand(300, seed=4), None)
    w.flush()
    kept = r.search_snapshot("c")
    files = [int(f["id"]) for f in kept.files]
    router_meta = MetaReader(
        parse_sqlalchemy_uri(r.settings.meta_uri.replace("mysql://", "mysql+pymysql://", 1)))
    try:
        routed = router_meta.collection_files("c")
        assert routed.fingerprint == kept.file_list  # the router's list, computed by the node alike
        before = r.snapshot_stats()
        snap = r.search_snapshot_for_files("c", files, routed.fingerprint)
        assert snap is kept and r.snapshot_stats() == {**before, "kept": before["kept"] + 1}  # no query
        _, got = r.search_in_files("c", files, x[:2], 1, {}, snapshot=snap)
        assert got[:, 0].tolist() == ids[:2].tolist()
        assert r.search_snapshot_for_files("c", files, None) is kept  # no list sent: checked as usual
        assert r.snapshot_stats()["checked"] == before["checked"] + 1

        w.create_index("c", 2, {"nlist": 4})  # only the collection row changes (files too small)
        changed = router_meta.collection_files("c")
        assert changed.fingerprint != routed.fingerprint and [f.id for f in changed.files] == sorted(files)
        snap = r.search_snapshot_for_files("c", files, changed.fingerprint)
        assert snap.index_type == 2 and snap.file_list == changed.fingerprint  # read again
        assert r.snapshot_stats()["read"] == before["read"] + 1
    finally:
        router_meta.close()
