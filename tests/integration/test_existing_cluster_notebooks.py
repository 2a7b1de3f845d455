"""Notebooks 03, 04 and 06 against a cluster started separately (LABKIT_CLUSTER_*), starting nothing.

A cluster is brought up with `labkit up --cluster --ro 2` in its own LABKIT_HOME; the notebooks then
run with papermill at SIZE=ci under a second, empty LABKIT_HOME whose settings file names that
cluster's router, nodes, MySQL, Redis and storage path. Nothing may be recorded or running in the
second home afterwards; the first cluster is torn down by its own state.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labkit.cli.run import run_notebook
from labkit.lab import cluster
from labkit.lab.api import Lab
from labkit.lab.state import REPO_ROOT, LabState
from labkit.nb.views import leftovers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

NOTEBOOKS = ("03_milvus_rw_ro.ipynb", "04_mishards.ipynb", "06_first_query_benchmark.ipynb")


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "LABKIT_HOME": str(home)}, stdin=subprocess.DEVNULL)


def _settings(home: Path) -> str:
    """The KEY=VALUE settings file naming the cluster recorded in ``home``."""
    lab = Lab(home)
    recs = lab.state.services()
    ro = sorted((r for r in recs.values() if r.get("kind") == "node" and r.get("role") == "ro"),
                key=lambda r: r["name"])
    return "\n".join([
        f"LABKIT_CLUSTER_ROUTER={cluster.address(recs['router'])}",
        f"LABKIT_CLUSTER_RW={cluster.address(recs['rw'])}",
        f"LABKIT_CLUSTER_RO={','.join(cluster.address(r) for r in ro)}",
        f"LABKIT_CLUSTER_MYSQL={lab.meta_uri()}",
        f"LABKIT_CLUSTER_REDIS={lab.redis_url()}",
        f"LABKIT_CLUSTER_STORAGE={recs['rw']['storage_path']}",
    ]) + "\n"


def test_notebooks_run_against_a_separate_cluster(tmp_path: Path) -> None:
    first, second, out_dir = tmp_path / "cluster", tmp_path / "user", tmp_path / "artifacts"
    second.mkdir()
    try:
        up = _cli("up", "--cluster", "--ro", "2", home=first)
        assert up.returncode == 0, up.stdout + up.stderr
        assert re.search(r"Router \(Mishards role\): [\d.]+:\d+", up.stdout), up.stdout
        settings = tmp_path / "cluster.env"
        settings.write_text(_settings(first))
        env = {"LABKIT_HOME": str(second), "LABKIT_CLUSTER_FILE": str(settings),
               "LABKIT_ARTIFACTS": str(out_dir), "LABKIT_CI": "1", "LABKIT_SIZE": "ci"}
        shown: dict[str, str] = {}  # each notebook's outputs, as text
        for name in NOTEBOOKS:
            result = run_notebook(REPO_ROOT / "notebooks" / name, "ci", out_dir, timeout=300,
                                  log_output=False, env=env)
            assert result["ok"], f"{name}: {result['error']}; executed copy: {out_dir / name}"
            nb = nbformat.read(out_dir / name, as_version=4)
            checks = [c for c in nb.cells if "check" in c.get("metadata", {}).get("tags", [])]
            assert checks and all(c.get("execution_count") for c in checks), f"{name}: check cell did not run"
            shown[name] = text = json.dumps([c.get("outputs", []) for c in nb.cells])
            assert f"file {settings}" in text, f"{name} does not say which cluster it used"
            metrics = json.loads((out_dir / f"{name[:2]}_metrics.json").read_text())
            assert metrics["notebook"].startswith(name[:2])
        text03, text04 = shown[NOTEBOOKS[0]], shown[NOTEBOOKS[1]]
        assert "role: ro" in text03 and "Skipped: the cluster panel" in text03  # config over the wire
        assert "Skipped: the fault demo" in text04 and "segment files per read node" in text04
        result06 = json.loads((out_dir / "06_first_query.json").read_text())
        assert set(result06["modes"]) == {"lazy"} and result06["plan"]["ro_nodes"] == 2
        assert all(b["verified"] and len(b["node_lag_s"]) == 2 for b in result06["modes"]["lazy"]["batches"])
        # nothing was started for the second home, and the first cluster served everything
        assert LabState(second).services() == {} and not list(second.iterdir())  # not even a state file
        assert leftovers(second) == {"processes": [], "mounts": []}
        recs = Lab(first).state.services()
        assert {"rw", "ro1", "ro2", "router"} <= set(recs)
    finally:
        down = _cli("down", "--purge", home=first)
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers(first) == {"processes": [], "mounts": []}
