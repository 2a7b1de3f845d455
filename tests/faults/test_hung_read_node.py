"""A hung (SIGSTOPped, not dead) read node: each search waits for it at most once, one timeout long."""

from __future__ import annotations

import pytest

from labkit.bench import faults

pytestmark = [pytest.mark.integration, pytest.mark.faults]

TIMEOUT = 3.0


def test_hung_read_node_costs_at_most_one_timeout(lab) -> None:
    r = faults.ro_hang(lab, search_timeout=TIMEOUT, hang_s=12.0)
    assert r["client_errors"] == 0 and r["partial_results"] == 0, r
    assert r["max_ms"] <= (TIMEOUT + 1) * 1000, r  # never the speculative pass plus a normal pass
    assert r["p99_ms"] <= (TIMEOUT + 1) * 1000, r
    # suspension backs off while the node stays hung: stalls do not come back every few seconds
    assert r["slow_searches_during_hang"] <= 2 * 2, r  # at most the first search of each client... twice
    assert r["normal_after_s"] <= TIMEOUT + 2.0, r
    assert r["searches_during_hang"] > 100
    assert r["found"] == r["acked"]
