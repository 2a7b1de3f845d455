"""`labkit up --cluster` with the local backend: one command, a router address pymilvus can use."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labkit.lab import cluster
from labkit.lab.api import Lab
from labkit.lab.services import juicefs as jfs

pytestmark = pytest.mark.integration


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "LABKIT_HOME": str(home)}, stdin=subprocess.DEVNULL)


def test_up_cluster_local_prints_a_usable_router(tmp_path: Path) -> None:
    from milvus import Milvus

    home = tmp_path / "lab"
    try:
        proc = _cli("up", "--cluster", "--ro", "1", home=home)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        m = re.search(r"Router \(Mishards role\): ([\d.]+):(\d+)", proc.stdout)
        assert m, proc.stdout
        recs = Lab(home).state.services()
        assert recs["rw"]["backend"] == "local" and recs["ro1"]["role"] == "ro" and recs["router"]["pid"]
        client = Milvus(m.group(1), int(m.group(2)))
        data = np.random.default_rng(5).random((500, 8), dtype=np.float32)
        assert client.create_collection({"collection_name": "cli_up", "dimension": 8, "index_file_size": 1024,
                                         "metric_type": 1}).OK()
        st, ids = client.insert("cli_up", data.tolist())
        assert st.OK() and client.flush(["cli_up"]).OK()
        st, res = client.search("cli_up", 3, data[:5].tolist())
        assert st.OK() and [row[0] for row in res.id_array] == ids[:5]
        client.close()
        assert cluster.recorded(Lab(home)) == {"ro": 1, "backend": "local", "preload": False}
        bad = _cli("up", "--cluster", "--ro", "-1", home=home)
        assert bad.returncode == 1 and "between 0 and 16" in bad.stderr
    finally:
        _cli("down", "--purge", home=home)
    assert not jfs.mounts_under(home)
