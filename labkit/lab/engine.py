"""The Docker engine labkit talks to: one that already answers, or a dockerd of its own.

Order: ``DOCKER_HOST`` / the default socket; then labkit's managed engine's socket; then, when
we are root and ``dockerd`` is installed, labkit starts that managed engine:

    dockerd --data-root D/data --exec-root D/exec -H unix://D/docker.sock --pidfile D/docker.pid
            --bridge=none --iptables=false --ip-masq=false

with ``D`` = ``$LABKIT_DOCKER_HOME``, else ``/var/cache/labkit/docker`` (root) or
``~/.cache/labkit/docker``: one folder per machine, so images built once stay cached. Containers
use host networking only (``--bridge=none``): every port stays on 127.0.0.1. The managed engine is
stopped by its PID (``stop_managed``); an engine labkit did not start is never stopped.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services import binaries

EXPECT = "dockerd"


def docker_home() -> Path:
    """The per-machine folder of labkit's managed engine (images cached there between runs)."""
    env = os.environ.get("LABKIT_DOCKER_HOME")
    if env:
        return Path(env).expanduser().resolve()
    if os.geteuid() == 0:
        return Path("/var/cache/labkit/docker")
    return Path.home() / ".cache" / "labkit" / "docker"


def managed_socket() -> Path:
    return docker_home() / "docker.sock"


def managed_url() -> str:
    return f"unix://{managed_socket()}"


@dataclass
class Engine:
    """A Docker engine that answered: its URL, server version, and whether labkit started it."""

    url: str
    version: str
    managed: bool
    pid: int | None = None

    def client(self, timeout: int = 300):
        import docker

        return docker.DockerClient(base_url=self.url, timeout=timeout)

    def env(self) -> dict[str, str]:
        """Environment for the docker / docker-compose CLIs to reach this engine."""
        return {"DOCKER_HOST": self.url}


def _candidates() -> list[str]:
    urls = []
    if os.environ.get("DOCKER_HOST"):
        urls.append(os.environ["DOCKER_HOST"])
    else:
        urls.append("unix:///var/run/docker.sock")
    urls.append(managed_url())
    return list(dict.fromkeys(urls))


def _probe(url: str) -> str | None:
    """The engine's server version at ``url``, or None if nothing answers there."""
    if url.startswith("unix://") and not Path(url[len("unix://"):]).exists():
        return None
    try:
        import docker

        client = docker.DockerClient(base_url=url, timeout=5)
        try:
            return str(client.version().get("Version", "?"))
        finally:
            client.close()
    except Exception:  # the SDK raises many types for "nothing answers"
        return None


def _managed_pid() -> int | None:
    try:
        pid = int((docker_home() / "docker.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if procs.alive(pid, EXPECT) else None


def find() -> Engine | None:
    """An engine that answers now (never starts one)."""
    for url in _candidates():
        version = _probe(url)
        if version:
            managed = url == managed_url()
            return Engine(url, version, managed, _managed_pid() if managed else None)
    return None


def can_start() -> tuple[bool, str]:
    """Whether labkit could start its own dockerd here, and why not."""
    if os.geteuid() != 0:
        return False, "no Docker engine answers and starting one needs root"
    if not binaries.which(["dockerd"]):
        return False, "no Docker engine answers and dockerd is not installed (apt-get install docker.io)"
    return True, "dockerd can be started"


def available() -> tuple[bool, str]:
    """Whether the docker backend can run here (an engine answers, or labkit can start one)."""
    engine = find()
    if engine:
        return True, f"Docker engine {engine.version}" + (" (labkit's own dockerd)" if engine.managed else "")
    return can_start()


def ensure(timeout: float = 60.0) -> Engine:
    """An answering engine; starts labkit's managed dockerd when none answers and we may."""
    engine = find()
    if engine:
        return engine
    ok, why = can_start()
    if not ok:
        raise LabError(f"The docker backend cannot run: {why}.")
    home = docker_home()
    for sub in ("data", "exec"):
        (home / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    sock, pidfile, log = managed_socket(), home / "docker.pid", home / "dockerd.log"
    old = _managed_pid()
    if old:
        procs.stop(old, timeout=20, expect=EXPECT)  # alive but not answering
    for stale in (sock, pidfile):
        stale.unlink(missing_ok=True)
    cmd = [binaries.require(["dockerd"], "The docker backend"), "--data-root", str(home / "data"),
           "--exec-root", str(home / "exec"), "-H", f"unix://{sock}", "--pidfile", str(pidfile),
           "--bridge=none", "--iptables=false", "--ip-masq=false"]
    pid = procs.spawn(cmd, log)
    procs.wait_until(lambda: _probe(managed_url()) is not None, timeout, "dockerd", pid=pid, log=log,
                     interval=0.3)
    (home / "engine.json").write_text(json.dumps({"pid": pid, "started_at": time.time()}))
    return Engine(managed_url(), _probe(managed_url()) or "?", True, pid)


def stop_managed(timeout: float = 30.0) -> bool:
    """Stop labkit's own dockerd by its PID (True if it was running). Its images stay cached."""
    pid = _managed_pid()
    stopped = procs.stop(pid, timeout=timeout, expect=EXPECT) if pid else False
    (docker_home() / "engine.json").unlink(missing_ok=True)
    return stopped


def status() -> dict[str, Any]:
    """What `labkit status` shows about the engine."""
    engine = find()
    if engine is None:
        ok, why = can_start()
        return {"running": False, "detail": why if not ok else "not running (labkit starts it on demand)"}
    return {"running": True, "url": engine.url, "version": engine.version, "managed": engine.managed,
            "pid": engine.pid}
