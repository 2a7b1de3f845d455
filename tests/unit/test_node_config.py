"""server_config.yaml: parse the 1.1 shape, render it, get/set_config."""

import json

import pytest
import yaml

from labkit.milvus.status import Code, MilvusError
from labkit.node.config import NodeConfig, parse_size, render_server_config

SAMPLE = """
version: 0.5
cluster:
  enable: true
  role: ro
general:
  timezone: UTC+8
  meta_uri: mysql://root:milvusroot@127.0.0.1:3306/milvus
network:
  bind.address: 0.0.0.0
  bind.port: 19533
  http:
    enable: false
storage:
  path: /root/jfs/milvus
  auto_flush_interval: 2
wal:
  enable: true
  buffer_size: 128MB
  path: /var/lib/milvus/wal
cache:
  cache_size: 2GB
  insert_buffer_size: 512MB
  preload_collection:
gpu:
  enable: false
  search_devices:
    - gpu0
"""


def test_parse_sizes():
    assert parse_size("4GB") == 4 << 30 and parse_size("256MB") == 256 << 20
    assert parse_size("1024") == 1024 and parse_size(7) == 7 and parse_size("2g") == 2 << 30
    with pytest.raises(ValueError):
        parse_size("lots")


def test_parse_real_shape():
    cfg = NodeConfig.from_yaml(SAMPLE)
    s = cfg.to_settings()
    assert cfg.role == "ro" and s.role == "ro" and s.cluster
    assert cfg.port == 19533 and cfg.address == "0.0.0.0"
    assert s.storage_path == "/root/jfs/milvus" and s.auto_flush_interval == 2.0
    assert s.cache_size == 2 << 30 and s.insert_buffer_size == 512 << 20 and s.wal_buffer_size == 128 << 20
    assert s.meta_uri.startswith("mysql://") and s.preload is False
    assert cfg.http_enabled is False and cfg.get("network", "http.enable") == "false"


def test_single_node_is_rw_even_if_role_ro():
    cfg = NodeConfig.from_yaml("cluster:\n  enable: false\n  role: ro\n")
    assert cfg.role == "rw"


@pytest.mark.parametrize("bad", ["cluster:\n  role: boss\n", "general:\n  meta_uri: postgres://x\n",
                                 "cache:\n  cache_size: many\n", "- a list\n"])
def test_bad_values_are_plain_errors(bad):
    with pytest.raises(ValueError):
        NodeConfig.from_yaml(bad)


def test_render_round_trip_and_rw_ro_differ_only_in_role():
    kw = dict(meta_uri="mysql://u:p@127.0.0.1:3306/milvus", storage_path="/jfs/milvus", wal_path="/w",
              port=19531)
    rw, ro = render_server_config(role="rw", **kw), render_server_config(role="ro", **kw)
    diff = [(a, b) for a, b in zip(rw.splitlines(), ro.splitlines(), strict=True) if a != b]
    assert diff == [("  role: rw", "  role: ro")]
    cfg = NodeConfig.from_yaml(ro)
    s = cfg.to_settings()
    assert yaml.safe_load(ro)["cluster"] == {"enable": True, "role": "ro"}
    assert (s.role, s.storage_path, s.wal_path, cfg.port) == ("ro", "/jfs/milvus", "/w", 19531)
    assert NodeConfig.from_yaml(render_server_config(preload=True)).to_settings().preload is True


def test_get_set_config():
    cfg = NodeConfig.from_yaml(SAMPLE)
    assert cfg.cli("get_config storage.path") == "/root/jfs/milvus"
    assert cfg.cli("get_config network.bind.port") == "19533"
    assert cfg.cli("get_config cluster.enable") == "true"
    assert json.loads(cfg.cli("get_config *"))["cache"]["cache_size"] == "2GB"
    assert cfg.cli("set_config cache.cache_size 1GB") == ""
    assert cfg.to_settings().cache_size == 1 << 30
    for bad in ["get_config nope.key", "get_config storage", "set_config cache.cache_size", "frob"]:
        with pytest.raises(MilvusError) as err:
            cfg.cli(bad)
        assert err.value.code == Code.UNEXPECTED_ERROR
    with pytest.raises(MilvusError):
        cfg.cli("set_config cache.cache_size lots")
    assert cfg.cli("get_config cache.cache_size") == "1GB"


def test_cluster_section_without_enable_is_a_cluster_as_in_1_1():
    assert NodeConfig.from_yaml("cluster:\n  role: ro\n").role == "ro"
    assert NodeConfig.from_yaml("version: 0.5\n").cluster is True  # Config.cpp's default "true"


@pytest.mark.parametrize(("value", "size"), [("4GB", 4 << 30), ("2g", 2 << 30), ("512m", 512 << 20),
                                              ("64k", 64 << 10), ("1024", 1024), ("10b", 10)])
def test_sizes_follow_1_1_parse_bytes(value, size):
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["1TB", "lots", "1.5GB"])
def test_sizes_1_1_refuses(value):
    with pytest.raises(ValueError):
        parse_size(value)


def test_set_config_persists_into_the_file_and_keeps_the_original(tmp_path):
    path = tmp_path / "server_config.yaml"
    path.write_text(render_server_config())
    cfg = NodeConfig.load(path)
    seen = []
    cfg.on_change("cache.cache_size", lambda s, k, v: seen.append(v))
    assert cfg.cli("set_config cache.cache_size 2GB") == "" and seen == ["2GB"]
    assert "restart" in cfg.cli("set_config general.timezone UTC-5:30") and cfg.restart_required
    assert cfg.cli("set_config cache.preload_collection *") == ""
    saved = yaml.safe_load(path.read_text())
    assert saved["cache"]["cache_size"] == "2GB" and saved["general"]["timezone"] == "UTC-5:30"
    assert saved["cache"]["preload_collection"] == "*"
    original = yaml.safe_load(path.with_name("server_config.yaml.ori").read_text())
    assert original["cache"]["cache_size"] == "4GB"
    assert "# labkit extension" in path.read_text()  # comments kept
    assert NodeConfig.load(path).to_settings().cache_size == 2 << 30


def test_a_callback_can_refuse_and_nothing_changes(tmp_path):
    cfg = NodeConfig.from_yaml(render_server_config())

    def refuse(section, key, value):
        raise MilvusError(Code.UNEXPECTED_ERROR, "no")

    cfg.on_change("cache.insert_buffer_size", refuse)
    with pytest.raises(MilvusError):
        cfg.cli("set_config cache.insert_buffer_size 2GB")
    assert cfg.get("cache", "insert_buffer_size") == "1GB"
