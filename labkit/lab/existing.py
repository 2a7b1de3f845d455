"""A cluster the user already runs (a real Milvus 1.1 + Mishards, MySQL, Redis), instead of the lab's.

Settings, from the environment or from a KEY=VALUE file named by ``LABKIT_CLUSTER_FILE``
(the environment wins):

    LABKIT_CLUSTER_ROUTER=host:port          Mishards (what clients connect to)
    LABKIT_CLUSTER_RW=host:port              the rw Milvus node (optional)
    LABKIT_CLUSTER_RO=host:port,host:port    the ro Milvus nodes (optional)
    LABKIT_CLUSTER_MYSQL=mysql://user:password@host:port/milvus    Milvus's meta_uri (optional)
    LABKIT_CLUSTER_REDIS=redis://:password@host:port/1              JuiceFS META-URL (optional)
    LABKIT_CLUSTER_STORAGE=/root/jfs/milvus   this machine's view of storage.path (optional; the
                                             JuiceFS folder holding db/), given to node records

With ``LABKIT_CLUSTER_ROUTER`` set, ``cluster.start_node`` / ``start_router`` hand out these
addresses (as records ``cluster.connect`` takes) and start nothing; ``stop_node`` stops nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from labkit.errors import LabError

PREFIX = "LABKIT_CLUSTER_"
FILE_ENV = "LABKIT_CLUSTER_FILE"


def _address(text: str, what: str) -> tuple[str, int]:
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LabError(f"{what} must look like host:port, not {text!r}.")
    return host, int(port)


def _record(name: str, kind: str, text: str, role: str | None = None) -> dict[str, Any]:
    host, port = _address(text, PREFIX + (role or kind).upper())
    rec = {"name": name, "kind": kind, "backend": "existing", "host": host, "port": port}
    if role:
        rec["role"] = role
    return rec


@dataclass
class ExistingCluster:
    """Addresses of a cluster labkit did not start; records shaped like the lab's own."""

    router: dict[str, Any]
    rw: dict[str, Any] | None = None
    ro: list[dict[str, Any]] = field(default_factory=list)
    meta_uri: str | None = None
    redis_url: str | None = None
    source: str = "environment"
    storage_path: str | None = None

    def __post_init__(self) -> None:
        for rec in ([self.rw] if self.rw else []) + self.ro:
            rec["storage_path"] = self.storage_path

    def node(self, name: str, role: str) -> dict[str, Any]:
        """The record of node ``name`` ("rw", "ro1", "ro2", ...); a clear error if the cluster has none."""
        if role == "rw":
            if self.rw is None:
                raise LabError(f"The existing cluster ({self.source}) names no rw node; set {PREFIX}RW=host:port.")
            return self.rw
        for rec in self.ro:
            if rec["name"] == name:
                return rec
        raise LabError(f"The existing cluster ({self.source}) has {len(self.ro)} ro node(s) "
                       f"({', '.join(r['name'] for r in self.ro) or 'none'}); {name} is not one of them.")

    def mysql_params(self) -> dict[str, Any]:
        """pymysql.connect(**params) for the cluster's Milvus metadata."""
        if not self.meta_uri:
            raise LabError(f"The existing cluster names no MySQL; set {PREFIX}MYSQL=mysql://user:pw@host:port/db.")
        u = urlparse(self.meta_uri)
        return {"host": u.hostname or "127.0.0.1", "port": u.port or 3306, "user": unquote(u.username or ""),
                "password": unquote(u.password or ""), "database": u.path.lstrip("/") or "milvus"}

    def check(self) -> dict[str, Any]:
        """What answers right now: router and node versions, MySQL login, Redis PING."""
        from labkit.lab.services.node import server_version

        out: dict[str, Any] = {"router": server_version(self.router["host"], self.router["port"], timeout=5)}
        for rec in ([self.rw] if self.rw else []) + self.ro:
            out[rec["name"]] = server_version(rec["host"], rec["port"], timeout=5)
        if self.meta_uri:
            from labkit.lab.services.mysql import can_connect

            out["mysql"] = can_connect(self.mysql_params())
        if self.redis_url:
            import redis

            try:
                out["redis"] = bool(redis.Redis.from_url(self.redis_url, socket_timeout=3).ping())
            except redis.RedisError:
                out["redis"] = False
        return out


def settings(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The LABKIT_CLUSTER_* values: the file's, overridden by the environment's."""
    env = os.environ if env is None else env
    values: dict[str, str] = {}
    if env.get(FILE_ENV):
        from labkit.router.config import read_env_file

        path = Path(env[FILE_ENV]).expanduser()
        values.update({k: v for k, v in read_env_file(path).items() if k.startswith(PREFIX)})
    values.update({k: v for k, v in env.items() if k.startswith(PREFIX) and k != FILE_ENV and v})
    return values


def load(env: Mapping[str, str] | None = None) -> ExistingCluster | None:
    """The configured existing cluster, or None when ``LABKIT_CLUSTER_ROUTER`` is not set."""
    env = os.environ if env is None else env
    values = settings(env)
    if not values.get(f"{PREFIX}ROUTER"):
        return None
    source = f"file {env[FILE_ENV]}" if env.get(FILE_ENV) else "environment"
    ro_list = [t for t in values.get(f"{PREFIX}RO", "").replace(" ", ",").split(",") if t]
    return ExistingCluster(
        router=_record("router", "router", values[f"{PREFIX}ROUTER"]),
        rw=_record("rw", "node", values[f"{PREFIX}RW"], "rw") if values.get(f"{PREFIX}RW") else None,
        ro=[_record(f"ro{i}", "node", t, "ro") for i, t in enumerate(ro_list, 1)],
        meta_uri=values.get(f"{PREFIX}MYSQL") or None, redis_url=values.get(f"{PREFIX}REDIS") or None,
        source=source, storage_path=values.get(f"{PREFIX}STORAGE") or None)
