"""While the rw node is down, new clients still connect through the router and search."""

from __future__ import annotations

import pytest
from milvus import Milvus

from labkit.bench import faults
from labkit.bench.ephemeral import EphemeralCluster
from labkit.lab import cluster

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_router_answers_version_and_status_itself(lab) -> None:
    with EphemeralCluster(lab, "fd-norw", ro=1, router=True) as ec:
        faults.new_collection(ec.client, "fd_norw")
        assert ec.client.insert("fd_norw", faults.vectors(200, 1))[0].OK()
        assert ec.client.flush(["fd_norw"]).OK()
        cluster.stop_node(ec.lab, ec.rw_name)
        client = Milvus(ec.router["host"], int(ec.router["port"]), wait_timeout=5)  # its connect check
        try:
            status, version = client.server_version(timeout=5)
            assert status.OK() and version.startswith("1.1"), status.message
            status, answer = client.server_status(timeout=5)
            assert status.OK() and answer == "OK", status.message
            st, res = client.search("fd_norw", 3, faults.vectors(1, 2), params={})
            assert st.OK() and len(res[0]) == 3, st.message
            st, _ = client.insert("fd_norw", faults.vectors(1, 3))
            assert not st.OK()  # writes need the rw node: a clear error, not a hang
        finally:
            client.close()
