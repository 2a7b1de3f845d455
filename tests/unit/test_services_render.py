"""Pure rendering and parsing in the storage services: URIs, configs, docker commands, mounts, CLI table."""

from __future__ import annotations

from pathlib import Path

import pytest

from labkit.cli.lab import table
from labkit.errors import LabError
from labkit.lab.api import Lab, _order
from labkit.lab.services import juicefs as jfs
from labkit.lab.services.base import ServiceStatus, backends, get_service
from labkit.lab.services.containers import render
from labkit.lab.services.mysql import meta_uri, sqlalchemy_uri
from labkit.lab.services.objectstore import azure_commands
from labkit.lab.services.redis import redis_conf
from labkit.lab.state import LabState


def test_uri_forms() -> None:
    assert meta_uri("milvus", "pw", "127.0.0.1", 3306) == "mysql://milvus:pw@127.0.0.1:3306/milvus"
    assert (sqlalchemy_uri("milvus", "pw", "127.0.0.1", 3307)
            == "mysql+pymysql://milvus:pw@127.0.0.1:3307/milvus?charset=utf8mb4")


def test_redis_conf_has_what_juicefs_needs() -> None:
    conf = dict(line.split(" ", 1) for line in redis_conf(6400, "pw", "/d").splitlines())
    assert conf["appendonly"] == "yes" and conf["maxmemory-policy"] == "noeviction"
    assert conf["bind"] == "127.0.0.1" and conf["requirepass"] == "pw" and conf["port"] == "6400"


def test_registry_knows_both_backends_and_refuses_others(tmp_path: Path) -> None:
    for kind in ("mysql", "redis", "objectstore"):
        assert {"local", "docker"} <= set(backends(kind))
    with pytest.raises(LabError, match="Unknown backend 'k8s' for mysql; choose one of: docker, local"):
        get_service("mysql", "k8s", LabState(tmp_path))


def test_docker_commands_are_exact_and_never_carry_passwords(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABKIT_IMAGES", raising=False)  # the default set: the article's real images
    st = LabState(tmp_path)
    svc = get_service("mysql", "docker", st, "mysql", port=None)
    (line,) = svc.commands()
    assert "docker run -d --name labkit-" in line and " mysql:5.7 " in line
    assert "-e MYSQL_PASSWORD -e MYSQL_ROOT_PASSWORD" in line and "MYSQL_ROOT_PASSWORD=****" in line
    assert "--network host" in line and "--bind-address=127.0.0.1" in line and "--port=" in line
    for secret in st.secret_values():
        assert secret not in line
    (redis_line,) = get_service("redis", "docker", st, "redis").commands()
    assert "redis-server /usr/local/etc/redis/redis.conf" in redis_line
    assert not (tmp_path / "docker" / "redis.conf").exists()  # a dry run writes nothing
    assert render(["docker", "run", "a b"], ["X"]) == "X=**** docker run 'a b'"


def test_azure_form_is_rendered_masked() -> None:
    lines = azure_commands("redis://:****@host:6379/1")
    assert any("--storage wasb --bucket https://" in line for line in lines)
    assert "AZURE_STORAGE_CONNECTION_STRING" in lines[0] and "AccountKey=****" in lines[0]


def test_lab_dry_run_lists_every_step(tmp_path: Path) -> None:
    cmds = Lab(tmp_path, backend="docker", object_store="s3").commands()
    assert set(cmds) >= {"objectstore", "mysql", "redis", "juicefs"}
    assert "motoserver/moto" in cmds["objectstore"][0]
    assert cmds["juicefs"][0].startswith("juicefs format --storage s3")
    assert "--writeback" not in " ".join(cmds["juicefs"])


def test_proc_mounts_parsing() -> None:
    table_text = ("JuiceFS:v /lab/mounts/a/jfs fuse.juicefs rw 0 0\n"
                  "JuiceFS:v /lab/mounts/with\\040space/jfs fuse.juicefs rw 0 0\n"
                  "tmpfs /lab2 tmpfs rw 0 0\n")
    found = jfs.mounts_under("/lab", table_text)
    assert found == [("/lab/mounts/a/jfs", "fuse.juicefs"), ("/lab/mounts/with space/jfs", "fuse.juicefs")]


def test_no_fuse_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_NO_FUSE", "1")
    ok, why = jfs.fuse_available()
    assert not ok and "LABKIT_NO_FUSE" in why


def test_stop_order_puts_clients_before_storage() -> None:
    kinds = ["objectstore", "mysql", "mount", "router", "redis", "node", "juicefs", "something"]
    ordered = sorted(kinds, key=lambda k: _order({"kind": k}, start=False))
    assert ordered[:2] == ["router", "node"] and ordered[-1] == "objectstore"
    assert ordered.index("something") < ordered.index("mount") < ordered.index("redis") < ordered.index("mysql")


def test_status_table() -> None:
    rows = [ServiceStatus("mysql", "mysql", "local", "127.0.0.1:3306", 12, True, "accepting logins"),
            ServiceStatus("mount-rw", "mount", "local", "/x", None, False, "not mounted")]
    lines = table(rows).splitlines()
    assert lines[0].split() == ["SERVICE", "KIND", "BACKEND", "ADDRESS", "PID", "HEALTH"]
    assert "ok (accepting logins)" in lines[1] and "DOWN (not mounted)" in lines[2] and " - " in lines[2]


def test_node_cache_defaults_fit_small_machines(monkeypatch):
    from labkit.lab.services import node as node_service
    from labkit.node import config_rules

    monkeypatch.setattr(config_rules, "total_memory", lambda: 2 << 30)  # a Binder-sized container
    cache, buffer = node_service.default_sizes()
    assert (cache, buffer) == ("512MB", "256MB")
    config_rules.check("cache", "cache_size", cache, {"cache": {"insert_buffer_size": buffer}})  # 1.1 accepts
    monkeypatch.setattr(config_rules, "total_memory", lambda: 24 << 30)
    assert node_service.default_sizes() == ("4GB", "1GB")
