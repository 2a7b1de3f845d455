"""`labkit export compose --hosts 3`: each host's file validates, and the set comes up for real.

All three "hosts" share this machine's engine (host networking, distinct ports from each .env),
with the local images (docker-compose.local.yml); each host mounts JuiceFS itself. pymilvus 1.1.2
then searches through the Mishards-role container and is checked against numpy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from dockerhelp import REPO, labkit

from labkit.lab import compose, procs
from labkit.lab.services import juicefs as jfs
from labkit.lab.services.node import server_version

pytestmark = pytest.mark.docker
HOSTS = 3


def _run(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, f"{argv}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _juicefs_clients(under: Path) -> list[int]:
    """PIDs of juicefs processes whose command line names a path under ``under``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "juicefs" in line and str(under) in line and procs.alive(int(entry.name)):
                pids.append(int(entry.name))
    return pids


def _fill_env(out: Path, tmp: Path) -> dict[int, dict[str, str]]:
    """What a user does on each host: addresses, ports, paths in .env (here all on 127.0.0.1)."""
    used: set[int] = set()

    def port() -> str:
        p = procs.free_port(None, avoid=used)
        used.add(p)
        return str(p)

    milvus = {h: port() for h in range(1, HOSTS + 1)}
    shared = {"MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": port(), "REDIS_HOST": "127.0.0.1", "REDIS_PORT": port()}
    values = {}
    for h in range(1, HOSTS + 1):
        v = {**shared, "MILVUS_PORT": milvus[h], "MILVUS_BIND": "127.0.0.1", "DATA_DIR": str(tmp / f"h{h}"),
             "JFS_MOUNT": str(tmp / f"h{h}" / "jfs"), "JFS_METRICS_PORT": port(),
             "MILVUS_IMAGE": "labkit/lab:latest"}
        if h == 1:
            v.update({"MYSQL_BIND": "127.0.0.1", "REDIS_BIND": "127.0.0.1", "MISHARDS_BIND": "127.0.0.1",
                      "MISHARDS_PORT": port(), "RW_HOST": "127.0.0.1", "JFS_BUCKET": str(tmp / "objects") + "/",
                      "RO_HOSTS": ",".join(f"127.0.0.1:{milvus[k]}" for k in range(2, HOSTS + 1))})
        compose.write_env(out / f"host{h}" / ".env", v)
        values[h] = compose.read_env(out / f"host{h}" / ".env")
    return values


def test_export_validates_and_comes_up(engine, local_images, tmp_path: Path) -> None:
    from milvus import Milvus

    out = tmp_path / "export"
    project = f"t{uuid.uuid4().hex[:6]}"
    proc = labkit("export", "compose", "--hosts", str(HOSTS), "--project", project, str(out), home=tmp_path / "lab")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("valid (docker-compose config)") == HOSTS
    # nothing of this machine: no paths of it, addresses are placeholders until the user fills them in
    for f in out.rglob("*"):
        if f.is_file():
            text = f.read_text()
            assert str(REPO) not in text and str(tmp_path) not in text, f
    first = compose.read_env(out / "host1" / ".env")
    assert first["MYSQL_HOST"] == "host1" and first["RO_HOSTS"] == "host2,host3"
    assert len(first["MYSQL_PASSWORD"]) == 24 and first["MYSQL_PASSWORD"] in (out / "host3" / ".env").read_text()
    assert "docker-compose up -d mysql redis" in (out / "README.md").read_text()
    assert {p.name for p in (out / "host2").iterdir()} >= {"docker-compose.yml", ".env", "juicefs.sh", "prepare.sh"}

    values = _fill_env(out, tmp_path)
    env = {**os.environ, **engine.env(), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    dc = lambda h: compose.compose_argv(out / f"host{h}", local=True)  # noqa: E731
    try:
        for h in range(1, HOSTS + 1):
            _run([*dc(h), "config", "-q"], env, out / f"host{h}")
            _run([str(out / f"host{h}" / "prepare.sh")], env, out / f"host{h}")
        _run([*dc(1), "up", "-d", "mysql", "redis"], env, out / "host1")
        from labkit.lab.services.redis import ping

        assert procs.wait_until(lambda: ping(int(values[1]["REDIS_PORT"]), values[1]["REDIS_PASSWORD"]), 60,
                                "redis") is None
        _run([str(out / "host1" / "juicefs.sh"), "format"], env, out / "host1")
        for h in range(1, HOSTS + 1):
            _run([str(out / f"host{h}" / "juicefs.sh"), "mount"], env, out / f"host{h}")
            assert jfs.mount_fstype(values[h]["JFS_MOUNT"]) == "fuse.juicefs"
            _run([*dc(h), "up", "-d", "milvus"], env, out / f"host{h}")
        for h in range(1, HOSTS + 1):
            port = int(values[h]["MILVUS_PORT"])
            procs.wait_until(lambda p=port: server_version("127.0.0.1", p) is not None, 90, f"milvus host{h}")
        _run([*dc(1), "up", "-d", "mishards"], env, out / "host1")
        router_port = int(values[1]["MISHARDS_PORT"])
        procs.wait_until(lambda: procs.port_open(router_port), 60, "mishards")

        rng = np.random.default_rng(3)
        data = rng.random((2000, 16), dtype=np.float32)
        queries = data[:10] + 0.01
        client = Milvus("127.0.0.1", router_port)
        name = "compose_check"
        assert client.create_collection({"collection_name": name, "dimension": 16, "index_file_size": 1024,
                                         "metric_type": 1}).OK()
        st, ids = client.insert(name, data.tolist())
        assert st.OK() and client.flush([name]).OK()
        st, res = client.search(name, 5, queries.tolist())
        assert st.OK(), st
        truth = np.argsort(((queries[:, None] - data[None]) ** 2).sum(-1), axis=1)[:, :5]
        assert [list(r) for r in res.id_array] == [[ids[i] for i in t] for t in truth]
        client.close()
        # the rw node's segments are on JuiceFS, visible through host 3's own mount
        assert list(Path(values[3]["JFS_MOUNT"], "milvus", "db", "tables").rglob("*"))
    finally:  # the README's stop order: Milvus and Mishards, then the JuiceFS clients, then Redis/MySQL
        for h in range(HOSTS, 0, -1):
            argv = [*dc(h), "stop", "-t", "20", "mishards", "milvus"] if h == 1 else [*dc(h), "down", "-v"]
            subprocess.run(argv, env=env, cwd=out / f"host{h}", capture_output=True, timeout=300)
        for h in range(1, HOSTS + 1):
            if jfs.mount_fstype(tmp_path / f"h{h}" / "jfs"):
                subprocess.run([str(out / f"host{h}" / "juicefs.sh"), "umount"], env=env, capture_output=True,
                               timeout=60)
        subprocess.run([*dc(1), "down", "-v", "-t", "20"], env=env, cwd=out / "host1", capture_output=True,
                       timeout=300)
        for mp, _ in jfs.mounts_under(tmp_path):
            jfs.force_unmount(mp)
    assert not _juicefs_clients(tmp_path)
    client_ = engine.client()
    left = client_.containers.list(all=True, filters={"label": "com.docker.compose.project"})
    assert not [c.name for c in left if c.labels["com.docker.compose.project"].startswith(project)]
    assert not jfs.mounts_under(tmp_path)
