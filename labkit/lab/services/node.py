"""Milvus 1.1 lab nodes as lab services: ``local`` (python -m labkit.node) and ``docker`` (dry run).

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
from labkit.lab import procs
from labkit.lab.services import ports
from labkit.lab.services.base import Service, ServiceStatus, register
from labkit.milvus.defaults import DEFAULT_PORT as ROUTER_PORT  # the router's (Mishards') port

FIRST_NODE_PORT = ROUTER_PORT + 1
DOCKER_IMAGE = "milvusdb/milvus:1.1.1-cpu-d061621-330cc6"
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


def answers_as(host: str, port: int, pid: int) -> bool:
    """True once the process ``pid`` itself serves on ``host:port``.

    Checking the PID matters: another lab's node may hold the port, and then ours failed to bind.
    """
    return node_info(host, port, 1.0).get("pid") == pid


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

    def render(self, port: int, storage_path: Path, wal_path: Path, logs_path: Path) -> str:
        from labkit.node.config import render_server_config

        o = self.options
        return render_server_config(
            role=o.get("role", "rw"), meta_uri=self._meta_uri(), storage_path=str(storage_path),
            wal_path=str(wal_path), port=port, cluster=bool(o.get("cluster", True)),
            preload=bool(o.get("preload", False)), address=o.get("address", "127.0.0.1"),
            logs_path=str(logs_path), cache_size=str(o.get("cache_size", "4GB")),
            insert_buffer_size=str(o.get("insert_buffer_size", "1GB")),
            auto_flush_interval=o.get("auto_flush_interval", 1),
            preload_poll_interval=o.get("preload_poll_interval", 0.01))

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
            pid=pid, config_path=str(p["conf"]), storage_path=str(storage), mount=str(mount) if mount else None,
            wal_path=str(p["wal"]), log=str(p["log"]), preload=bool(self.options.get("preload", False)))

    def _spawn(self, port: int, storage: Path, p: dict[str, Path]) -> int:
        """Start the node on ``port`` and wait until it (this PID) answers as Milvus 1.1."""
        p["conf"].write_text(self.render(port, storage, p["wal"], p["logs"]))
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
        detail = f"role {rec.get('role', '?')}, Milvus {version}" if version else (
            "not answering" if alive else "stopped")
        return ServiceStatus(self.name, self.kind, self.backend, f"{host}:{port}", rec.get("pid"),
                             version is not None, detail)

    def commands(self) -> list[str]:
        return [f"{shlex.quote(sys.executable)} -m labkit.node --config {self._paths()['conf']}"]


@register
class DockerNode(_NodeBase):
    """The real image, as the article runs it; here a dry run: renders the config and the command."""

    backend = "docker"

    def docker_command(self, port: int | None = None) -> list[str]:
        p = self._paths()
        storage, _ = self._storage_root()
        port = port or self._port()
        return ["docker", "run", "-d", "--name", f"milvus_{self.name}", "--network", "host",
                "-v", f"{storage}/db:/var/lib/milvus/db", "-v", f"{p['conf'].parent}:/var/lib/milvus/conf",
                "-v", f"{p['logs']}:/var/lib/milvus/logs", "-v", f"{p['wal']}:/var/lib/milvus/wal",
                DOCKER_IMAGE]

    def ensure(self) -> dict[str, Any]:
        if shutil.which("docker") is None:
            raise LabError("The docker backend needs a Docker engine; none is installed here "
                           "(use backend='local', or see commands() for what it would run).")
        raise LabError("The docker node backend is a dry run in this lab; see commands().")

    def commands(self) -> list[str]:
        p = self._paths()
        port = self._port()
        p["conf"].parent.mkdir(parents=True, exist_ok=True)
        # inside the container the paths are the image's defaults
        p["conf"].write_text(self.render(port, Path("/var/lib/milvus"), Path("/var/lib/milvus/wal"),
                                         Path("/var/lib/milvus/logs")))
        return [self.state.mask(shlex.join(self.docker_command(port)))]

    def stop(self, purge: bool = False) -> None:
        self.state.forget(self.name) if purge else None

    def status(self) -> ServiceStatus:
        return ServiceStatus(self.name, self.kind, self.backend, "", None, False, "dry run (no Docker engine)")
