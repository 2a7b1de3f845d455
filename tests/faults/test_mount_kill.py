"""A killed JuiceFS client under the rw node: reported, healed by `labkit up`, rw restarts at once."""

from __future__ import annotations

import pytest

from labkit.bench import faults
from labkit.lab.services import juicefs as jfs

pytestmark = [pytest.mark.integration, pytest.mark.faults,
              pytest.mark.skipif(not jfs.fuse_available()[0], reason="no FUSE here")]


def test_killed_mount_is_reported_healed_and_its_lock_is_not_stale(lab) -> None:
    r = faults.mount_kill(lab)
    assert r["reported_unhealthy_during"] and "mount is DOWN" in r["detail_during"], r
    assert r["recovery_s"] <= 5.0, r
    assert r["healthy_after"]
    assert r["rw_restart_s"] < 15.0, r  # not the ~60 s until the dead session's lock expires
    assert r["found"] == r["acked"] == 1300
