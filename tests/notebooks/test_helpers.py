"""The notebook helpers' own logic: ground truth, diffs, row sizing, leftovers after teardown."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from labkit.lab.procs import stop
from labkit.nb import show, walkthrough
from labkit.nb.views import leftovers


def test_brute_force_and_recall() -> None:
    data = walkthrough.vectors(200, 8, seed=1)
    ids = list(range(1000, 1200))
    truth, dist = walkthrough.brute_force(data, ids, data[:3], topk=5)
    assert truth[:, 0].tolist() == [1000, 1001, 1002] and np.allclose(dist[:, 0], 0, atol=1e-4)
    assert (np.diff(dist, axis=1) >= -1e-6).all()  # ascending squared L2
    assert walkthrough.recall(truth.tolist(), truth) == 1.0
    assert walkthrough.recall([[1, 2, 3, 4, 5]] * 3, truth) == 0.0
    ip_ids, ip = walkthrough.brute_force(data, ids, data[:2], topk=4, metric="IP")
    assert (np.diff(ip, axis=1) <= 1e-6).all()  # descending for IP


def test_unmerged_rows_fill_index_file_size() -> None:
    rows = walkthrough.unmerged_rows(dim=128, files=3)
    assert rows // 3 * 128 * 4 >= 1 << 20
    assert walkthrough.unmerged_rows(dim=128, files=3, at_least=10**6) == 10**6


def test_changed_lines_and_diff() -> None:
    a, b = "x: 1\nrole: rw\ny: 2", "x: 1\nrole: ro\ny: 2"
    assert show.changed_lines(a, b) == [("role: rw", "role: ro")]
    assert "-role: rw" in repr(show.diff(a, b)) and "(identical)" in repr(show.diff(a, a))
    assert "no rows" in repr(show.table([]))


def test_leftovers_sees_only_the_lab_home(tmp_path) -> None:
    home, sibling = tmp_path / "lab", tmp_path / "lab-other"
    home.mkdir()
    nap = [sys.executable, "-c", "import time; time.sleep(30)"]
    mine = subprocess.Popen([*nap, str(home / "data")])
    other = subprocess.Popen([*nap, str(sibling)])
    try:
        left = leftovers(home)
        assert [p.split()[0] for p in left["processes"]] == [str(mine.pid)]
        assert left["mounts"] == []
    finally:
        stop(mine.pid)
        stop(other.pid)
    assert leftovers(home)["processes"] == []
