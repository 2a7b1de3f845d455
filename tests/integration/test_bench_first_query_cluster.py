"""First-query benchmark end to end: rw + ro nodes on JuiceFS, the router, pymilvus 1.1.2, both modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from labkit.bench import first_query as fq

pytestmark = pytest.mark.integration


def _leftovers(lab) -> list[str]:
    return [n for n in lab.state.services() if n.startswith(("fq-", "mount-fq-"))]


def test_both_modes_measure_and_verify_every_batch(lab):
    result = fq.run_first_query("ci", "both", lab=lab, batches=2, intervals=(0.05, 0.1))
    assert set(result["modes"]) == {"lazy", "preload"}
    for mode, run in result["modes"].items():
        assert [b["batch"] for b in run["batches"]] == [1, 2], mode
        for b in run["batches"]:
            assert (b["verified"] is True and b["first_s"] > 0 and b["warm_s"] > 0
                    and b["idle_warm_s"] > 0 and b["unseen_query_s"] > 0), b
            assert b["freshness_s"] >= 0, b
            # lazy: every ro node was asked directly; preload: the node the router sends the file to
            assert len(b["node_lag_s"]) == (result["plan"]["ro_nodes"] if mode == "lazy" else 1), b
            assert b["file_types"] == [3], b  # the batch was sealed into an indexed file
            first = b["breakdown"]["first_query"]
            assert first["latency_ms"] > 0 and first["router"]["calls"] == 1, first
            assert first["nodes"] and all(v["search"] > 0 for v in first["nodes"].values()), first
            if mode == "preload":
                load = b["breakdown"]["load"]
                assert load["read_ms"] > 0 and load["meta_lag_ms"] >= 0 and load["bytes"] > 0, load
            if lab.fuse:
                assert 0 < b["faiss_s"] < b["warm_s"], b  # in process: no server, no RPC
                assert b["faiss_all_s"] > 0 and b["faiss_all_idle_s"] > 0, b  # every file, then after a pause
        assert run["rows_total"] == 2 * result["plan"]["batch_rows"]
        assert run["first_s"]["n"] == 2
        assert run["breakdown_ms"]["first_query"]["latency_ms"] > 0
        assert run["overhead_to_warm_p50"] is not None
        assert (run["faiss_idle_overhead_to_warm_p50"] is not None) == bool(lab.fuse)
    if lab.fuse:
        assert all(b["cold_read"]["mib_s"] > 0 for b in result["modes"]["lazy"]["batches"])
    assert not _leftovers(lab), "nodes, router and mounts are removed"
    json.dumps(result)


def test_cli_json(lab):
    env = {**os.environ, "LABKIT_HOME": str(lab.state.home)}
    done = subprocess.run([sys.executable, "-m", "labkit", "bench", "first-query", "--size", "ci",
                           "--mode", "preload", "--batches", "1", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert list(result["modes"]) == ["preload"]
    assert result["modes"]["preload"]["batches"][0]["verified"] is True
    assert not _leftovers(lab)


def test_cli_bad_mode_is_rejected():
    done = subprocess.run([sys.executable, "-m", "labkit", "bench", "first-query", "--mode", "eager"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid choice" in done.stderr
