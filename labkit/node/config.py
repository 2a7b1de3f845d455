"""server_config.yaml of Milvus 1.1: parse it into StoreSettings, render it, serve get/set_config.

Every key of the 1.1 template is accepted and reported by ``get_config``; the ones the lab node
acts on are listed in ``to_settings``. Nested YAML keys below a section are flattened with dots,
as 1.1 does (``network.bind.address`` is section ``network``, key ``bind.address``).

Beyond Milvus 1.1 (labkit extension, default off so the lab reproduces 1.1):
``cache.preload_new_segments: true`` makes a ro node poll the metadata every
``cache.preload_poll_interval`` seconds and load newly flushed segments before a query asks.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labkit.milvus.defaults import DEFAULT_PORT, HTTP_PORT
from labkit.milvus.status import Code, MilvusError
from labkit.node.settings import StoreSettings

# The 1.1 template's keys with its defaults (core/conf/demo/server_config.yaml and Config.cpp).
DEFAULTS: dict[str, dict[str, Any]] = {
    "version": {"": "0.5"},
    "cluster": {"enable": False, "role": "rw"},
    "general": {"timezone": "UTC+8", "meta_uri": "sqlite://:@:/"},
    "network": {"bind.address": "0.0.0.0", "bind.port": DEFAULT_PORT, "http.enable": True,
                "http.port": HTTP_PORT},
    "storage": {"path": "/var/lib/milvus", "auto_flush_interval": 1, "file_cleanup_timeout": 10},
    "wal": {"enable": True, "recovery_error_ignore": False, "buffer_size": "256MB",
            "path": "/var/lib/milvus/wal"},
    "cache": {"cache_size": "4GB", "insert_buffer_size": "1GB", "preload_collection": "",
              "cache_insert_data": False,
              # labkit extension (not in 1.1)
              "preload_new_segments": False, "preload_poll_interval": 0.01},
    "gpu": {"enable": False, "cache_size": "1GB", "gpu_search_threshold": 1000,
            "search_devices": ["gpu0"], "build_index_devices": ["gpu0"]},
    "fpga": {"enable": False, "search_devices": ["fpga0"]},
    "logs": {"level": "debug", "trace.enable": True, "path": "/var/lib/milvus/logs",
             "max_log_file_size": "1024MB", "log_rotate_num": 0, "log_to_stdout": False, "log_to_file": True},
    "metric": {"enable": False, "address": "127.0.0.1", "port": 9091},
    "engine_config": {"use_blas_threshold": 1100, "omp_thread_num": 0, "simd_type": "auto",
                      "search_combine_nq": 64, "max_partition_num": 4096},
}

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
          "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+)\s*([a-zA-Z]*)\s*$")


def parse_size(value: Any) -> int:
    """``4GB`` / ``256MB`` / ``1024`` (bytes, as 1.1's parse_bytes) -> bytes."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    if isinstance(value, int):
        return value
    m = _SIZE.match(str(value))
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a size: {value!r} (use e.g. 4GB, 256MB or a number of bytes)")
    return int(m.group(1)) * _UNITS[m.group(2).lower()]


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "on", "yes", "1"}:
        return True
    if text in {"false", "off", "no", "0"}:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


@dataclass
class NodeConfig:
    """A parsed server_config.yaml: ``values[section][key]`` plus where it came from."""

    values: dict[str, dict[str, Any]] = field(default_factory=lambda: json.loads(json.dumps(DEFAULTS)))
    path: Path | None = None

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, text: str, path: Path | None = None) -> NodeConfig:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"server_config.yaml is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("server_config.yaml must be a mapping of sections")
        cfg = cls(path=path)
        for section, body in data.items():
            section = str(section)
            if not isinstance(body, dict):
                cfg.values.setdefault(section, {})[""] = body  # e.g. `version: 0.5`
                continue
            flat: dict[str, Any] = {}
            _flatten("", body, flat)
            cfg.values.setdefault(section, {}).update({k: ("" if v is None else v) for k, v in flat.items()})
        cfg.to_settings()  # fail early on bad values
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise ValueError(f"cannot read {p}: {exc.strerror}") from None
        return cls.from_yaml(text, p)

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    # -- what the node uses ----------------------------------------------------------------
    @property
    def cluster(self) -> bool:
        return parse_bool(self.get("cluster", "enable"))

    @property
    def role(self) -> str:
        """Effective role: ``ro`` only in a cluster with ``role: ro``; a single node is rw."""
        return "ro" if self.cluster and str(self.get("cluster", "role")) == "ro" else "rw"

    @property
    def address(self) -> str:
        return str(self.get("network", "bind.address"))

    @property
    def port(self) -> int:
        return int(self.get("network", "bind.port"))

    def to_settings(self) -> StoreSettings:
        v = self.values
        role = str(v["cluster"]["role"])
        if role not in {"rw", "ro"}:
            raise ValueError(f"cluster.role must be rw or ro, not {role!r}")
        meta_uri = str(v["general"]["meta_uri"])
        if not meta_uri.startswith(("mysql://", "sqlite://")):
            raise ValueError(f"general.meta_uri must start with mysql:// or sqlite://, not {meta_uri!r}")
        try:
            return StoreSettings(
                role=self.role,
                cluster=self.cluster,
                meta_uri=meta_uri,
                storage_path=str(v["storage"]["path"]),
                auto_flush_interval=float(v["storage"]["auto_flush_interval"]),
                file_cleanup_timeout=float(v["storage"]["file_cleanup_timeout"]),
                wal_enable=parse_bool(v["wal"]["enable"]),
                wal_path=str(v["wal"]["path"]),
                wal_buffer_size=parse_size(v["wal"]["buffer_size"]),
                cache_size=parse_size(v["cache"]["cache_size"]),
                insert_buffer_size=parse_size(v["cache"]["insert_buffer_size"]),
                preload_collection=str(v["cache"]["preload_collection"] or ""),
                preload=parse_bool(v["cache"]["preload_new_segments"]),
                preload_interval=float(v["cache"]["preload_poll_interval"]),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"server_config.yaml: {exc}") from None

    # -- Cmd: get_config / set_config ------------------------------------------------------
    def cli(self, cmd: str) -> str:
        """``get_config storage.path`` / ``get_config *`` / ``set_config cache.cache_size 2GB``."""
        tokens = cmd.split()
        verb = tokens[0] if tokens else ""
        if verb == "get_config" and len(tokens) == 2:
            if tokens[1] == "*":
                return json.dumps({s: {k: _text(x) for k, x in body.items()} for s, body in self.values.items()})
            section, key = self._node(tokens[1], cmd)
            return _text(self.values[section][key])
        if verb == "set_config" and len(tokens) == 3:
            section, key = self._node(tokens[1], cmd)
            old = self.values[section][key]
            self.values[section][key] = tokens[2]
            try:
                self.to_settings()
            except ValueError as exc:
                self.values[section][key] = old
                raise MilvusError(Code.UNEXPECTED_ERROR, f"Invalid value for {tokens[1]}: {exc}") from None
            return ""
        raise MilvusError(Code.UNEXPECTED_ERROR, f"Invalid command: {cmd}")

    def _node(self, dotted: str, cmd: str) -> tuple[str, str]:
        section, _, key = dotted.partition(".")
        if not key:
            raise MilvusError(Code.UNEXPECTED_ERROR, f"Invalid command: {cmd}")
        if section not in self.values or key not in self.values[section]:
            raise MilvusError(Code.UNEXPECTED_ERROR, f"Config node invalid: {dotted}")
        return section, key


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(x) for x in value)
    return str(value)


def render_server_config(
    role: str = "rw",
    meta_uri: str = "sqlite://:@:/",
    storage_path: str = "/var/lib/milvus",
    wal_path: str = "/var/lib/milvus/wal",
    port: int = DEFAULT_PORT,
    cluster: bool = True,
    preload: bool = False,
    address: str = "127.0.0.1",
    logs_path: str = "/var/lib/milvus/logs",
    cache_size: str = "4GB",
    insert_buffer_size: str = "1GB",
    auto_flush_interval: float = 1,
    http_port: int = HTTP_PORT,
    preload_poll_interval: float = 0.01,
) -> str:
    """A server_config.yaml in the shape of Milvus 1.1's template (version 0.5)."""
    b = lambda x: "true" if x else "false"  # noqa: E731
    flush = int(auto_flush_interval) if float(auto_flush_interval).is_integer() else auto_flush_interval
    return f"""\
version: 0.5

#----------------------+------------------------------------------------------------+
# Cluster              | one rw node writes; ro nodes only search (Milvus 1.1)      |
#----------------------+------------------------------------------------------------+
cluster:
  enable: {b(cluster)}
  role: {role}

general:
  timezone: UTC+8
  meta_uri: {meta_uri}

network:
  bind.address: {address}
  bind.port: {port}
  http.enable: false
  http.port: {http_port}

storage:
  path: {storage_path}
  auto_flush_interval: {flush}

wal:
  enable: true
  recovery_error_ignore: false
  buffer_size: 256MB
  path: {wal_path}

cache:
  cache_size: {cache_size}
  insert_buffer_size: {insert_buffer_size}
  preload_collection:
  # labkit extension, not in Milvus 1.1: a ro node loads newly flushed segments
  # before the first query asks for them (polls the metadata). Off = Milvus 1.1.
  preload_new_segments: {b(preload)}
  preload_poll_interval: {preload_poll_interval}

gpu:
  enable: false
  cache_size: 1GB
  gpu_search_threshold: 1000
  search_devices:
    - gpu0
  build_index_devices:
    - gpu0

fpga:
  enable: false
  search_devices:
    - fpga0

logs:
  level: debug
  trace.enable: true
  path: {logs_path}
  max_log_file_size: 1024MB
  log_rotate_num: 0
  log_to_stdout: false
  log_to_file: true

metric:
  enable: false
  address: 127.0.0.1
  port: 9091
"""
