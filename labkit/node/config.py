"""server_config.yaml of Milvus 1.1: parse and validate it, serve get/set_config, persist what is set.

Every key 1.1 reads has a default (Config.cpp's, used when the file leaves the key out) and answers
``get_config``; values are checked by ``config_rules`` with 1.1's codes and messages, at startup
and on ``set_config``. Nested YAML keys below a section are flattened with dots, as 1.1 does
(``network.bind.address`` is section ``network``, key ``bind.address``).

``set_config`` as 1.1: only the keys 1.1's SetConfigCli knows are settable; an accepted value is
written into the config file (the original kept once as ``<file>.ori``); keys of ``cache`` and
``engine_config`` take effect at once through the callbacks the node registers, every other key
marks the node as needing a restart (``restart_required``).

Beyond Milvus 1.1 (labkit extension, default off so the lab reproduces 1.1):
``cache.preload_new_segments: true`` makes a ro node poll the metadata every
``cache.preload_poll_interval`` seconds and load newly flushed segments before a query asks.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labkit.milvus.defaults import DEFAULT_PORT, HTTP_PORT
from labkit.milvus.status import Code, MilvusError
from labkit.node import config_rules as rules
from labkit.node.settings import StoreSettings

log = logging.getLogger("labkit.node")

# What a key means when the file leaves it out: Config.cpp's defaults (not the template's).
# Without `cluster.enable` a node is in cluster mode (1.1's default "true"), so `role: ro` alone
# makes a read-only node.
DEFAULTS: dict[str, dict[str, Any]] = {
    "version": {"": "0.5"},
    "cluster": {"enable": "true", "role": "rw"},
    "general": {"timezone": "UTC+8", "meta_uri": "sqlite://:@:/"},
    "network": {"bind.address": "127.0.0.1", "bind.port": str(DEFAULT_PORT), "http.enable": "true",
                "http.port": str(HTTP_PORT)},
    "storage": {"path": "/tmp/milvus", "auto_flush_interval": "1", "file_cleanup_timeout": "10"},
    "wal": {"enable": "true", "recovery_error_ignore": "true", "buffer_size": "268435456",
            "path": "/tmp/milvus/wal"},
    "cache": {"cache_size": "4294967296", "cpu_cache_threshold": "0.7", "insert_buffer_size": "1073741824",
              "preload_collection": "", "cache_insert_data": "false",
              # labkit extension (not in 1.1)
              "preload_new_segments": "false", "preload_poll_interval": "0.01"},
    "gpu": {"enable": "false", "cache_size": "1073741824", "gpu_search_threshold": "1000",
            "search_devices": "gpu0", "build_index_devices": "gpu0"},
    "fpga": {"enable": "false", "search_devices": "fpga0"},
    "logs": {"level": "debug", "trace.enable": "true", "path": "/tmp/milvus/logs",
             "max_log_file_size": "1073741824", "log_rotate_num": "0", "log_to_stdout": "false",
             "log_to_file": "true"},
    "metric": {"enable": "false", "address": "127.0.0.1", "port": "9091"},
    "engine_config": {"use_blas_threshold": "1100", "omp_thread_num": "0", "simd_type": "auto",
                      "search_combine_nq": "64", "max_partition_num": "4096"},
}

parse_bool = rules.to_bool


def parse_size(value: Any) -> int:
    """``4GB`` / ``256MB`` / ``1024`` (bytes) -> bytes, by 1.1's rules; ValueError when it is not a size."""
    if isinstance(value, bool):
        raise ValueError(f"not a size: {value!r}")
    try:
        return rules.parse_bytes(value)
    except MilvusError as exc:
        raise ValueError(exc.reason) from None


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out[prefix] = value


Callback = Callable[[str, str, str], None]


@dataclass
class NodeConfig:
    """A parsed server_config.yaml: ``values[section][key]`` (strings, as 1.1 keeps them)."""

    values: dict[str, dict[str, Any]] = field(default_factory=lambda: json.loads(json.dumps(DEFAULTS)))
    path: Path | None = None
    ignored: list[str] = field(default_factory=list)  # keys 1.1 does not read
    restart_required: bool = False
    _callbacks: dict[str, list[Callback]] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- reading ---------------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, text: str, path: Path | None = None) -> NodeConfig:
        """Parse and validate as 1.1's ValidateConfig; a refused value raises ValueError (1.1's message)."""
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ValueError(f"server_config.yaml is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("server_config.yaml must be a mapping of sections")
        cfg = cls(path=path)
        for section, body in data.items():
            section = str(section)
            flat: dict[str, Any] = {}
            if isinstance(body, dict):
                _flatten("", body, flat)
            else:
                flat[""] = body  # e.g. `version: 0.5`
            for key, value in flat.items():
                if section in cfg.values and key in cfg.values[section]:
                    cfg.values[section][key] = rules.text(value)
                else:
                    cfg.ignored.append(f"{section}.{key}" if key else section)
        cfg.validate()
        return cfg

    @classmethod
    def load(cls, path: str | Path) -> NodeConfig:
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as exc:
            raise ValueError(f"Config file not exist: {p} ({exc.strerror})") from None
        return cls.from_yaml(text, p)

    def validate(self) -> None:
        for section, body in self.values.items():
            for key, value in body.items():
                try:
                    rules.check(section, key, value, self.values)
                except MilvusError as exc:
                    raise ValueError(exc.reason) from None
        self.to_settings()

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    def flag(self, section: str, key: str) -> bool:
        return rules.to_bool(self.values[section][key])

    def size(self, section: str, key: str) -> int:
        return rules.parse_bytes(self.values[section][key])

    # -- what the node uses ----------------------------------------------------------------
    @property
    def cluster(self) -> bool:
        return self.flag("cluster", "enable")

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

    @property
    def http_enabled(self) -> bool:
        return self.flag("network", "http.enable")

    @property
    def http_port(self) -> int:
        return int(self.get("network", "http.port"))

    def to_settings(self) -> StoreSettings:
        v = self.values
        try:
            return StoreSettings(
                role=self.role,
                cluster=self.cluster,
                meta_uri=str(v["general"]["meta_uri"]),
                storage_path=str(v["storage"]["path"]),
                auto_flush_interval=float(v["storage"]["auto_flush_interval"]),
                file_cleanup_timeout=float(v["storage"]["file_cleanup_timeout"]),
                wal_enable=self.flag("wal", "enable"),
                wal_path=str(v["wal"]["path"]),
                # 1.1 clamps the WAL buffer into [64 MB, 4 GB]
                wal_buffer_size=min(max(self.size("wal", "buffer_size"), 64 << 20), 4 << 30),
                cache_size=self.size("cache", "cache_size"),
                insert_buffer_size=self.size("cache", "insert_buffer_size"),
                preload_collection=str(v["cache"]["preload_collection"] or "").strip("'"),
                cache_insert_data=self.flag("cache", "cache_insert_data"),
                wal_recovery_error_ignore=self.flag("wal", "recovery_error_ignore"),
                preload=self.flag("cache", "preload_new_segments"),
                preload_interval=float(v["cache"]["preload_poll_interval"]),
            )
        except (TypeError, ValueError, MilvusError) as exc:
            raise ValueError(f"server_config.yaml: {getattr(exc, 'reason', exc)}") from None

    # -- live changes -----------------------------------------------------------------------
    def on_change(self, dotted: str, fn: Callback) -> None:
        """Call ``fn(section, key, value)`` when ``set_config`` accepts ``dotted``; it may raise
        MilvusError."""
        self._callbacks.setdefault(dotted, []).append(fn)

    # -- Cmd: get_config / set_config ------------------------------------------------------
    def cli(self, cmd: str) -> str:
        """``get_config storage.path`` / ``get_config *`` / ``set_config cache.cache_size 2GB``."""
        tokens = cmd.split(" ")
        verb = tokens[0] if tokens else ""
        if verb == "get_config":
            if len(tokens) != 2:
                raise MilvusError(Code.UNEXPECTED_ERROR, f"Invalid command: {cmd}")
            if tokens[1] == "*":
                return json.dumps(self.as_dict())
            section, key = self._node(tokens[1], cmd)
            if key not in self.values.get(section, {}):
                raise MilvusError(Code.UNEXPECTED_ERROR, f"Config node invalid: {section}.{key}")
            return rules.text(self.values[section][key])
        if verb == "set_config":
            if len(tokens) != 3:
                raise MilvusError(Code.UNEXPECTED_ERROR, f"Invalid command: {cmd}")
            section, key = self._node(tokens[1], cmd)
            return self.set(section, key, tokens[2])
        raise MilvusError(Code.UNEXPECTED_ERROR, f"Invalid command: {cmd}")

    def as_dict(self) -> dict[str, dict[str, str]]:
        return {s: {k: rules.text(x) for k, x in body.items()}
                for s, body in self.values.items() if s != "version"}

    def set(self, section: str, key: str, value: str) -> str:
        """Check, apply (live keys), persist; the reply is "" or says a restart is needed."""
        dotted = f"{section}.{key}"
        if key not in rules.SETTABLE.get(section, set()):
            if section == "gpu" and key in self.values["gpu"]:
                raise MilvusError(Code.UNEXPECTED_ERROR, f"{dotted} cannot be set: this is a CPU node.")
            raise MilvusError(Code.UNEXPECTED_ERROR, f"Config node invalid: {dotted}")
        with self._lock:
            rules.check(section, key, value, self.values)
            stored = "'*'" if key == "preload_collection" and value == "*" else value
            old = self.values[section][key]
            self.values[section][key] = stored
            try:
                self.to_settings()
                for fn in self._callbacks.get(dotted, []):
                    fn(section, key, value)
            except (ValueError, MilvusError) as exc:
                self.values[section][key] = old
                if isinstance(exc, MilvusError):
                    raise
                raise MilvusError(Code.ILLEGAL_ARGUMENT, str(exc)) from None
            self._persist(section, key, stored)
            if section in rules.LIVE_SECTIONS or dotted in rules.LIVE_KEYS:
                return ""
            self.restart_required = True
            return f"{dotted} is saved; it takes effect when the node restarts."

    def _node(self, dotted: str, cmd: str) -> tuple[str, str]:
        section, _, key = dotted.partition(".")
        if not key:
            raise MilvusError(Code.UNEXPECTED_ERROR, f"Invalid command: {cmd}")
        if section not in self.values or key not in self.values[section]:
            raise MilvusError(Code.UNEXPECTED_ERROR, f"Config node invalid: {dotted}")
        return section, key

    def _persist(self, section: str, key: str, value: str) -> None:
        """Write ``key: value`` into the file's ``section`` (keeping ``<file>.ori`` the first time)."""
        if self.path is None:
            return
        path = Path(self.path)
        if not path.exists():
            raise MilvusError(Code.UNEXPECTED_ERROR, f"Cannot find configure file: {path}")
        ori = path.with_name(path.name + ".ori")
        if not ori.exists():
            shutil.copyfile(path, ori)
        if key in {"enable", "cache_insert_data", "recovery_error_ignore"}:  # 1.1 writes these as true/false
            value = "true" if rules.to_bool(value) else "false"
        path.write_text(_set_line(path.read_text(), section, key, value))


def update_yaml_text(text: str, changes: dict[str, dict[str, Any]]) -> str:
    """``text`` (a server_config.yaml) with ``changes[section][key]`` set, everything else kept as written."""
    for section, body in changes.items():
        for key, value in body.items():
            text = _set_line(text, section, key, rules.text(value))
    return text


def _set_line(text: str, section: str, key: str, value: str) -> str:
    """``text`` with ``key: value`` under ``section:`` (replaced in place, else added), comments kept."""
    lines = text.splitlines()
    head = re.compile(rf"^{re.escape(section)}\s*:")
    entry = re.compile(rf"^(\s+){re.escape(key)}\s*:")
    start = next((i for i, ln in enumerate(lines) if head.match(ln)), None)
    if start is None:
        lines += ["", f"{section}:", f"  {key}: {value}"]
        return "\n".join(lines) + "\n"
    i = start + 1
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t", "#"))):
        m = entry.match(lines[i])
        if m:
            lines[i] = f"{m.group(1)}{key}: {value}"
            return "\n".join(lines) + "\n"
        i += 1
    lines.insert(start + 1, f"  {key}: {value}")
    return "\n".join(lines) + "\n"


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
    http_enable: bool = False,
    metric_enable: bool = False,
    metric_port: int = 9091,
    log_to_stdout: bool = False,
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
  http.enable: {b(http_enable)}
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
  log_to_stdout: {b(log_to_stdout)}
  log_to_file: true

metric:
  enable: {b(metric_enable)}
  address: 127.0.0.1
  port: {metric_port}
"""
