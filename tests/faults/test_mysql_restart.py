"""Item: a MySQL restart under a running node (the node must heal by itself, within 5 s)."""

from __future__ import annotations

import pytest

from labkit.bench import faults

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_node_answers_again_within_5s_of_mysql_back_without_restart(lab) -> None:
    r = faults.mysql_restart(lab)
    assert r["client_errors"] > 0  # the fault was real: calls failed while MySQL was down
    assert r["reported_unhealthy_during"], r["detail_during"]
    assert "metadata" in r["detail_during"]
    assert r["recovery_s"] is not None and r["recovery_s"] <= 5.0, r
    assert not r["node_restarted"]
    assert r["found"] == r["acked"] == 1500
    assert r["healthy_after"]
