"""A throw-away cluster for one benchmark: rw + N ro nodes (+ a router) on fresh metadata and storage.

Each benchmark run gets its own MySQL database and its own ``storage.path`` folder on the JuiceFS
mounts, so it never shares segments or rows with the lab's notebooks or another run; every node,
mount and database it made is removed on exit, also after a failure part way through start-up.

    with EphemeralCluster(lab, "fq-lazy", ro=2) as ec:
        ec.client.create_collection(...)      # pymilvus 1.1.2 through the router
        ec.node_clients["fq-lazy-ro1"]        # one read node, directly
"""

from __future__ import annotations

import contextlib
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.lab import cluster, procs
from labkit.lab.services.base import get_service

NodeOptions = Callable[[str], dict[str, Any]]


class EphemeralCluster:
    """Nodes ``<prefix>-rw``, ``<prefix>-ro1..N`` and, with ``router=True``, ``<prefix>-router``.

    ``node_options(role)`` returns extra ``cluster.start_node`` keywords per role (cache size,
    flush interval, preload, ...); ``node_env(role)`` environment variables the node inherits
    (e.g. ``OMP_NUM_THREADS``); ``router_options`` the router service's options (e.g.
    ``search_timeout``). Ports are ephemeral: the default 1953x range belongs to the lab.
    """

    def __init__(self, lab: Any, prefix: str, *, ro: int, router: bool = True,
                 node_options: NodeOptions | None = None,
                 node_env: Callable[[str], dict[str, str]] | None = None,
                 router_options: dict[str, Any] | None = None) -> None:
        if ro < 1:
            raise ValueError("an ephemeral cluster needs at least one read node")
        tag = uuid.uuid4().hex[:6]
        self.lab = lab
        self.db = f"{prefix}_{tag}".replace("-", "_")
        self.storage_dir = f"milvus-{prefix}-{tag}"
        self.rw_name = f"{prefix}-rw"
        self.ro_names = [f"{prefix}-ro{i}" for i in range(1, ro + 1)]
        self.router_name = f"{prefix}-router" if router else None
        self._node_options = node_options or (lambda role: {})
        self._node_env = node_env or (lambda role: {})
        self._router_options = dict(router_options or {})
        self.records: dict[str, dict[str, Any]] = {}
        self.mounts: dict[str, Path] = {}
        self.router: dict[str, Any] | None = None
        self.client: Any = None
        self.node_clients: dict[str, Any] = {}
        self._started: list[str] = []
        self._db_made = False

    @property
    def names(self) -> list[str]:
        """Node names, rw first."""
        return [self.rw_name, *self.ro_names]

    @property
    def meta_uri(self) -> str:
        return self.lab.meta_uri(self.db)

    def __enter__(self) -> EphemeralCluster:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self.lab.up()
        self.lab.create_database(self.db)
        self._db_made = True
        for name in self.names:
            role = "rw" if name == self.rw_name else "ro"
            self._started.append(name)
            self.mounts[name] = Path(self.lab.mount(name))
            with procs.environ(self._node_env(role)):
                self.records[name] = cluster.start_node(
                    self.lab, name, role=role, meta_uri=self.meta_uri, port=procs.free_port(),
                    storage_path=str(self.mounts[name] / self.storage_dir), **self._node_options(role))
        self.node_clients = {n: cluster.connect(self.records[n]) for n in self.names}
        if self.router_name:
            self._started.append(self.router_name)
            self.router = cluster.start_router(self.lab, name=self.router_name, woserver=self.rw_name,
                                               hosts=self.ro_names, meta_uri=self.meta_uri,
                                               port=procs.free_port(), **self._router_options)
            self.client = cluster.connect(self.router)
        else:
            self.client = self.node_clients[self.rw_name]

    def close(self) -> None:
        """Stop by PID what was started, remove the run's segments and database; never raises."""
        for name in reversed(self._started):
            with contextlib.suppress(Exception):
                if name == self.router_name:
                    get_service("router", "local", self.lab.state, name).stop(purge=True)
                else:
                    cluster.stop_node(self.lab, name, purge=True)
        rw_mount = self.mounts.get(self.rw_name)
        if rw_mount is not None:
            shutil.rmtree(rw_mount / self.storage_dir, ignore_errors=True)
        for name in self.mounts:
            with contextlib.suppress(Exception):
                self.lab.umount(name)
        if self._db_made:
            with contextlib.suppress(Exception):
                self.lab.drop_database(self.db)
        self._started.clear()
        self.mounts.clear()
        self._db_made = False
