"""Read nodes release the cached segments of dropped collections and partitions (learned from metadata)."""

from __future__ import annotations

import json
import time

import pytest

from labkit.bench import faults
from labkit.bench.ephemeral import EphemeralCluster

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _cached(client, table_id: str | None = None) -> int:
    status, reply = client._cmd("cache_info")  # labkit extension of Cmd
    assert status.OK()
    return sum(s.get("rows", 0) for s in json.loads(reply)["segments"]
               if table_id is None or s.get("table_id") == table_id)


def _wait_cached(client, table_id: str, want: int, timeout: float = 10.0) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if _cached(client, table_id) == want:
            return time.monotonic() - start
        time.sleep(0.2)
    return None


def test_read_node_frees_dropped_collections_and_partitions(lab) -> None:
    with EphemeralCluster(lab, "fd-release", ro=1, router=False) as ec:
        rw, ro = ec.node_clients[ec.rw_name], ec.node_clients[ec.ro_names[0]]
        for name in ("fd_rel_a", "fd_rel_b"):
            faults.new_collection(rw, name)
        assert rw.create_partition("fd_rel_a", "p1").OK()
        assert rw.insert("fd_rel_a", faults.vectors(500, 1))[0].OK()
        assert rw.insert("fd_rel_a", faults.vectors(300, 2), partition_tag="p1")[0].OK()
        assert rw.insert("fd_rel_b", faults.vectors(400, 3))[0].OK()
        assert rw.flush(["fd_rel_a", "fd_rel_b"]).OK()
        q = faults.vectors(1, 4)
        for name in ("fd_rel_a", "fd_rel_b"):  # the read node loads every segment into its cache
            assert ro.search(name, 3, q, params={})[0].OK()
        assert _cached(ro, "fd_rel_a") == 500 and _cached(ro, "fd_rel_b") == 400
        cached_tables = {s["table_id"] for s in json.loads(ro._cmd("cache_info")[1])["segments"]}
        partition_table = [t for t in cached_tables if t not in ("fd_rel_a", "fd_rel_b")]
        assert len(partition_table) == 1 and _cached(ro, partition_table[0]) == 300

        assert rw.drop_partition("fd_rel_a", "p1").OK()
        assert _wait_cached(ro, partition_table[0], 0) is not None
        assert rw.drop_collection("fd_rel_b").OK()
        assert _wait_cached(ro, "fd_rel_b", 0) is not None
        assert _cached(ro, "fd_rel_a") == 500  # what is still searchable stays cached
        assert ro.search("fd_rel_a", 3, q, params={})[0].OK()
