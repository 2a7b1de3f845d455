"""Pure logic of the docker side: the Debian mirror apt uses, image sets, existing-cluster settings, compose."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labkit.errors import LabError
from labkit.lab import compose, existing, images

DEB822 = """Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_debian_mirror_from_deb822_and_one_line_sources() -> None:
    assert images.debian_mirror([("/etc/apt/sources.list.d/debian.sources", DEB822)]) == "http://mirror.example/debian"
    one_line = "# comment\ndeb [arch=amd64] http://other.example/debian/ bookworm main\n"
    assert images.debian_mirror([("/etc/apt/sources.list", one_line)]) == "http://other.example/debian"
    with pytest.raises(LabError, match="No Debian bookworm mirror"):
        images.debian_mirror([("/etc/apt/sources.list", "deb http://x/ubuntu jammy main\n")])


def test_image_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_IMAGES", raising=False)
    assert images.image_for("node") == "milvusdb/milvus:1.1.1-cpu-d061621-330cc6"
    assert images.image_for("mysql") == "mysql:5.7"
    monkeypatch.setenv("LABKIT_IMAGES", "local")
    assert images.image_for("router") == images.image_for("node") == "labkit/lab:latest"
    monkeypatch.setenv("LABKIT_IMAGES", "quay")
    with pytest.raises(LabError, match="choose one of: real, local"):
        images.image_set()


def test_existing_cluster_settings(tmp_path: Path) -> None:
    assert existing.load({}) is None
    f = tmp_path / "c.env"
    f.write_text("LABKIT_CLUSTER_ROUTER=10.0.0.5:19530\nLABKIT_CLUSTER_RO=10.0.0.6:19530, 10.0.0.7:19530\n"
                 "LABKIT_CLUSTER_MYSQL=mysql://root:p%40ss@10.0.0.5:3306/milvus\n")
    ext = existing.load({"LABKIT_CLUSTER_FILE": str(f), "LABKIT_CLUSTER_RW": "10.0.0.5:19531",
                         "LABKIT_CLUSTER_STORAGE": "/root/jfs/milvus"})
    assert ext is not None and ext.router["port"] == 19530 and ext.rw["host"] == "10.0.0.5"
    assert [r["name"] for r in ext.ro] == ["ro1", "ro2"] and ext.node("ro2", "ro")["host"] == "10.0.0.7"
    assert ext.node("rw", "rw")["storage_path"] == "/root/jfs/milvus" and ext.source.startswith("file")
    assert ext.mysql_params() == {"host": "10.0.0.5", "port": 3306, "user": "root", "password": "p@ss",
                                  "database": "milvus"}
    with pytest.raises(LabError, match="ro3 is not one of them"):
        ext.node("ro3", "ro")
    with pytest.raises(LabError, match="host:port"):
        existing.load({"LABKIT_CLUSTER_ROUTER": "10.0.0.5"})


def test_compose_files_keep_everything_in_variables(tmp_path: Path) -> None:
    folders = compose.export(tmp_path / "out", 3)
    assert [f.name for f in folders] == ["host1", "host2", "host3"]
    one = yaml.safe_load((folders[0] / "docker-compose.yml").read_text())
    two = yaml.safe_load((folders[1] / "docker-compose.yml").read_text())
    assert set(one["services"]) == {"mysql", "redis", "milvus", "mishards"} and set(two["services"]) == {"milvus"}
    assert all(s["network_mode"] == "host" for s in one["services"].values())
    assert "${JFS_MOUNT}/milvus/db:/var/lib/milvus/db" in two["services"]["milvus"]["volumes"]
    text = (folders[0] / "docker-compose.yml").read_text()
    env = compose.read_env(folders[0] / ".env")
    for secret in (env["MYSQL_PASSWORD"], env["REDIS_PASSWORD"], env["MYSQL_ROOT_PASSWORD"]):
        assert secret not in text
    assert (folders[0] / ".env").stat().st_mode & 0o777 == 0o600
    assert "role: ro" in (folders[2] / "server_config.yaml.tmpl").read_text()
    with pytest.raises(LabError, match="not empty"):
        compose.export(tmp_path / "out", 2)
