"""The operator surface of a real node process: set_config live effect, persistence, refusals, metrics.

One single node on sqlite metadata and a local storage path (no JuiceFS needed), driven by
pymilvus 1.1.2 over gRPC; a Pushgateway started by the lab receives its metrics.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import requests
import yaml

from labkit.lab import procs
from labkit.lab.procs import free_port
from labkit.lab.services.base import get_service
from labkit.lab.services.pushgateway import parse_metrics
from labkit.lab.state import LabState
from labkit.milvus import proto
from labkit.nb.metrics import metrics_table, node_metrics
from labkit.node.config import render_server_config

proto.install()
from milvus import IndexType, MetricType, Milvus  # noqa: E402

DIM = 16


class NodeProcess:
    def __init__(self, root: Path, **render) -> None:
        self.root = root
        self.port = free_port()
        self.conf = root / "conf" / "server_config.yaml"
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(render_server_config(
            role="rw", cluster=False, meta_uri="sqlite://:@:/", storage_path=str(root / "milvus"),
            wal_path=str(root / "wal"), logs_path=str(root / "logs"), port=self.port, **render))
        self.pid: int | None = None

    def start(self) -> Milvus:
        self.pid = procs.spawn([sys.executable, "-m", "labkit.node", "--config", str(self.conf)],
                               self.root / "node.out")
        procs.wait_until(lambda: procs.port_open(self.port), 60, "node", pid=self.pid,
                         log=self.root / "node.out")
        return Milvus(host="127.0.0.1", port=self.port)

    def stop(self) -> None:
        procs.stop(self.pid, expect="labkit.node")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    n = NodeProcess(tmp_path, cache_size="64MB")
    try:
        yield n
    finally:
        n.stop()


def _cache_info(client: Milvus) -> dict:
    status, text = client._cmd("cache_info")
    assert status.OK(), status
    return json.loads(text)


def test_set_config_live_effect_persistence_and_refusals(node: NodeProcess) -> None:
    client = node.start()
    try:
        assert client.get_config("cache", "cache_size") == (client.get_config("cache", "cache_size")[0],
                                                            "64MB")
        rng = np.random.default_rng(1)
        client.create_collection({"collection_name": "c", "dimension": DIM, "index_file_size": 1,
                                  "metric_type": MetricType.L2})
        for _ in range(4):  # four segments of ~64 KB each
            client.insert("c", rng.random((1000, DIM), dtype=np.float32).tolist())
            client.flush(["c"])
        assert client.load_collection("c").OK()
        before = _cache_info(client)
        assert before["capacity"] == 64 << 20 and before["bytes"] > 100_000

        # live: a smaller cache evicts at once
        status, reply = client.set_config("cache", "cache_size", "100k")
        assert status.OK() and reply == "", (status, reply)
        after = _cache_info(client)
        assert after["capacity"] == 100 << 10 and after["bytes"] <= 100 << 10 < before["bytes"]

        # not live: saved, and the reply says a restart is needed
        status, reply = client.set_config("storage", "file_cleanup_timeout", "20")
        assert status.code == 1 and status.message == "Config node invalid: storage.file_cleanup_timeout"
        status, reply = client.set_config("logs", "level", "info")
        assert status.OK() and "restart" in reply

        # refusals, with 1.1's codes and messages; nothing changes
        for (section, key, value), code, message in [
            (("cache", "cache_size", "lots"), 5,
             "The specified value for memory (lots) should specify the units."),
            (("network", "bind.port", "80"), 5,
             "Invalid server port: 80. Possible reason: network.bind.port is not in range (1024, 65535)."),
            (("general", "timezone", "UTC+25"), 1, "Invalid general.timezone: UTC+25"),
            (("engine_config", "simd_type", "mmx"), 5,
             "engine_config.simd_type is not one of avx512, avx2, sse and auto."),
            (("logs", "level", "loud"), 5, "Log level must be one of debug, info, warning, error and fatal."),
            (("wal", "enable", "maybe"), 5, "Invalid wal config: maybe. Possible reason: wal.enable is not a "
                                            "boolean."),
            (("cache", "cache_size", str(1 << 50)), 5,
             "Possible reason: cache.cache_size exceeds system memory."),
            (("network", "http.enable", "true"), 1, "Config node invalid: network.http.enable"),
            (("nope", "key", "1"), 1, "Config node invalid: nope.key"),
        ]:
            status, _ = client.set_config(section, key, value)
            assert status.code == code and message in status.message, (section, key, status)
        assert client.get_config("cache", "cache_size")[1] == "100k"
        assert client.get_config("network", "bind.port")[1] == str(node.port)

        # persisted, original kept
        saved = yaml.safe_load(node.conf.read_text())
        assert saved["cache"]["cache_size"] == "100k" and saved["logs"]["level"] == "info"
        original = yaml.safe_load(node.conf.with_name("server_config.yaml.ori").read_text())
        assert original["cache"]["cache_size"] == "64MB"
    finally:
        client.close()
        node.stop()
    logs = node.root / "logs"
    assert (logs / "milvus-debug.log").exists()  # logs.level debug (the first start) writes it
    (logs / "milvus-debug.log").unlink()

    client = node.start()  # the saved values are what the restarted node reads
    try:
        assert client.get_config("cache", "cache_size")[1] == "100k"
        assert client.get_config("logs", "level")[1] == "info"
        assert _cache_info(client)["capacity"] == 100 << 10
        assert client.count_entities("c")[1] == 4000
    finally:
        client.close()
    # logs.level info: per-level files from info up, no debug file
    assert (logs / "milvus-info.log").exists() and not (logs / "milvus-debug.log").exists()


@pytest.mark.parametrize(("section", "body", "message"), [
    ("cluster", "  role: boss\n", "cluster.role is not one of rw and ro."),
    ("network", "  bind.port: 70000\n", "network.bind.port is not in range (1024, 65535)."),
    ("logs", "  max_log_file_size: 1MB\n", "logs.max_log_file_size is not in range [536870912, 4294967296]."),
    ("general", "  meta_uri: postgres://x\n", "Invalid meta uri: postgres://x."),
])
def test_startup_refuses_what_milvus_refuses(tmp_path: Path, section: str, body: str, message: str) -> None:
    conf = tmp_path / "server_config.yaml"
    conf.write_text(f"version: 0.5\n{section}:\n{body}")
    out = subprocess.run([sys.executable, "-m", "labkit.node", "--config", str(conf)], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 1 and message in out.stderr, out.stderr


def test_pushgateway_receives_node_metrics(tmp_path: Path) -> None:
    state = LabState(tmp_path / "lab")
    gateway = get_service("pushgateway", "local", state=state)
    rec = gateway.ensure()
    node = NodeProcess(tmp_path / "node", metric_enable=True, metric_port=rec["port"])
    try:
        client = node.start()
        try:
            client.create_collection({"collection_name": "m", "dimension": DIM, "index_file_size": 1,
                                      "metric_type": MetricType.L2})
            x = np.random.default_rng(2).random((500, DIM), dtype=np.float32)
            assert client.insert("m", x.tolist())[0].OK()
            client.flush(["m"])
            assert client.create_index("m", IndexType.FLAT, {}).OK()
            for _ in range(3):
                assert client.search("m", 5, x[:2].tolist())[0].OK()
        finally:
            client.close()
        deadline = time.monotonic() + 10
        while True:  # the node pushes every second
            got = parse_metrics(gateway.scrape())
            searches = [v for labels, v in got.get("search_request_total", [])
                        if labels.get("job") == "milvus_metrics" and labels.get("outcome") == "success"]
            if searches and searches[0] >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert searches == [3.0], got.get("search_request_total")
        inserted = [v for labels, v in got["add_vectors_request_total"] if labels["outcome"] == "success"]
        assert inserted == [500.0]
        assert got["keeping_alive_seconds_total"][0][1] > 0
        assert got["cache_usage_bytes"][0][0]["instance"].endswith(f":{node.port}")
        rows = node_metrics(SimpleNamespace(state=state))  # the notebook helper reads the same gateway
        assert {(r["metric"], r["labels"].get("outcome"), r["value"]) for r in rows} >= {
            ("search_request_total", "success", 3.0), ("add_vectors_request_total", "success", 500.0)}
        assert "search_request_total" in metrics_table(rows)
    finally:
        node.stop()
        gateway.stop(purge=True)


def test_preload_collection_failure_stops_the_start(tmp_path: Path) -> None:
    from labkit.node.config import update_yaml_text

    node = NodeProcess(tmp_path)
    node.conf.write_text(update_yaml_text(node.conf.read_text(), {"cache": {"preload_collection": "absent"}}))
    out = subprocess.run([sys.executable, "-m", "labkit.node", "--config", str(node.conf)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "Failed to preload tables: absent" in out.stderr, out.stderr


def test_lab_node_with_metrics_and_http_keeps_set_config_across_restarts(tmp_path: Path) -> None:
    from labkit.lab import cluster
    from labkit.lab.api import Lab

    lab = Lab(tmp_path / "lab")
    opts = {"storage_path": str(tmp_path / "milvus"), "meta_uri": "sqlite://:@:/", "cluster": False}
    try:
        rec = cluster.start_node(lab, "n1", metrics=True, http=True, **opts)
        assert requests.get(f"http://127.0.0.1:{rec['http_port']}/state").json()["code"] == 0
        client = cluster.connect(rec)
        try:
            assert client.set_config("cache", "cache_size", "2GB")[0].OK()
            assert client.create_collection({"collection_name": "k", "dimension": DIM, "index_file_size": 1,
                                              "metric_type": MetricType.L2}).OK()
        finally:
            client.close()
        gateway = get_service("pushgateway", "local", state=lab.state)
        gateway_pid = gateway.record["pid"]
        deadline = time.monotonic() + 10
        while not parse_metrics(gateway.scrape()).get("keeping_alive_seconds_total"):
            assert time.monotonic() < deadline, "the node pushed nothing"
            time.sleep(0.5)
        cluster.stop_node(lab, "n1")
        rec = cluster.start_node(lab, "n1", metrics=True, http=True, **opts)
        client = cluster.connect(rec)
        try:
            assert client.get_config("cache", "cache_size")[1] == "2GB"  # the lab kept the operator's change
            assert client.has_collection("k")[1] is True
        finally:
            client.close()
    finally:
        lab.down(purge=True)
    assert not procs.alive(gateway_pid)  # lab.down stops the Pushgateway too


def test_search_get_delete_edge_shapes_as_1_1(node: NodeProcess) -> None:
    client = node.start()
    try:
        client.create_collection({"collection_name": "g", "dimension": 4, "index_file_size": 1,
                                  "metric_type": MetricType.L2})
        assert client.create_partition("g", "p").OK()
        q = np.random.default_rng(4).random((3, 4), dtype=np.float32).tolist()
        status, result = client.search("g", 5, q)  # no file at all: 0 rows, as 1.1's SearchRequest
        assert status.OK() and len(result) == 0
        status, ids = client.insert("g", np.random.default_rng(5).random((10, 4), dtype=np.float32).tolist())
        client.flush(["g"])
        status, result = client.search("g", 20, q)  # width = rows searched, not topk
        assert status.OK() and result.shape == (3, 10)
        status, result = client.search("g", 5, q, partition_tags=["p"])  # an empty partition: no file
        assert status.OK() and len(result) == 0
        assert client.delete_entity_by_id("g", ids).OK() and client.flush(["g"]).OK()
        status, result = client.search("g", 5, q)  # files searched, every row deleted: nq empty rows
        assert status.OK() and len(result) == 3 and all(len(row) == 0 for row in result)
        status, vectors = client.get_entity_by_id("g", ids[:2])
        assert status.OK() and vectors == [[], []]
        assert client.delete_entity_by_id("g", ids[:2]).OK()  # deleting again is not an error in 1.1
        assert client.count_entities("g")[1] == 0
    finally:
        client.close()
