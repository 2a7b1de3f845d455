"""Milvus 1.1 lab nodes as lab services: ``local`` (python -m labkit.node) and ``docker`` (a container).

A node's files: ``<lab home>/nodes/<name>/conf/server_config.yaml`` (rendered here),
``wal/`` and ``logs/`` local, as the article keeps them; its ``storage.path`` is
``<its own JuiceFS mount>/milvus`` so ``db/`` is shared through JuiceFS.
"""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import engine as engines
from labkit.lab import images, procs
from labkit.lab.services import containers, ports
from labkit.lab.services.base import Service, ServiceStatus, register
from labkit.lab.state import write_private
from labkit.milvus.defaults import DEFAULT_PORT as ROUTER_PORT  # the router's (Mishards') port

FIRST_NODE_PORT = ROUTER_PORT + 1
EXPECT = "labkit.node"


def server_version(host: str, port: int, timeout: float = 2.0) -> str | None:
    """A node's (or router's) answer to pymilvus ``server_version()``, or None if none comes (yet)."""
    if not procs.port_open(port, host):
        return None  # not listening yet: skip the client (it logs every failed attempt)
    try:
        from milvus import Milvus

        client = Milvus(host, port, pool="SingletonThread", wait_timeout=timeout, try_connect=False,
                        pre_ping=False)
        try:
            status, version = client.server_version(timeout=timeout)
        finally:
            client.close()
        return version if status.OK() else None
    except Exception:
        return None


def node_info(host: str, port: int, timeout: float = 2.0) -> dict[str, Any]:
    """The node's ``labkit_stats`` (role, pid, ...), {} if nothing (or no lab node) answers there.

    Plain gRPC rather than pymilvus: the probe runs while the node starts, and pymilvus logs
    every refused attempt as an error.
    """
    if not procs.port_open(port, host):
        return {}
    import json

    import grpc

    from labkit.milvus.proto import messages

    pb, _, pb_grpc = messages()
    try:
        with grpc.insecure_channel(f"{host}:{port}") as channel:
            reply = pb_grpc.MilvusServiceStub(channel).Cmd(pb.Command(cmd="labkit_stats"), timeout=timeout)
        return json.loads(reply.string_reply) if reply.status.error_code == 0 else {}
    except (grpc.RpcError, ValueError):
        return {}


def _storage_problem(storage_path: str | None) -> str | None:
    """Why the node's storage.path (on its JuiceFS mount) cannot be used, or None."""
    if not storage_path:
        return None
    import errno
    import os

    try:
        os.statvfs(storage_path)  # reaches the FUSE client: a dead one answers ENOTCONN
    except OSError as exc:
        if exc.errno in (errno.ENOTCONN, errno.EIO):
            return f"storage {storage_path} unreachable (its JuiceFS mount is DOWN)"
        return f"storage {storage_path} missing ({exc.strerror})"
    return None


def answers_as(host: str, port: int, pid: int) -> bool:
    """True once the process ``pid`` itself serves on ``host:port``.

    Checking the PID matters: another lab's node may hold the port, and then ours failed to bind.
    """
    return node_info(host, port, 1.0).get("pid") == pid


def default_sizes() -> tuple[str, str]:
    """The template's cache 4GB + insert buffer 1GB when they fit this machine's memory, else a quarter and
    an eighth of it: 1.1 refuses to start when their sum reaches the memory (or cgroup) limit (Binder)."""
    from labkit.node.config_rules import total_memory

    total = total_memory()
    if (4 << 30) + (1 << 30) < total:
        return "4GB", "1GB"
    return f"{total // 4 >> 20}MB", f"{total // 8 >> 20}MB"


class _NodeBase(Service):
    kind = "node"

    def _paths(self) -> dict[str, Path]:
        home = self.state.dir("nodes", self.name)
        return {"home": home, "conf": home / "conf" / "server_config.yaml", "wal": home / "wal",
                "logs": home / "logs", "log": home / "logs" / "node.log"}

    def _storage_root(self) -> tuple[Path, Path | None]:
        """(storage.path, mount): ``<mount>/milvus`` from ``lab.mount(name)``, or an explicit path."""
        if self.options.get("storage_path"):
            return Path(self.options["storage_path"]), None
        lab = self.options.get("lab")
        if lab is None:
            raise LabError(f"Node {self.name} needs a lab (for its JuiceFS mount) or a storage_path.")
        mount = Path(lab.mount(self.name))
        return mount / "milvus", mount

    def _meta_uri(self) -> str:
        if self.options.get("meta_uri"):
            return str(self.options["meta_uri"])
        lab = self.options.get("lab")
        if lab is None:
            raise LabError(f"Node {self.name} needs a lab (for the MySQL metadata) or a meta_uri.")
        return lab.meta_uri()

    def _port(self) -> int:
        if self.options.get("port"):
            return int(self.options["port"])
        used = {ROUTER_PORT} | {int(r["port"]) for n, r in self.state.services().items()
                                if n != self.name and r.get("port")}
        previous = self.record.get("port")
        if previous and int(previous) not in used:
            # A restarted node keeps its address (the router's WOSERVER and clients point at it);
            # a node killed a moment ago may still hold the port briefly.
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                if procs.port_free(int(previous)):
                    return int(previous)
                time.sleep(0.1)
        for port in range(FIRST_NODE_PORT, FIRST_NODE_PORT + 20):
            if port not in used and procs.port_free(port):
                return port
        return procs.free_port(None, avoid=used)

    def render(self, port: int, storage_path: Path, wal_path: Path, logs_path: Path,
               existing: str | None = None) -> str:
        """The node's server_config.yaml. With ``existing`` (the file from an earlier start), what an
        operator changed there (by hand or by set_config) is kept; only what the lab decides (role,
        addresses, paths, metadata, metrics, and options given explicitly) is written over it."""
        from labkit.node.config import render_server_config, update_yaml_text

        o = self.options
        metric_port = o.get("metric_port")
        if existing is not None:
            lab_keys: dict[str, dict[str, Any]] = {
                "cluster": {"enable": bool(o.get("cluster", True)), "role": o.get("role", "rw")},
                "general": {"meta_uri": self._meta_uri()},
                "network": {"bind.address": o.get("address", "127.0.0.1"), "bind.port": port,
                            "http.enable": bool(o.get("http_port")),
                            "http.port": o.get("http_port") or 19121},
                "storage": {"path": str(storage_path)},
                "wal": {"path": str(wal_path)},
                "logs": {"path": str(logs_path), "log_to_stdout": True},
                "metric": {"enable": bool(metric_port), "port": metric_port or 9091},
            }
            for opt, (section, key) in {"cache_size": ("cache", "cache_size"),
                                        "insert_buffer_size": ("cache", "insert_buffer_size"),
                                        "auto_flush_interval": ("storage", "auto_flush_interval"),
                                        "preload": ("cache", "preload_new_segments"),
                                        "preload_poll_interval": ("cache", "preload_poll_interval")}.items():
                if o.get(opt) is not None:
                    lab_keys.setdefault(section, {})[key] = o[opt]
            return update_yaml_text(existing, lab_keys)
        return render_server_config(
            role=o.get("role", "rw"), meta_uri=self._meta_uri(), storage_path=str(storage_path),
            wal_path=str(wal_path), port=port, cluster=bool(o.get("cluster", True)),
            preload=bool(o.get("preload", False)), address=o.get("address", "127.0.0.1"),
            logs_path=str(logs_path), cache_size=str(o.get("cache_size") or default_sizes()[0]),
            insert_buffer_size=str(o.get("insert_buffer_size") or default_sizes()[1]),
            auto_flush_interval=o.get("auto_flush_interval", 1),
            preload_poll_interval=o.get("preload_poll_interval", 0.01),
            http_enable=bool(o.get("http_port")), http_port=int(o.get("http_port") or 19121),
            metric_enable=bool(metric_port), metric_port=int(metric_port or 9091),
            # the lab also keeps every record in node.log (the process's output), beside logs/milvus-*.log
            log_to_stdout=True)

    def url(self) -> str:
        rec = self.record
        return f"tcp://{rec.get('host', '127.0.0.1')}:{rec.get('port', '')}"


@register
class LocalNode(_NodeBase):
    """``python -m labkit.node --config <conf>`` in its own session, stopped by PID."""

    backend = "local"

    def _healthy(self, rec: dict[str, Any]) -> bool:
        return (procs.alive(rec.get("pid"), EXPECT)
                and answers_as(rec.get("host", "127.0.0.1"), int(rec.get("port", 0)), rec["pid"]))

    def ensure(self) -> dict[str, Any]:
        rec = self.record
        wanted_role = self.options.get("role", rec.get("role", "rw"))
        if rec and rec.get("role") == wanted_role and self._healthy(rec):
            return rec
        if rec.get("pid") and procs.alive(rec.get("pid"), EXPECT):
            procs.stop(rec["pid"], expect=EXPECT)  # alive but not answering, or another role: restart
        self.options.setdefault("role", wanted_role)
        if self.options.get("metrics") and not self.options.get("metric_port"):
            from labkit.lab.services.base import get_service

            pushgateway = get_service("pushgateway", "local", state=self.state)
            self.options["metric_port"] = pushgateway.ensure()["port"]
        if self.options.get("http") and not self.options.get("http_port"):
            self.options["http_port"] = rec.get("http_port") or procs.free_port(19121)
        p = self._paths()
        storage, mount = self._storage_root()
        storage.mkdir(parents=True, exist_ok=True)
        for d in (p["wal"], p["logs"], p["conf"].parent):
            d.mkdir(parents=True, exist_ok=True)
        port, pid = ports.start_retrying(lambda _attempt: self._port(),
                                         lambda port: self._spawn(port, storage, p),
                                         explicit=bool(self.options.get("port")))
        host = "127.0.0.1"
        return self.state.record(
            self.name, kind=self.kind, backend=self.backend, role=self.options["role"], host=host, port=port,
            pid=pid, config_path=str(p["conf"]), storage_path=str(storage),
            mount=str(mount) if mount else None,
            wal_path=str(p["wal"]), log=str(p["log"]), preload=bool(self.options.get("preload", False)),
            http_port=self.options.get("http_port"), metric_port=self.options.get("metric_port"))

    def _spawn(self, port: int, storage: Path, p: dict[str, Path]) -> int:
        """Start the node on ``port`` and wait until it (this PID) answers as Milvus 1.1."""
        existing = p["conf"].read_text() if p["conf"].exists() else None
        # meta_uri holds the MySQL password
        write_private(p["conf"], self.render(port, storage, p["wal"], p["logs"], existing))
        pid = procs.spawn([sys.executable, "-m", "labkit.node", "--config", str(p["conf"])], log=p["log"])
        try:
            procs.wait_until(lambda: answers_as("127.0.0.1", port, pid), timeout=60,
                             what=f"Milvus node {self.name}", pid=pid, log=p["log"], interval=0.2)
            if server_version("127.0.0.1", port) is None:  # what pymilvus itself sees (it needs 1.1.x)
                raise LabError(f"Milvus node {self.name} answers, but pymilvus cannot check its version.")
        except LabError:
            procs.stop(pid, expect=EXPECT)
            raise
        return pid

    def stop(self, purge: bool = False) -> None:
        # purge deletes only this process's local files; segments on JuiceFS belong to the cluster
        self.stop_process(EXPECT, purge, self.state.home / "nodes" / self.name)

    def status(self) -> ServiceStatus:
        rec = self.record
        host, port = rec.get("host", "127.0.0.1"), rec.get("port")
        alive = procs.alive(rec.get("pid"), EXPECT)
        version = server_version(host, int(port)) if alive and port else None
        healthy = version is not None
        detail = f"role {rec.get('role', '?')}, Milvus {version}" if version else (
            "not answering" if alive else "stopped")
        if healthy and node_info(host, int(port)).get("meta_ok") is False:
            healthy, detail = False, f"{detail}; metadata (MySQL) UNREACHABLE: calls fail until it is back"
        storage_problem = _storage_problem(rec.get("storage_path"))
        if healthy and storage_problem:
            healthy, detail = False, f"{detail}; DEGRADED: {storage_problem}; run `labkit up`"
        return ServiceStatus(self.name, self.kind, self.backend, f"{host}:{port}", rec.get("pid"),
                             healthy, detail)

    def commands(self) -> list[str]:
        return [f"{shlex.quote(sys.executable)} -m labkit.node --config {self._paths()['conf']}"]


@register
class DockerNode(_NodeBase):
    """The node in a container, with the article's ``-v`` lines and host networking.

    The host's JuiceFS mount (``lab.mount(name)``) is bind-mounted at ``/var/lib/milvus/db``, and
    ``conf/``, ``logs/`` and ``wal/`` come from ``<lab home>/nodes/<name>/``. The image is the real
    ``milvusdb/milvus`` one or labkit's local ``labkit/lab`` (``LABKIT_IMAGES``); both read
    ``/var/lib/milvus/conf/server_config.yaml``.
    """

    backend = "docker"
    IN = Path("/var/lib/milvus")

    def _container(self) -> str:
        return containers.container_name(self.state.home, self.name)

    def spec(self, port: int, db: Path) -> containers.RunSpec:
        p = self._paths()
        return containers.RunSpec(
            image=images.image_for("node"),
            binds={str(db): str(self.IN / "db"), str(p["conf"].parent): str(self.IN / "conf"),
                   str(p["logs"]): str(self.IN / "logs"), str(p["wal"]): str(self.IN / "wal")},
            health_port=port)

    def _healthy(self, rec: dict[str, Any]) -> bool:
        port = int(rec.get("port") or 0)
        return (bool(port) and node_info("127.0.0.1", port).get("role") == rec.get("role")
                and server_version("127.0.0.1", port) is not None)

    def ensure(self) -> dict[str, Any]:
        rec = self.record
        wanted_role = self.options.get("role", rec.get("role", "rw"))
        client = engines.ensure().client()
        box = containers.get(client, self._container())
        if (box is not None and rec.get("role") == wanted_role and containers.state(box)["running"]
                and self._healthy(rec)):
            return rec
        containers.remove(client, self._container())
        self.options.setdefault("role", wanted_role)
        p = self._paths()
        storage, mount = self._storage_root()
        db = storage / "db"
        db.mkdir(parents=True, exist_ok=True)
        for d in (p["wal"], p["logs"], p["conf"].parent):
            d.mkdir(parents=True, exist_ok=True)
        _, rec = ports.start_retrying(lambda _attempt: self._port(),
                                      lambda port: self._start(client, port, p, storage, mount, db),
                                      explicit=bool(self.options.get("port")))
        return rec

    def _start(self, client, port: int, p: dict[str, Path], storage: Path, mount: Path | None,
               db: Path) -> dict[str, Any]:
        existing = p["conf"].read_text() if p["conf"].exists() else None  # keeps an operator's edits
        write_private(p["conf"], self.render(port, self.IN, self.IN / "wal", self.IN / "logs", existing))
        spec = self.spec(port, db)
        images.require(spec.image)
        box = containers.run(client, spec, self._container(), self.state.home, self.name)
        rec = self.state.record(
            self.name, kind=self.kind, backend=self.backend, role=self.options["role"], host="127.0.0.1",
            port=port, pid=containers.state(box)["pid"], container=self._container(), container_id=box.id,
            image=spec.image, config_path=str(p["conf"]), storage_path=str(storage),
            mount=str(mount) if mount else None, wal_path=str(p["wal"]), log=str(p["logs"]),
            preload=bool(self.options.get("preload", False)), stopped=False)
        try:
            containers.wait_ready(box, lambda: self._healthy(rec), 90,
                                  f"Milvus node container {self._container()}")
        except LabError:
            containers.remove(client, self._container())
            raise
        return rec

    def stop(self, purge: bool = False) -> None:
        containers.stop_service(self.state, self.name, self._container(), purge)
        if purge:
            shutil.rmtree(self.state.home / "nodes" / self.name, ignore_errors=True)

    def status(self) -> ServiceStatus:
        rec = self.record
        box, st = containers.find(self._container())
        version = server_version("127.0.0.1", int(rec["port"])) if st["running"] and rec.get("port") else None
        if box is None:
            detail = "no container"
        else:
            detail = (f"role {rec.get('role', '?')}, Milvus {version or '-'}, container {self._container()}, "
                      f"{rec.get('image', '?')}, docker health {st.get('health')}")
        return ServiceStatus(self.name, self.kind, self.backend, f"127.0.0.1:{rec.get('port')}", st["pid"],
                             version is not None, detail)

    def commands(self) -> list[str]:
        """The ``docker run`` line (the config file is written only by ``ensure``)."""
        port = self.record.get("port") or self._port()
        storage = Path(self.record.get("storage_path")
                       or self.state.home / "mounts" / self.name / "jfs" / "milvus")
        line = containers.docker_run_line(self.spec(port, storage / "db"), self._container())
        return [self.state.mask(line)]
