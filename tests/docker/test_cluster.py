"""The whole cluster in containers from one command: `labkit up --cluster --backend docker`.

MariaDB and Redis containers (local images), JuiceFS mounted on the host and bind-mounted into
each node container at /var/lib/milvus/db, a rw and two ro node containers, a router container.
pymilvus 1.1.2 talks only to the containerised router; answers are checked against numpy.
"""

from __future__ import annotations

import re
import uuid

import numpy as np
import pytest
from dockerhelp import labkit, leftovers

from labkit.lab import cluster
from labkit.lab import engine as engines
from labkit.lab.api import Lab
from labkit.lab.services import containers

pytestmark = pytest.mark.docker

DIM = 32
ROWS = 3000
TOPK = 10


def _router_address(stdout: str) -> tuple[str, int]:
    m = re.search(r"Router \(Mishards role\): ([\d.]+):(\d+)", stdout)
    assert m, stdout
    return m.group(1), int(m.group(2))


def _brute_force(data: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    d = ((queries[:, None, :] - data[None, :, :]) ** 2).sum(-1)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


def _recall(client, name: str, ids: list[int], data: np.ndarray, queries: np.ndarray) -> float:
    status, res = client.search(name, TOPK, queries.tolist(), params={"nprobe": 16})
    assert status.OK(), status
    truth = _brute_force(data, queries, TOPK)
    id_arr = np.asarray(ids)
    hits = sum(len(set(row) & set(id_arr[t].tolist())) for row, t in zip(res.id_array, truth, strict=True))
    return hits / (len(queries) * TOPK)


def test_cluster_in_containers_recall_down_and_restore(docker_home) -> None:
    from milvus import Milvus

    eng = engines.find()
    volumes_before = {v.name for v in eng.client().volumes.list()}

    proc = labkit("up", "--cluster", "--backend", "docker", "--ro", "2", home=docker_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    host, port = _router_address(proc.stdout)
    assert host == "127.0.0.1"

    lab = Lab(docker_home)
    recs = lab.state.services()
    assert {"mysql", "redis", "rw", "ro1", "ro2", "router"} <= set(recs)
    client_eng = eng.client()
    for name in ("mysql", "redis", "rw", "ro1", "ro2", "router"):
        box = containers.get(client_eng, recs[name]["container"])
        assert box is not None and containers.state(box)["running"], name
        assert box.attrs["HostConfig"]["NetworkMode"] == "host"
        assert box.attrs["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
    # the article's bind mount: the host's own JuiceFS mount of each node at /var/lib/milvus/db
    for name in ("rw", "ro1", "ro2"):
        box = containers.get(client_eng, recs[name]["container"])
        binds = {m["Destination"]: m["Source"] for m in box.attrs["Mounts"]}
        assert binds["/var/lib/milvus/db"] == f"{recs[name]['storage_path']}/db"
        assert recs[name]["mount"] and recs[name]["storage_path"].startswith(recs[name]["mount"])
        assert {"/var/lib/milvus/conf", "/var/lib/milvus/logs", "/var/lib/milvus/wal"} <= set(binds)

    status = labkit("status", home=docker_home)
    assert status.returncode == 0
    rows = [line for line in status.stdout.splitlines() if line.split()[:1] and line.split()[0] in recs]
    assert len(rows) >= 6 and all(" ok" in r for r in rows), status.stdout
    assert "labkit's own dockerd" in status.stdout or "not started by labkit" in status.stdout

    rng = np.random.default_rng(12)
    data = rng.random((ROWS, DIM), dtype=np.float32)
    queries = data[rng.choice(ROWS, 20, replace=False)] + 0.01
    name = f"dock_{uuid.uuid4().hex[:6]}"
    client = Milvus(host, port)
    assert client.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1024,
                                     "metric_type": 1}).OK()
    status_, ids = client.insert(name, data.tolist())
    assert status_.OK(), status_
    assert client.flush([name]).OK()
    assert client.count_entities(name)[1] == ROWS
    assert _recall(client, name, ids, data, queries) == 1.0
    # the segment files are on JuiceFS, seen through each node's own mount
    seg_files = list((lab.home / "mounts").glob("*/jfs/milvus/db/tables/*/*/*"))
    assert seg_files, "no segment files under the JuiceFS mounts"
    client.close()

    down = labkit("down", home=docker_home)
    assert down.returncode == 0, down.stderr
    assert leftovers(docker_home) == {"containers": [], "mounts": []}
    new_volumes = {v.name for v in engines.find().client().volumes.list()} - volumes_before \
        if engines.find() else set()
    assert not new_volumes

    # a plain `labkit up` restores the recorded cluster, data included
    again = labkit("up", home=docker_home)
    assert again.returncode == 0, again.stdout + again.stderr
    host2, port2 = _router_address(again.stdout)
    client = Milvus(host2, port2)
    assert client.count_entities(name)[1] == ROWS
    assert _recall(client, name, ids, data, queries) == 1.0
    client.close()
    assert len([r for r in cluster.nodes(Lab(docker_home)) if r["role"] == "ro"]) == 2

    purge = labkit("down", "--purge", home=docker_home)
    assert purge.returncode == 0, purge.stderr
    assert leftovers(docker_home) == {"containers": [], "mounts": []}
