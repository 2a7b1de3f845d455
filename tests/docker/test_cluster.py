"""The whole cluster in containers from one command: `labkit up --cluster --backend docker`.

MariaDB and Redis containers (local images), JuiceFS mounted on the host and bind-mounted into
each node container at /var/lib/milvus/db, a rw and two ro node containers, a router container.
pymilvus 1.1.2 talks only to the containerised router; answers are checked against numpy.
The tests run in file order on one cluster: up, search, existing-cluster settings, down, restore.
"""

from __future__ import annotations

import re
import uuid

import numpy as np
import pymysql
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


def _recall(client, name: str, ids: list[int], data: np.ndarray, queries: np.ndarray) -> float:
    status, res = client.search(name, TOPK, queries.tolist())
    assert status.OK(), status
    truth = np.argsort(((queries[:, None, :] - data[None, :, :]) ** 2).sum(-1), axis=1, kind="stable")[:, :TOPK]
    id_arr = np.asarray(ids)
    hits = sum(len(set(row) & set(id_arr[t].tolist())) for row, t in zip(res.id_array, truth, strict=True))
    return hits / (len(queries) * TOPK)


@pytest.fixture(scope="module")
def up(docker_home):
    """`labkit up --cluster --backend docker --ro 2`, and the data every test checks."""
    eng = engines.ensure()
    volumes_before = {v.name for v in eng.client().volumes.list()}
    proc = labkit("up", "--cluster", "--backend", "docker", "--ro", "2", home=docker_home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rng = np.random.default_rng(12)
    data = rng.random((ROWS, DIM), dtype=np.float32)
    yield {"home": docker_home, "router": _router_address(proc.stdout), "volumes_before": volumes_before,
           "data": data, "queries": data[rng.choice(ROWS, 20, replace=False)] + 0.01,
           "name": f"dock_{uuid.uuid4().hex[:6]}", "ids": []}
    labkit("down", "--purge", home=docker_home)


def test_containers_bind_mounts_and_status(up) -> None:
    host, _ = up["router"]
    assert host == "127.0.0.1"
    recs = Lab(up["home"]).state.services()
    assert {"mysql", "redis", "rw", "ro1", "ro2", "router"} <= set(recs)
    client = engines.find().client()
    for name in ("mysql", "redis", "rw", "ro1", "ro2", "router"):
        box = containers.get(client, recs[name]["container"])
        assert box is not None and containers.state(box)["running"], name
        assert box.attrs["HostConfig"]["NetworkMode"] == "host"
        assert box.attrs["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
        assert containers.state(box)["health"] in {"healthy", "starting"}
    # the article's bind mount: the host's own JuiceFS mount of each node at /var/lib/milvus/db
    for name in ("rw", "ro1", "ro2"):
        box = containers.get(client, recs[name]["container"])
        binds = {m["Destination"]: m["Source"] for m in box.attrs["Mounts"]}
        assert binds["/var/lib/milvus/db"] == f"{recs[name]['storage_path']}/db"
        assert recs[name]["mount"] and recs[name]["storage_path"].startswith(recs[name]["mount"])
        assert {"/var/lib/milvus/conf", "/var/lib/milvus/logs", "/var/lib/milvus/wal"} <= set(binds)
    status = labkit("status", home=up["home"])
    assert status.returncode == 0
    rows = [line for line in status.stdout.splitlines() if line.split()[:1] and line.split()[0] in recs]
    assert len(rows) >= 6 and all(" ok" in r for r in rows), status.stdout
    assert "Docker engine" in status.stdout
    node_log = labkit("logs", "rw", "-n", "50", home=up["home"])
    assert node_log.returncode == 0 and "Milvus 1.1 lab node (rw) listening" in node_log.stdout, node_log.stdout


def test_pymilvus_through_the_router_container_recall_1(up) -> None:
    from milvus import Milvus

    client = Milvus(*up["router"])
    name, data = up["name"], up["data"]
    assert client.create_collection({"collection_name": name, "dimension": DIM, "index_file_size": 1024,
                                     "metric_type": 1}).OK()
    status, ids = client.insert(name, data.tolist())
    assert status.OK(), status
    up["ids"][:] = ids
    assert client.flush([name]).OK()
    assert client.count_entities(name)[1] == ROWS
    assert _recall(client, name, ids, data, up["queries"]) == 1.0
    client.close()
    # the segment files are on JuiceFS, seen through each node's own mount
    assert list((up["home"] / "mounts").glob("*/jfs/milvus/db/tables/*/*/*"))


def test_existing_cluster_settings_start_nothing(up, tmp_path, monkeypatch) -> None:
    """Another lab home, pointed at the running cluster by LABKIT_CLUSTER_* (a file and the env)."""
    lab = Lab(up["home"])
    recs = lab.state.services()
    addr = lambda n: f"127.0.0.1:{recs[n]['port']}"  # noqa: E731
    settings = tmp_path / "cluster.env"
    settings.write_text(f"LABKIT_CLUSTER_ROUTER=127.0.0.1:{up['router'][1]}\nLABKIT_CLUSTER_RW={addr('rw')}\n"
                        f"LABKIT_CLUSTER_RO={addr('ro1')},{addr('ro2')}\nLABKIT_CLUSTER_MYSQL={lab.meta_uri()}\n")
    monkeypatch.setenv("LABKIT_CLUSTER_FILE", str(settings))
    monkeypatch.setenv("LABKIT_CLUSTER_REDIS", lab.redis_url())
    other = Lab(tmp_path / "other-home")
    router = cluster.start_router(other)
    rw = cluster.start_node(other, "rw", role="rw")
    ro2 = cluster.start_node(other, "ro2", role="ro")
    assert (router["port"], rw["port"], ro2["port"]) == (up["router"][1], recs["rw"]["port"], recs["ro2"]["port"])
    assert cluster.up(other)["port"] == up["router"][1]
    assert not (tmp_path / "other-home" / "state.json").exists()  # nothing was started or recorded
    ext = cluster.existing()
    assert ext is not None and ext.source.startswith("file")
    check = ext.check()
    assert check["router"] and check["rw"] and check["ro1"] and check["mysql"] is True and check["redis"] is True
    client = cluster.connect(router)
    if up["ids"]:
        assert client.count_entities(up["name"])[1] == ROWS
        assert _recall(cluster.connect(ro2), up["name"], up["ids"], up["data"], up["queries"]) == 1.0
    client.close()
    conn = pymysql.connect(**ext.mysql_params())
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM Tables")
        assert cur.fetchone()[0] >= 1
    conn.close()
    with pytest.raises(Exception, match="ro3 is not one of them"):
        cluster.start_node(other, "ro3", role="ro")
    status = labkit("status", home=tmp_path / "other-home",
                    env={"LABKIT_CLUSTER_FILE": str(settings), "LABKIT_CLUSTER_REDIS": lab.redis_url()})
    assert status.returncode == 0 and "Existing cluster from file" in status.stdout, status.stdout
    assert "router ok (Milvus 1.1" in status.stdout and "mysql ok" in status.stdout and "DOWN" not in status.stdout


def test_down_leaves_nothing_and_plain_up_restores(up) -> None:
    from milvus import Milvus

    home = up["home"]
    down = labkit("down", home=home)
    assert down.returncode == 0, down.stderr
    assert leftovers(home) == {"containers": [], "mounts": []}
    eng = engines.find()
    if eng is not None:
        assert not {v.name for v in eng.client().volumes.list()} - up["volumes_before"]
    again = labkit("up", home=home)  # no --cluster: the recorded cluster comes back, data included
    assert again.returncode == 0, again.stdout + again.stderr
    client = Milvus(*_router_address(again.stdout))
    assert client.count_entities(up["name"])[1] == ROWS
    assert _recall(client, up["name"], up["ids"], up["data"], up["queries"]) == 1.0
    client.close()
    assert len([r for r in cluster.nodes(Lab(home)) if r["role"] == "ro"]) == 2
    purge = labkit("down", "--purge", home=home)
    assert purge.returncode == 0, purge.stderr
    assert leftovers(home) == {"containers": [], "mounts": []}
    assert not (home / "state.json").exists()
