"""The Mishards-compatible router as a lab service (kind "router"; backends local and docker).

``ensure()`` writes a Mishards-style env file (``<lab home>/routers/<name>/router.env``, mode 0600:
it holds the MySQL password) and runs ``python -m labkit.router --env-file ...`` on 19530 when
free, as the article's clients expect. Options:

- ``lab``: the Lab (MySQL URI, and the rw node from the state); or ``sqlalchemy_uri`` /
  ``meta_uri`` (mysql://..., e.g. a per-test database);
- ``woserver``: ``host:port`` of the rw node (default: the lab's running rw node);
- ``hosts``: read nodes as ``host:port`` strings or node names (static discovery, changeable at
  runtime with Cmd ``add_node``/``remove_node`` or the hosts file); without it the router
  follows the lab's running ``ro`` nodes (discovery ``labkit``);
- ``port``, ``max_retry``, ``max_workers``, ``search_timeout``, ``suspend_seconds``.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import engine as engines
from labkit.lab import images, procs
from labkit.lab.services import containers
from labkit.lab.services.base import Service, ServiceStatus, register
from labkit.lab.services.node import server_version
from labkit.lab.state import write_private
from labkit.milvus.defaults import DEFAULT_PORT

EXPECT = "labkit.router"


def _listening(host: str, port: int) -> bool:
    return procs.port_open(port, host)


def _pick_port(used: set[int]) -> int:
    """19530 when nothing listens there, else a free ephemeral port.

    The connect probe matters: gRPC listens dual-stack (``[::ffff:127.0.0.1]``), which an IPv4
    test bind alone does not always notice.
    """
    if DEFAULT_PORT not in used and not procs.port_open(DEFAULT_PORT) and procs.port_free(DEFAULT_PORT):
        return DEFAULT_PORT
    return procs.free_port(None, avoid=used)


@register
class LocalRouter(Service):
    kind = "router"
    backend = "local"

    # -- settings ----------------------------------------------------------------------------
    def _paths(self) -> dict[str, Path]:
        home = self.state.dir("routers", self.name)
        return {"home": home, "env": home / "router.env", "hosts": home / "hosts", "log": home / "router.log"}

    def _sqlalchemy_uri(self) -> str:
        o = self.options
        if o.get("sqlalchemy_uri"):
            return str(o["sqlalchemy_uri"])
        if o.get("meta_uri"):
            uri = str(o["meta_uri"])
            # the rw node's <storage.path>/db/meta.sqlite, as Mishards's example
            if uri.startswith("sqlite://"):
                storage = self._rw_record().get("storage_path")
                if not storage:
                    raise LabError("sqlite metadata: start the rw node first "
                                   "(its storage path holds meta.sqlite).")
                return f"sqlite:///{Path(storage) / 'db' / 'meta.sqlite'}"
            if not uri.startswith("mysql://"):
                raise LabError("The router needs MySQL or sqlite metadata; "
                               f"{uri.split(':', 1)[0]} is not supported.")
            return "mysql+pymysql://" + uri[len("mysql://"):] + "?charset=utf8mb4"
        lab = o.get("lab")
        if lab is None:
            raise LabError("The router needs a lab (for the MySQL metadata) or a sqlalchemy_uri.")
        return lab.sqlalchemy_uri()

    def _addr(self, entry: str) -> str:
        """A node name from the state, or ``host:port`` as given."""
        rec = self.state.get(entry)
        if rec and rec.get("kind") == "node" and rec.get("port"):
            return f"{rec.get('host', '127.0.0.1')}:{rec['port']}"
        if ":" not in entry:
            raise LabError(f"{entry!r} is neither a running node's name nor host:port.")
        return entry

    def _rw_record(self) -> dict[str, Any]:
        for rec in self.state.services().values():
            if rec.get("kind") == "node" and rec.get("role") == "rw" and procs.alive(rec.get("pid")):
                return rec
        return {}

    def _woserver(self) -> str:
        if self.options.get("woserver"):
            return self._addr(str(self.options["woserver"]))
        for rec in self.state.services().values():
            if rec.get("kind") == "node" and rec.get("role") == "rw" and procs.alive(rec.get("pid")):
                return f"{rec.get('host', '127.0.0.1')}:{rec['port']}"
        raise LabError("Start the rw node before the router (cluster.start_node(lab, 'rw', role='rw')).")

    def _env(self, port: int, hosts_file: Path) -> dict[str, str]:
        o = self.options
        env = {
            "WOSERVER": f"tcp://{self._woserver()}",
            "SQLALCHEMY_DATABASE_URI": self._sqlalchemy_uri(),
            "SERVER_PORT": str(port),
            "MAX_RETRY": str(o.get("max_retry", 3)),
            "MAX_WORKERS": str(o.get("max_workers", 50)),
            "SEARCH_TIMEOUT": str(o.get("search_timeout", 15)),
            "SUSPEND_SECONDS": str(o.get("suspend_seconds", 3)),
            "LABKIT_HOME": str(self.state.home),
        }
        if o.get("hosts") is not None:
            env["DISCOVERY_CLASS_NAME"] = "static"
            env["DISCOVERY_STATIC_HOSTS"] = ""
            env["DISCOVERY_STATIC_HOSTS_FILE"] = str(hosts_file)
        else:
            env["DISCOVERY_CLASS_NAME"] = "labkit"
        if o.get("bind"):  # multi-host use: 0.0.0.0 or this host's address (the lab default stays loopback)
            env["SERVER_BIND"] = str(o["bind"])
        if o.get("metrics") and not o.get("pushgateway"):  # the lab's Pushgateway, started if needed
            from labkit.lab.services.base import get_service

            gateway = get_service("pushgateway", "local", state=self.state).ensure()
            o["pushgateway"] = f"127.0.0.1:{gateway['port']}"
        if o.get("pushgateway"):  # host:port: the router pushes its counters there (labkit)
            env["PUSHGATEWAY"] = str(o["pushgateway"])
        if o.get("node_frames") is not None:  # False: every call to the nodes over gRPC, as Mishards
            env["LABKIT_NODE_FRAMES"] = "true" if o["node_frames"] else "false"
        return env

    def set_hosts(self, hosts: list[str]) -> list[str]:
        """Replace the read nodes of a static-discovery router (the router re-reads the file)."""
        addrs = [self._addr(h) for h in hosts]
        path = self._paths()["hosts"]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("\n".join(addrs) + "\n")
        os.replace(tmp, path)
        return addrs

    # -- lifecycle ---------------------------------------------------------------------------
    def _healthy(self, rec: dict[str, Any]) -> bool:
        return procs.alive(rec.get("pid"), EXPECT) and _listening(rec.get("host", "127.0.0.1"),
                                                                  int(rec.get("port", 0)))

    def ensure(self) -> dict[str, Any]:
        rec = self.record
        if rec and self._healthy(rec):
            if self.options.get("hosts") is not None:
                self.set_hosts(list(self.options["hosts"]))
            return rec
        if rec.get("pid"):
            procs.stop(rec["pid"], expect=EXPECT)
        p = self._paths()
        used = {int(r["port"]) for n, r in self.state.services().items() if n != self.name and r.get("port")}
        port = int(self.options.get("port") or _pick_port(used))
        if self.options.get("hosts") is not None:
            self.set_hosts(list(self.options["hosts"]))
        env = self._env(port, p["hosts"])
        write_private(p["env"], "# Mishards-style settings for labkit's router\n"
                      + "".join(f"{k}={v}\n" for k, v in env.items()))
        cmd = [sys.executable, "-m", "labkit.router", "--env-file", str(p["env"])]
        # the env file is the whole config: drop inherited Mishards variables that would override it
        clean = {k: "" for k in env if k in os.environ}
        pid = procs.spawn(cmd, log=p["log"], env=clean or None)
        bind = str(self.options.get("bind") or "127.0.0.1")
        host = "127.0.0.1" if bind in {"0.0.0.0", "::", ""} else bind
        try:
            procs.wait_until(lambda: _listening(host, port), timeout=30, what=f"Router {self.name}",
                             pid=pid, log=p["log"])
        except LabError:
            procs.stop(pid, expect=EXPECT)
            raise
        return self.state.record(self.name, kind=self.kind, backend=self.backend, host=host, port=port,
                                 pid=pid, env_file=str(p["env"]), log=str(p["log"]), expect=EXPECT,
                                 woserver=env["WOSERVER"], discovery=env["DISCOVERY_CLASS_NAME"])

    def stop(self, purge: bool = False) -> None:
        # purge deletes only this process's local files; segments on JuiceFS belong to the cluster
        self.stop_process(EXPECT, purge, self.state.home / "routers" / self.name)

    def status(self) -> ServiceStatus:
        rec = self.record
        host, port = rec.get("host", "127.0.0.1"), rec.get("port")
        alive = procs.alive(rec.get("pid"), EXPECT)
        version = server_version(host, int(port)) if alive and port else None
        if version:
            detail = f"Mishards role, rw {rec.get('woserver', '?')}, Milvus {version}"
        else:
            detail = "not answering (is the rw node up?)" if alive else "stopped"
        return ServiceStatus(self.name, self.kind, self.backend, f"{host}:{port}",
                             rec.get("pid") if alive else None, version is not None, detail)

    def url(self) -> str:
        rec = self.record
        return f"tcp://{rec.get('host', '127.0.0.1')}:{rec.get('port', DEFAULT_PORT)}"

    def commands(self) -> list[str]:
        return [f"{shlex.quote(sys.executable)} -m labkit.router --env-file {self._paths()['env']}"]


@register
class DockerRouter(LocalRouter):
    """The router in a container (host networking), configured by Mishards environment variables.

    Read nodes are static (``DISCOVERY_STATIC_HOSTS``: the ``hosts`` option, else the lab's ``ro``
    nodes at start time). The image is ``milvusdb/mishards`` or labkit's local ``labkit/lab``
    (``LABKIT_IMAGES``); the local one runs ``python -m labkit.router``.
    """

    backend = "docker"

    def _container(self) -> str:
        return containers.container_name(self.state.home, self.name)

    def _read_nodes(self) -> list[str]:
        if self.options.get("hosts") is not None:
            return [self._addr(h) for h in self.options["hosts"]]
        return [f"{r.get('host', '127.0.0.1')}:{r['port']}" for r in self.state.services().values()
                if r.get("kind") == "node" and r.get("role") == "ro" and not r.get("stopped")
                and r.get("port")]

    def _woserver(self) -> str:
        if self.options.get("woserver"):
            return self._addr(str(self.options["woserver"]))
        for rec in self.state.services().values():
            if rec.get("kind") == "node" and rec.get("role") == "rw" and not rec.get("stopped"):
                return f"{rec.get('host', '127.0.0.1')}:{rec['port']}"
        raise LabError("Start the rw node before the router (cluster.start_node(lab, 'rw', role='rw')).")

    def spec(self, port: int) -> containers.RunSpec:
        env = self._env(port, Path("/dev/null"))
        env.pop("LABKIT_HOME", None)
        env.pop("DISCOVERY_STATIC_HOSTS_FILE", None)
        env["DISCOVERY_CLASS_NAME"] = "static"
        env["DISCOVERY_STATIC_HOSTS"] = ",".join(self._read_nodes())
        secret = {"SQLALCHEMY_DATABASE_URI": env.pop("SQLALCHEMY_DATABASE_URI")}
        image = images.image_for("router")
        command = ["python", "-m", "labkit.router"] if image in images.LOCAL.values() else None
        return containers.RunSpec(image=image, command=command, env=env, secret_env=secret, health_port=port)

    def _healthy(self, rec: dict[str, Any]) -> bool:
        port = int(rec.get("port") or 0)
        return bool(port) and server_version("127.0.0.1", port) is not None

    def ensure(self) -> dict[str, Any]:
        rec = self.record
        client = engines.ensure().client()
        box = containers.get(client, self._container())
        if box is not None and containers.state(box)["running"] and self._healthy(rec):
            return rec
        containers.remove(client, self._container())
        used = {int(r["port"]) for n, r in self.state.services().items() if n != self.name and r.get("port")}
        port = int(self.options.get("port") or rec.get("port") or _pick_port(used))
        if not self.options.get("port") and rec.get("port") and not procs.port_free(port):
            port = _pick_port(used)
        spec = self.spec(port)
        images.require(spec.image)
        box = containers.run(client, spec, self._container(), self.state.home, self.name)
        rec = self.state.record(self.name, kind=self.kind, backend=self.backend, host="127.0.0.1", port=port,
                                pid=containers.state(box)["pid"], container=self._container(),
                                container_id=box.id, image=spec.image, woserver=spec.env["WOSERVER"],
                                discovery="static", read_nodes=spec.env["DISCOVERY_STATIC_HOSTS"],
                                stopped=False)
        try:
            # port first: pymilvus logs every failed attempt, so it is asked once the router listens
            containers.wait_ready(box, lambda: _listening("127.0.0.1", port), 60,
                                  f"Router container {self._container()}")
            containers.wait_ready(box, lambda: server_version("127.0.0.1", port, timeout=10) is not None, 30,
                                  f"Router container {self._container()} (answering)", interval=1)
        except LabError:
            containers.remove(client, self._container())
            raise
        return rec

    def stop(self, purge: bool = False) -> None:
        containers.stop_service(self.state, self.name, self._container(), purge)

    def status(self) -> ServiceStatus:
        rec = self.record
        box, st = containers.find(self._container())
        version = server_version("127.0.0.1", int(rec["port"])) if st["running"] and rec.get("port") else None
        detail = ((f"Mishards role, rw {rec.get('woserver', '?')}, ro {rec.get('read_nodes') or '-'}, "
                   f"container {self._container()}, {rec.get('image', '?')}")
                  if box is not None else "no container")
        return ServiceStatus(self.name, self.kind, self.backend, f"127.0.0.1:{rec.get('port')}", st["pid"],
                             version is not None, detail)

    def commands(self) -> list[str]:
        port = int(self.record.get("port") or DEFAULT_PORT)
        return [self.state.mask(containers.docker_run_line(self.spec(port), self._container()))]
