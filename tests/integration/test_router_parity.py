"""The router where users rely on Mishards: sqlite metadata as in Mishards's example, PreloadCollection,
conn_stats, Mishards's logging settings, and its own counters on a Pushgateway.

One rw node (sqlite metadata, local storage: no JuiceFS needed) also serves as the read node, as in
the published Mishards setups; the router runs as a user would start it, from a Mishards .env file.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from labkit.lab import cluster, procs
from labkit.lab.api import Lab
from labkit.lab.services.base import get_service
from labkit.lab.services.pushgateway import parse_metrics
from labkit.milvus import proto

proto.install()
from milvus import MetricType, Milvus  # noqa: E402

DIM = 8


@pytest.fixture
def sqlite_router(tmp_path: Path):
    lab = Lab(tmp_path / "lab")
    storage = tmp_path / "milvus"
    router_pid = None
    try:
        rw = cluster.start_node(lab, "p-rw", role="rw", storage_path=str(storage), meta_uri="sqlite://:@:/")
        gateway = cluster.start_pushgateway(lab)
        port = procs.free_port()
        env = tmp_path / "mishards.env"
        env.write_text(
            f"WOSERVER=tcp://127.0.0.1:{rw['port']}\nSERVER_PORT={port}\n"
            f"SQLALCHEMY_DATABASE_URI=sqlite:///{storage}/db/meta.sqlite?check_same_thread=False\n"
            f"DISCOVERY_STATIC_HOSTS=127.0.0.1\nDISCOVERY_STATIC_PORT={rw['port']}\n"
            f"DEBUG=True\nLOG_PATH={tmp_path / 'mishards-logs'}\nLOG_NAME=router\nTIMEZONE=Asia/Shanghai\n"
            f"SQL_ECHO=True\nPUSHGATEWAY=127.0.0.1:{gateway['port']}\n")
        router_pid = procs.spawn([sys.executable, "-m", "labkit.router", "--env-file", str(env)],
                                 tmp_path / "router.out", env={"WOSERVER": "", "SQLALCHEMY_DATABASE_URI": ""})
        procs.wait_until(lambda: procs.port_open(port), 30, "router", pid=router_pid,
                         log=tmp_path / "router.out")
        client = Milvus(host="127.0.0.1", port=port)
        try:
            yield {"client": client, "rw": rw, "tmp": tmp_path, "lab": lab, "port": port}
        finally:
            client.close()
    finally:
        procs.stop(router_pid, expect="labkit.router")
        lab.down(purge=True)


def test_router_on_sqlite_metadata_answers_as_mishards(sqlite_router) -> None:
    client, tmp = sqlite_router["client"], sqlite_router["tmp"]
    assert client.create_collection({"collection_name": "s", "dimension": DIM, "index_file_size": 1,
                                     "metric_type": MetricType.L2}).OK()
    x = np.random.default_rng(5).random((200, DIM), dtype=np.float32)
    status, ids = client.insert("s", x.tolist())
    assert status.OK() and client.flush(["s"]).OK()

    assert client.load_collection("s").OK()  # PreloadCollection through the router

    status, result = client.search("s", 3, x[:4].tolist())
    assert status.OK() and [row[0].id for row in result] == ids[:4]

    # all deleted: nq rows, each empty (1.1 and Mishards); an empty collection: no rows
    assert client.delete_entity_by_id("s", ids).OK() and client.flush(["s"]).OK()
    status, result = client.search("s", 3, x[:4].tolist())
    assert status.OK() and len(result) == 4 and all(len(row) == 0 for row in result)
    assert client.create_collection({"collection_name": "e", "dimension": DIM, "index_file_size": 1,
                                     "metric_type": MetricType.L2}).OK()
    status, result = client.search("e", 3, x[:4].tolist())
    assert status.OK() and len(result) == 0

    # conn_stats: Mishards's shape, {group: {node: {"connections", "max-time", "num"}}}
    status, text = client._cmd("conn_stats")
    stats = json.loads(text)
    node = f"127.0.0.1:{sqlite_router['rw']['port']}"
    assert status.OK() and set(stats) == {node} and set(stats[node]) == {node}
    pool = stats[node][node]
    assert set(pool) == {"connections", "max-time", "num"} and pool["num"] == 1
    (conn,) = pool["connections"].values()
    assert conn["called_times"] >= 3 and conn["total_time"] > 0 and pool["max-time"] == conn["total_time"]

    # Mishards's logging settings: per-level files under LOG_PATH, SQL echoed, time in TIMEZONE
    logs = tmp / "mishards-logs"
    debug_text = (logs / "router-debug.log").read_text() if (logs / "router-debug.log").exists() else ""
    info_text = (logs / "router-info.log").read_text()
    assert "SELECT" in info_text and "+08:00" in info_text, info_text[-500:]
    assert "SELECT" not in debug_text

    # the router's own counters reach the lab's Pushgateway
    gateway = get_service("pushgateway", "local", state=sqlite_router["lab"].state)
    deadline = time.monotonic() + 10
    while True:
        got = parse_metrics(gateway.scrape())
        searches = [v for labels, v in got.get("mishards_searches", []) if labels.get("job") == "mishards"]
        if searches and searches[0] >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert searches and searches[0] >= 3, got.keys()
    routed = [v for labels, v in got.get("mishards_routed", []) if labels.get("job") == "mishards"]
    assert routed and routed[0] >= 1  # searches went through the sqlite file lists, not the WOSERVER fallback
