"""The router end to end: real nodes (rw + ro on their own JuiceFS mounts), MariaDB metadata,
pymilvus 1.1.2 talking only to the router. Every routed answer is checked against numpy."""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest

from labkit import router
from labkit.lab import cluster, procs
from labkit.lab.services.base import get_service
from labkit.router.ring import Ring

pytestmark = pytest.mark.integration

DIM = 128
SEG_ROWS = 2100  # 2100 x 128 x 4 B > 1 MB = index_file_size: every flush is its own, unmerged file
NODES = ["rt-rw", "rt-ro1", "rt-ro2", "rt-ro3"]


def _start(lab, name, role, meta_uri):
    """A node on a kernel-chosen free port (other labs' nodes may hold 1953x on this machine)."""
    used = {int(r["port"]) for r in lab.state.services().values() if r.get("port")}
    return cluster.start_node(lab, name, role=role, meta_uri=meta_uri, port=procs.free_port(None, avoid=used))


@pytest.fixture(scope="module")
def rt(lab):
    """rw + three ro nodes on one fresh metadata database, and a static-discovery router."""
    db = f"router_it_{uuid.uuid4().hex[:6]}"
    lab.create_database(db)
    meta_uri = lab.meta_uri(db)
    started: list[str] = []
    try:
        recs = {}
        for name in NODES:
            started.append(name)
            recs[name] = _start(lab, name, "rw" if name == "rt-rw" else "ro", meta_uri)
        started.append("rt-router")
        rrec = cluster.start_router(lab, name="rt-router", woserver="rt-rw", hosts=["rt-ro1"],
                                    meta_uri=meta_uri, search_timeout=5, suspend_seconds=2)
        client = cluster.connect(rrec)
        yield {"lab": lab, "nodes": recs, "router": rrec, "client": client, "meta_uri": meta_uri,
               "direct": cluster.connect(recs["rt-rw"])}
    finally:
        for name in reversed(started):
            try:
                if name == "rt-router":
                    get_service("router", "local", lab.state, name).stop(purge=True)
                else:
                    cluster.stop_node(lab, name, purge=True)
            finally:
                lab.umount(name)
        lab.drop_database(db)


def _addr(rec):
    return f"{rec['host']}:{rec['port']}"


def _set_read_nodes(rt, names):
    svc = get_service("router", "local", rt["lab"].state, "rt-router")
    svc.set_hosts(names)
    want = sorted(_addr(rt["nodes"][n]) for n in names)
    topo = router.introspect(rt["client"])["topology"]
    assert sorted(topo["read_nodes"]) == want


def _ground_truth(data, ids, q, topk):
    d = ((q[:, None, :].astype(np.float64) - data[None].astype(np.float64)) ** 2).sum(-1)
    order = np.argsort(d, axis=1, kind="stable")[:, :topk]
    return ids[order], np.take_along_axis(d, order, 1)


def _check(res, want_ids, want_d):
    """Exact FLAT answer: same ids per row (a swap allowed only between equal distances)."""
    got_ids = np.array(res.id_array)
    got_d = np.array(res.distance_array)
    assert got_ids.shape == want_ids.shape, f"incomplete result {got_ids.shape} != {want_ids.shape}"
    assert np.allclose(got_d, want_d, rtol=1e-4, atol=1e-3)
    for g, w, wd in zip(got_ids, want_ids, want_d, strict=True):
        if not np.array_equal(g, w):
            assert set(g) - set(w) == set() or np.isclose(wd[-1], wd[-2], rtol=1e-4)


def _fill(client, name, segments, rng):
    st = client.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                                   "metric_type": 1})
    assert st.OK(), st
    datas, idss = [], []
    for _ in range(segments):
        v = rng.random((SEG_ROWS, DIM), dtype=np.float32)
        st, ids = client.insert(name, v)
        assert st.OK(), st
        assert client.flush([name]).OK()
        datas.append(v)
        idss.append(np.array(ids, dtype=np.int64))
    return np.concatenate(datas), np.concatenate(idss)


@pytest.fixture(scope="module")
def coll(rt):
    rng = np.random.default_rng(5)
    name = f"rt_{uuid.uuid4().hex[:6]}"
    data, ids = _fill(rt["client"], name, 6, rng)
    return {"name": name, "data": data, "ids": ids, "q": rng.random((10, DIM), dtype=np.float32)}


@pytest.mark.parametrize("n_read", [1, 2, 3])
def test_routed_results_equal_a_single_node(rt, coll, n_read):
    names = ["rt-ro1", "rt-ro2", "rt-ro3"][:n_read]
    _set_read_nodes(rt, names)
    want_ids, want_d = _ground_truth(coll["data"], coll["ids"], coll["q"], 10)
    st, routed = rt["client"].search(coll["name"], 10, coll["q"])
    assert st.OK(), st
    st, direct = rt["direct"].search(coll["name"], 10, coll["q"])
    assert st.OK(), st
    assert np.array_equal(np.array(routed.id_array), np.array(direct.id_array))
    _check(routed, want_ids, want_d)
    plan = router.introspect(rt["client"], coll["name"])["routing"]
    assert len(plan["files"]) == 6
    assert set(plan["by_node"]) <= {_addr(rt["nodes"][n]) for n in names}
    assert sum(len(v) for v in plan["by_node"].values()) == 6
    topo = router.introspect(rt["client"])["topology"]
    assert topo["stats"]["routed"] >= 1


# Milvus 1.1 (DBImpl::GetPartitionsByTags): tags are a union of full-match regexes over the
# partitions, `_default` is the collection itself, an invalid regex matches nothing, and only a
# search that selects nothing at all fails (code 1).
TAG_CASES = [["a", "missing"], ["("], ["a.*"], [], ["_default", "b"], ["missing"]]


@pytest.fixture(scope="module")
def tagged(rt):
    """A collection with rows in `_default` and in partitions a, ab and b, each flushed to its own file."""
    c = rt["client"]
    rng = np.random.default_rng(21)
    name = f"rtt_{uuid.uuid4().hex[:6]}"
    st = c.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1,
                              "metric_type": 1})
    assert st.OK(), st
    ids_of = {}
    for tag in ["_default", "a", "ab", "b"]:
        if tag != "_default":
            assert c.create_partition(name, tag).OK()
        st, ids = c.insert(name, rng.random((500, DIM), dtype=np.float32),
                           partition_tag=None if tag == "_default" else tag)
        assert st.OK(), st
        ids_of[tag] = set(ids)
    assert c.flush([name]).OK()
    yield {"name": name, "ids": ids_of, "q": rng.random((4, DIM), dtype=np.float32)}
    c.drop_collection(name)


@pytest.mark.parametrize("tags", TAG_CASES, ids=lambda t: repr(t))
def test_partition_tags_answer_exactly_as_the_rw_node(rt, tagged, tags):
    _set_read_nodes(rt, ["rt-ro1", "rt-ro2"])
    name, q = tagged["name"], tagged["q"]
    routed_before = router.introspect(rt["client"])["topology"]["stats"]["routed"]
    st_r, res_r = rt["client"].search(name, 10, q, partition_tags=tags)
    st_d, res_d = rt["direct"].search(name, 10, q, partition_tags=tags)
    assert (st_r.code, st_r.message) == (st_d.code, st_d.message)
    expected = {  # the partitions 1.1 searches for each case; None: refused with code 1
        ("a", "missing"): {"a"}, ("(",): None, ("a.*",): {"a", "ab"}, (): {"_default", "a", "ab", "b"},
        ("_default", "b"): {"_default", "b"}, ("missing",): None,
    }[tuple(tags)]
    if expected is None:
        assert st_d.code == 1 and "partition does not exist" in st_d.message
        return
    assert st_d.OK(), st_d
    routed_ids, direct_ids = np.array(res_r.id_array), np.array(res_d.id_array)
    assert routed_ids.shape == (len(q), 10)
    assert np.array_equal(routed_ids, direct_ids)
    assert np.array_equal(np.array(res_r.distance_array), np.array(res_d.distance_array))
    allowed = set().union(*(tagged["ids"][t] for t in expected))
    assert set(direct_ids.ravel().tolist()) <= allowed
    stats = router.introspect(rt["client"])["topology"]["stats"]
    assert stats["routed"] > routed_before  # the read nodes served it


def test_writes_through_the_router_are_searched(rt):
    _set_read_nodes(rt, ["rt-ro1", "rt-ro2"])
    c = rt["client"]
    rng = np.random.default_rng(9)
    name = f"rtw_{uuid.uuid4().hex[:6]}"
    data, ids = _fill(c, name, 2, rng)
    assert c.create_partition(name, "p1").OK()
    pdata = rng.random((300, DIM), dtype=np.float32)
    st, pids = c.insert(name, pdata, partition_tag="p1")
    assert st.OK(), st
    q = np.concatenate([data[:3], pdata[:2]])  # queries that hit their own vectors at distance 0
    # not flushed yet: invisible to routed searches, as on a Milvus 1.1 cluster
    assert c.flush([name]).OK()
    pids = np.array(pids, dtype=np.int64)
    all_data, all_ids = np.concatenate([data, pdata]), np.concatenate([ids, pids])
    st, res = c.search(name, 5, q)
    assert st.OK(), st
    _check(res, *_ground_truth(all_data, all_ids, q, 5))
    st, res = c.search(name, 5, q, partition_tags=["p1"])
    assert st.OK(), st
    _check(res, *_ground_truth(pdata, pids, q, 5))
    st, res = c.search(name, 5, q, partition_tags=["_default"])
    _check(res, *_ground_truth(data, ids, q, 5))

    # delete through the router (partition_tag passed on): the ro nodes reload and drop them
    gone = np.concatenate([ids[:3], pids[:2]])
    assert c.delete_entity_by_id(name, ids[:3].tolist()).OK()
    assert c.delete_entity_by_id(name, pids[:2].tolist(), partition_tag="p1").OK()
    assert c.flush([name]).OK()
    keep = ~np.isin(all_ids, gone)
    st, res = c.search(name, 5, q)
    assert st.OK(), st
    assert not set(np.array(res.id_array).ravel()) & set(gone.tolist())
    _check(res, *_ground_truth(all_data[keep], all_ids[keep], q, 5))
    assert router.introspect(c)["topology"]["stats"]["reloads"] >= 1
    st, vecs = c.get_entity_by_id(name, [int(pids[5])], partition_tag="p1")
    assert st.OK() and np.allclose(vecs[0], pdata[5])
    assert c.count_entities(name)[1] == keep.sum()

    # index through the router; nprobe = nlist searches every list, so results stay exact
    assert c.create_index(name, 2, {"nlist": 4}).OK()  # IVF_FLAT
    st, res = c.search(name, 5, q, params={"nprobe": 4})
    assert st.OK(), st
    _check(res, *_ground_truth(all_data[keep], all_ids[keep], q, 5))
    st, res = c.search(name, 5, q, params={"nprobe": 0})
    assert st.code == 5  # ILLEGAL_ARGUMENT from the nodes, passed on
    st, res = c.search("no_such_collection", 5, q)
    assert st.code == 4
    assert c.drop_collection(name).OK()


def test_adding_a_read_node_moves_files(rt, coll):
    _set_read_nodes(rt, ["rt-ro1", "rt-ro2"])
    c = rt["client"]
    before = router.introspect(c, coll["name"])["routing"]["by_node"]
    new = _addr(rt["nodes"]["rt-ro3"])
    fids = [f for fs in before.values() for f in fs]
    expected_moves = Ring(list(before) + [new]).assign(fids).get(new, [])
    topo = router.add_node(c, new)
    try:
        assert new in topo["read_nodes"]
        after = router.introspect(c, coll["name"])["routing"]["by_node"]
        assert sorted(after.get(new, [])) == sorted(expected_moves)
        for node, files in after.items():  # nothing moves between the old nodes
            if node != new:
                assert set(files) <= set(before[node])
        st, res = c.search(coll["name"], 10, coll["q"])
        assert st.OK(), st
        _check(res, *_ground_truth(coll["data"], coll["ids"], coll["q"], 10))
    finally:
        router.remove_node(c, new)


def test_killing_a_read_node_never_gives_a_partial_success(rt, coll):
    lab = rt["lab"]
    extra = _start(lab, "rt-ro-kill", "ro", rt["meta_uri"])
    victim_name = None
    try:
        _set_read_nodes(rt, ["rt-ro1"])
        c = rt["client"]
        router.add_node(c, _addr(extra))
        plan = router.introspect(c, coll["name"])["routing"]["by_node"]
        # kill the node holding most files (at least 3 of 6), so its files must move mid-run
        by_addr = {_addr(rt["nodes"]["rt-ro1"]): "rt-ro1", _addr(extra): "rt-ro-kill"}
        victim_addr = max(by_addr, key=lambda a: len(plan.get(a, [])))
        victim_name = by_addr[victim_addr]
        victim_pid = extra["pid"] if victim_name == "rt-ro-kill" else rt["nodes"]["rt-ro1"]["pid"]
        want_ids, want_d = _ground_truth(coll["data"], coll["ids"], coll["q"], 10)
        outcomes: list[str] = []
        errors: list[BaseException] = []

        killed = threading.Event()

        def run():
            # search until the victim is dead, then 20 more: every one must be complete or an error
            try:
                client = cluster.connect(rt["router"])
                after_kill = 0
                while after_kill < 20 and len(outcomes) < 5000:
                    after_kill += killed.is_set()
                    st, res = client.search(coll["name"], 10, coll["q"])
                    if st.OK():
                        _check(res, want_ids, want_d)  # a success must be complete and exact
                        outcomes.append("ok")
                    else:
                        outcomes.append(f"error {st.code}")
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        t = threading.Thread(target=run)
        t.start()
        time.sleep(0.3)
        procs.stop(victim_pid, timeout=0.1)  # SIGTERM, then SIGKILL
        killed.set()
        t.join(120)
        assert not errors, errors[0]
        assert outcomes and outcomes.count("ok") == len(outcomes), outcomes  # others (or rw) served all
        topo = router.introspect(c)["topology"]
        assert topo["stats"]["node_failures"] >= 1 and victim_addr in topo["suspended"]
        after = router.introspect(c, coll["name"])["routing"]["by_node"]
        assert victim_addr not in after and sum(len(v) for v in after.values()) == 6  # rebalanced
    finally:
        try:
            router.remove_node(rt["client"], _addr(extra))
        finally:
            cluster.stop_node(lab, "rt-ro-kill", purge=True)
            lab.umount("rt-ro-kill")
            if victim_name == "rt-ro1":  # later tests use it again
                rt["nodes"]["rt-ro1"] = _start(lab, "rt-ro1", "ro", rt["meta_uri"])


def test_without_a_live_read_node_the_rw_node_serves(rt, coll):
    c = rt["client"]
    _set_read_nodes(rt, [])
    dead = f"127.0.0.1:{procs.free_port()}"  # nothing listens there
    router.add_node(c, dead)
    try:
        before = router.introspect(c)["topology"]["stats"]["rw_served"]
        for _ in range(3):
            st, res = c.search(coll["name"], 10, coll["q"])
            assert st.OK(), st
            _check(res, *_ground_truth(coll["data"], coll["ids"], coll["q"], 10))
        assert router.introspect(c)["topology"]["stats"]["rw_served"] >= before + 3
    finally:
        router.remove_node(c, dead)


def test_read_nodes_are_called_over_frames_and_grpc_gives_the_same_answers(rt, coll):
    """Lab nodes take the router's SearchInFiles over frames; a router told not to uses gRPC."""
    _set_read_nodes(rt, ["rt-ro1", "rt-ro2"])
    st, framed = rt["client"].search(coll["name"], 10, coll["q"])
    assert st.OK(), st
    links = router.introspect(rt["client"])["topology"]["links"]
    assert {v["link"] for v in links.values()} == {"frames"} and len(links) == 2
    lab = rt["lab"]
    rec = cluster.start_router(lab, name="rt-router-grpc", woserver="rt-rw", hosts=["rt-ro1", "rt-ro2"],
                               meta_uri=rt["meta_uri"], node_frames=False)
    try:
        c = cluster.connect(rec)
        st, plain = c.search(coll["name"], 10, coll["q"])
        assert st.OK(), st
        assert np.array_equal(np.array(plain.id_array), np.array(framed.id_array))
        assert np.allclose(np.array(plain.distance_array), np.array(framed.distance_array))
        topo = router.introspect(c)["topology"]
        assert topo["stats"]["routed"] >= 1
        assert {v["link"] for v in topo["links"].values()} == {"grpc"}
        c.close()
    finally:
        get_service("router", "local", lab.state, "rt-router-grpc").stop(purge=True)
    _check(framed, *_ground_truth(coll["data"], coll["ids"], coll["q"], 10))
