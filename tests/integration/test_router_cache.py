"""The router's cached file list: reused only while MySQL's rowhash of the rows is unchanged.

Writes go straight to the rw node (the router sees nothing of them): a segment flushed, or a
delete applied, between two routed searches must be seen by the second one.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import numpy as np
import pytest

from labkit import router
from labkit.lab import cluster, procs
from labkit.lab.services.base import get_service
from labkit.router.config import parse_sqlalchemy_uri
from labkit.router.meta import MetaReader

pytestmark = pytest.mark.integration

DIM = 32
SEG_ROWS = 8200  # 8200 x 32 x 4 B > 1 MB = index_file_size: every flush is its own file
NODES = ["rc-rw", "rc-ro1", "rc-ro2"]


@pytest.fixture(scope="module")
def rc(lab):
    db = f"router_cache_{uuid.uuid4().hex[:6]}"
    lab.create_database(db)
    meta_uri = lab.meta_uri(db)
    started: list[str] = []
    try:
        recs = {}
        for name in NODES:
            started.append(name)
            used = {int(r["port"]) for r in lab.state.services().values() if r.get("port")}
            recs[name] = cluster.start_node(lab, name, role="rw" if name == "rc-rw" else "ro",
                                            meta_uri=meta_uri, port=procs.free_port(None, avoid=used))
        started.append("rc-router")
        rrec = cluster.start_router(lab, name="rc-router", woserver="rc-rw", hosts=["rc-ro1", "rc-ro2"],
                                    meta_uri=meta_uri, search_timeout=5, suspend_seconds=2)
        yield {"router": cluster.connect(rrec), "rw": cluster.connect(recs["rc-rw"]), "meta_uri": meta_uri,
               "router_pid": rrec["pid"]}
    finally:
        for name in reversed(started):
            try:
                if name == "rc-router":
                    get_service("router", "local", lab.state, name).stop(purge=True)
                else:
                    cluster.stop_node(lab, name, purge=True)
            finally:
                lab.umount(name)
        lab.drop_database(db)


def _stats(client) -> dict:
    return router.introspect(client)["topology"]["stats"]


def _insert(client, name, v, tag=None):
    st, ids = client.insert(name, v, partition_tag=tag) if tag else client.insert(name, v)
    assert st.OK(), st
    assert client.flush([name]).OK()
    return np.array(ids, dtype=np.int64)


def test_a_flush_or_delete_between_two_routed_searches_is_seen(rc):
    c, rw = rc["router"], rc["rw"]
    rng = np.random.default_rng(3)
    name = f"rc_{uuid.uuid4().hex[:6]}"
    assert c.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                                "metric_type": 1}).OK()
    data = rng.random((2 * SEG_ROWS, DIM), dtype=np.float32)
    ids = np.concatenate([_insert(c, name, data[:SEG_ROWS]), _insert(c, name, data[SEG_ROWS:])])
    q = data[:2].tolist()
    for _ in range(3):  # the first search reads the list, the next ones reuse it
        st, res = c.search(name, 1, q)
        assert st.OK(), st
        assert [r[0].id for r in res] == ids[:2].tolist()
    stale = _stats(c)["stale_cache"]

    new = rng.random((50, DIM), dtype=np.float32)
    new_ids = _insert(rw, name, new)  # flushed on the rw node, behind the router's back
    st, res = c.search(name, 1, new[:3].tolist())
    assert st.OK(), st
    assert [r[0].id for r in res] == new_ids[:3].tolist()
    assert [r[0].distance for r in res] == [0.0, 0.0, 0.0]
    assert _stats(c)["stale_cache"] == stale + 1

    assert rw.delete_entity_by_id(name, ids[:1].tolist()).OK()  # rewrites a file's row
    st, res = c.search(name, 1, q)
    assert st.OK(), st
    assert res[0][0].id != ids[0] and res[1][0].id == ids[1]
    stats = _stats(c)
    assert stats["stale_cache"] == stale + 2 and stats["reloads"] >= 1
    assert rw.drop_collection(name).OK()
    st, _ = c.search(name, 1, q)
    assert st.code == 4  # dropped behind the router's back: reported, not searched from the cache


def test_mysql_and_python_fingerprints_agree(rc):
    c = rc["router"]
    name = f"rcf_{uuid.uuid4().hex[:6]}"
    assert c.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                                "metric_type": 1}).OK()
    meta = MetaReader(parse_sqlalchemy_uri(rc["meta_uri"].replace("mysql://", "mysql+pymysql://", 1)))
    try:
        assert (meta.collection_files(name).fingerprint == meta.fingerprint(name)
                == (1, meta.fingerprint(name)[1]))
        assert c.create_partition(name, "tag-é✓").OK()  # non-ASCII: same bytes hashed on both sides
        _insert(c, name, np.ones((10, DIM), dtype=np.float32), tag="tag-é✓")
        found = meta.collection_files(name)
        assert len(found.files) == 1 and found.fingerprint == meta.fingerprint(name)
        assert meta.fingerprint("no_such_collection") == (0, 0)
    finally:
        meta.close()
        c.drop_collection(name)


def test_a_flush_through_the_router_refreshes_its_lists(rc):
    """Writes that pass through the router update its cached lists: the next search is not redone."""
    c = rc["router"]
    rng = np.random.default_rng(5)
    name = f"rcr_{uuid.uuid4().hex[:6]}"
    assert c.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                                "metric_type": 1}).OK()
    try:
        first = rng.random((SEG_ROWS, DIM), dtype=np.float32)
        _insert(c, name, first)
        assert c.search(name, 1, first[:1].tolist())[0].OK()  # caches the list
        stale = _stats(c)["stale_cache"]
        new = rng.random((50, DIM), dtype=np.float32)
        new_ids = _insert(c, name, new)  # flushed through the router
        st, res = c.search(name, 1, new[:3].tolist())
        assert st.OK(), st
        assert [r[0].id for r in res] == new_ids[:3].tolist()
        assert _stats(c)["stale_cache"] == stale  # the list was already current: no redo
    finally:
        c.drop_collection(name)


def _lease(client) -> dict:
    """The router's lease on the rw node's change messages, once it holds (renewed every 0.5 s)."""
    deadline = time.monotonic() + 10
    while True:
        info = router.introspect(client)["topology"]["meta_watch"]
        if info["lease"] or time.monotonic() > deadline:
            return info
        time.sleep(0.1)


def _node_watch(client) -> dict:
    st, text = client._cmd("labkit_stats")
    assert st.OK(), st
    return json.loads(text)["meta_watch"]


def _collection(c, rng, rows=SEG_ROWS):
    name = f"rcw_{uuid.uuid4().hex[:6]}"
    assert c.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                                "metric_type": 1}).OK()
    data = rng.random((rows, DIM), dtype=np.float32)
    return name, data, _insert(c, name, data)


def test_searches_read_no_metadata_while_the_rw_node_reports_no_change(rc):
    """The rw node tells the router of each change before acknowledging it: unchanged lists are
    searched with no MySQL query, and a write straight to the rw node is still seen at once."""
    c, rw = rc["router"], rc["rw"]
    rng = np.random.default_rng(11)
    name, data, ids = _collection(c, rng)
    try:
        info = _lease(c)
        assert info["lease"] and info["epoch"] == _node_watch(rw)["epoch"], info
        assert len(_node_watch(rw)["watchers"]) == 1
        q = data[:2].tolist()
        assert c.search(name, 1, q)[0].OK()  # reads or confirms the list at the current generation
        before = _stats(c)
        for _ in range(5):
            st, res = c.search(name, 1, q)
            assert st.OK(), st
            assert [r[0].id for r in res] == ids[:2].tolist()
        after = _stats(c)
        assert after["watched"] - before["watched"] == 5
        assert after["stale_cache"] == before["stale_cache"]

        version = _node_watch(rw)["version"]
        new = rng.random((50, DIM), dtype=np.float32)
        new_ids = _insert(rw, name, new)  # behind the router's back: the rw node tells it first
        assert _node_watch(rw)["version"] > version
        watched = _stats(c)["watched"]
        st, res = c.search(name, 1, new[:3].tolist())
        assert st.OK(), st
        assert [r[0].id for r in res] == new_ids[:3].tolist()
        assert _stats(c)["watched"] == watched  # that search checked MySQL, as the list had changed
    finally:
        c.drop_collection(name)


@pytest.mark.faults
def test_a_router_that_does_not_answer_is_waited_out_and_then_checks_again(rc):
    """A router stopped (SIGSTOP) cannot hear of a flush: the rw node acknowledges it only after the
    router's lease ran out, and the router, resumed, searches the new segment."""
    c, rw = rc["router"], rc["rw"]
    rng = np.random.default_rng(12)
    name, data, ids = _collection(c, rng)
    try:
        assert _lease(c)["lease"]
        assert c.search(name, 1, data[:1].tolist())[0].OK()
        waited = _node_watch(rw)["waited_out"]
        new = rng.random((50, DIM), dtype=np.float32)
        os.kill(rc["router_pid"], signal.SIGSTOP)
        try:
            new_ids = _insert(rw, name, new)
        finally:
            os.kill(rc["router_pid"], signal.SIGCONT)
        assert _node_watch(rw)["waited_out"] == waited + 1
        st, res = c.search(name, 1, new[:3].tolist())
        assert st.OK(), st
        assert [r[0].id for r in res] == new_ids[:3].tolist()
        assert _lease(c)["lease"]  # renewed once it runs again
    finally:
        c.drop_collection(name)
