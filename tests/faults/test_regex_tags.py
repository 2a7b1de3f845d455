"""Partition-tag regular expressions cannot burn a core: linear-time matching, clear errors."""

from __future__ import annotations

import time

import pytest

from labkit.bench import faults
from labkit.bench.ephemeral import EphemeralCluster

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_catastrophic_patterns_answer_at_once(lab) -> None:
    with EphemeralCluster(lab, "fd-regex", ro=1, router=True) as ec:
        rw = ec.node_clients[ec.rw_name]
        faults.new_collection(rw, "fd_regex")
        long_tags = ["a" * 36 + "b", "a" * 254 + "b"]
        for tag in ["aaa", *long_tags]:
            assert rw.create_partition("fd_regex", tag).OK()
        assert rw.insert("fd_regex", faults.vectors(50, 1), partition_tag="aaa")[0].OK()
        assert rw.flush(["fd_regex"]).OK()
        q = faults.vectors(1, 2)
        for client in (ec.client, ec.node_clients[ec.ro_names[0]], rw):  # router, read node, rw node
            for pattern in ("(a|aa)+", "(a+)+$", "(a|a?)+"):
                start = time.monotonic()
                st, res = client.search("fd_regex", 3, q, partition_tags=[pattern], params={}, timeout=60)
                took = time.monotonic() - start
                assert took < 1.0, (pattern, took)
                assert st.OK() and len(res[0]) == 3, st.message  # "aaa" matches, the long tags do not
            st, _ = client.search("fd_regex", 3, q, partition_tags=[r"(a)\1"], params={}, timeout=60)
            assert not st.OK() and "partition tag" in st.message.lower(), st.message
