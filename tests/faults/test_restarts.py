"""kill -9 and restarts under a working cluster: no acknowledged row lost, everything heals."""

from __future__ import annotations

import pytest

from labkit.bench import faults

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def test_redis_kill_and_restart_heals_mounts_and_flushes(lab) -> None:
    r = faults.redis_restart(lab)
    assert r["found"] == r["acked"] == 1300
    assert r["mount_recovery_s"] is not None and r["mount_recovery_s"] <= 5.0, r
    assert r["recovery_s"] is not None and r["recovery_s"] <= 5.0, r
    assert r["mounts_healthy_after"]


def test_kill9_rw_during_inserts_keeps_every_acknowledged_row(lab) -> None:
    r = faults.rw_kill(lab, seconds=2.0)
    assert r["acked"] > 0 and r["client_errors"] == 1  # the insert in flight when it died
    # acknowledged rows are all there; the one batch in flight may or may not have reached the WAL
    assert r["acked"] <= r["found"] <= r["acked"] + r["in_flight"], r
    assert r["recovery_s"] is not None


def test_kill9_a_read_node_during_routed_searches(lab) -> None:
    r = faults.ro_kill(lab, seconds=4.0)
    assert r["searches"] > 20
    assert r["client_errors"] == 0 and r["partial_results"] == 0, r
    assert r["found"] == r["acked"]


def test_quota_full_on_flush_fails_cleanly_and_heals(lab) -> None:
    r = faults.quota_full(lab)
    assert r["flush_failed_when_full"] and r["flush_s_when_full"] < 10, r
    assert r["answers_when_full"]
    assert r["recovery_s_after_quota_removed"] is not None, r
    assert r["found"] == r["acked"] == 2000
