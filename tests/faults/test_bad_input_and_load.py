"""Malformed, truncated and oversized gRPC requests, and 200 concurrent clients: clear errors, no loss."""

from __future__ import annotations

import pytest

from labkit.bench import faults

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_malformed_truncated_and_oversized_messages_get_clear_errors(lab) -> None:
    r = faults.bad_messages(lab, oversize_mb=520)
    assert r["unclear_errors"] == 0, r["cases"]
    assert r["servers_answer_after"], r["cases"]
    for target in ("node", "router"):
        assert r["cases"][f"{target}.oversized"]["grpc"] == "RESOURCE_EXHAUSTED"
        assert r["cases"][f"{target}.truncated_insert"]["milvus_code"] not in (None, 0)
    assert r["found"] == r["acked"]


def test_200_concurrent_clients(lab) -> None:
    r = faults.many_clients(lab, clients=200, seconds=5.0)
    assert r["client_errors"] == 0, r
    assert r["searches"] >= 200
    assert r["found"] == r["acked"]
    assert r["recovery_s"] is not None
