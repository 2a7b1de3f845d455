"""`labkit bench search` end to end: its own throw-away cluster, routed and direct search, --json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_search_bench_json_and_cleanup(lab):
    env = {**os.environ, "LABKIT_HOME": str(lab.state.home)}
    done = subprocess.run([sys.executable, "-m", "labkit", "bench", "search", "--rows", "3000", "--ro", "1",
                           "--repeat", "3", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)  # stdout holds the JSON document and nothing else
    assert result["router_recall_vs_faiss"] == 1.0 and result["node_recall_vs_faiss"] == 1.0
    assert result["router"]["n"] == 3 and result["node"]["p50_ms"] > 0
    assert len(result["files_per_node"]) == 1 and sum(result["files_per_node"].values()) >= 1
    assert not [n for n in lab.state.services() if n.startswith(("bs-", "mount-bs-"))]


def test_search_bench_summary_lines(lab):
    env = {**os.environ, "LABKIT_HOME": str(lab.state.home)}
    done = subprocess.run([sys.executable, "-m", "labkit", "bench", "search", "--via", "node",
                           "--rows", "2000", "--ro", "1", "--repeat", "2"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    assert lines["via"] == "node" and float(lines["node.p50_ms"]) > 0 and "router.p50_ms" not in lines
