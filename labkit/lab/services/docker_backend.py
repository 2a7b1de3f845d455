"""The ``docker`` backend: the same services from real images (mysql:5.7 as in the original tutorial).

Passwords never go on the ``docker run`` command line: they are passed as ``-e NAME``
(the value comes from the environment of the docker CLI) or inside a mounted
config file. Without a reachable engine the commands can still be rendered
(``commands()``, ``labkit up --backend docker --dry-run``) next to the article's.
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services import binaries
from labkit.lab.services.base import ServiceStatus, register
from labkit.lab.services.mysql import ARTICLE_PORT, DATABASE, USER, MySQLBase
from labkit.lab.services.objectstore import BUCKET, ObjectStoreBase
from labkit.lab.services.ports import choose_port
from labkit.lab.services.redis import DEFAULT_PORT, RedisBase, redis_conf

IMAGES = {"mysql": "mysql:5.7", "redis": "redis:7.0", "s3": "motoserver/moto:latest"}


def engine_available() -> tuple[bool, str]:
    """Whether a Docker engine answers (the CLI alone is not enough)."""
    docker = binaries.which(["docker"])
    if not docker:
        return False, "the docker CLI is not installed"
    try:
        proc = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                              text=True, timeout=10, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, "the Docker engine did not answer within 10 s"
    if proc.returncode != 0:
        return False, "no Docker engine is reachable (is the daemon running?)"
    return True, f"Docker engine {proc.stdout.strip()}"


def render(argv: list[str], env_names: list[str]) -> str:
    """A shell line for ``argv``; secret env values shown as ****."""
    prefix = " ".join(f"{name}=****" for name in env_names)
    return (prefix + " " if prefix else "") + shlex.join(argv)


class DockerMixin:
    """Container lifecycle shared by the docker services. Needs ``kind``, ``state``, ``name``."""

    container_port: int
    default_port: int | None

    def container(self) -> str:
        tag = hashlib.sha256(str(self.state.home).encode()).hexdigest()[:8]  # type: ignore[attr-defined]
        return f"labkit-{tag}-{self.name}"  # type: ignore[attr-defined]

    @property
    def data_dir(self) -> Path:
        return self.state.home / "docker" / self.name  # type: ignore[attr-defined]

    def port(self) -> int:
        return choose_port(self.kind, self.options.get("port"), self.record.get("port"),  # type: ignore[attr-defined]
                           self.default_port)

    def run_argv(self, port: int) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def commands(self) -> list[str]:
        argv, env = self.run_argv(self.record.get("port") or self.port())  # type: ignore[attr-defined]
        return [render(argv, sorted(env))]

    def _docker(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300):
        import os

        return subprocess.run([binaries.require(["docker"], "The docker backend"), *args], capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, **(env or {})},
                              stdin=subprocess.DEVNULL)

    def running(self) -> bool:
        if not engine_available()[0]:
            return False
        proc = self._docker("inspect", "-f", "{{.State.Running}}", self.container(), timeout=30)
        return proc.returncode == 0 and proc.stdout.strip() == "true"

    def preflight(self) -> None:
        ok, why = engine_available()
        if not ok:
            raise LabError(f"The docker backend cannot start {self.kind}: {why}; "  # type: ignore[attr-defined]
                           "`labkit up --backend docker --dry-run` prints the commands it would run.")

    def before_start(self) -> None:
        """Files the container mounts (written only for a real start, never for a dry run)."""

    def ensure(self) -> dict[str, Any]:
        self.preflight()
        if self.running() and self.healthy():  # type: ignore[attr-defined]
            return self.record  # type: ignore[attr-defined]
        self._docker("rm", "-f", self.container(), timeout=60)
        port = self.port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.before_start()
        argv, env = self.run_argv(port)
        proc = self._docker(*argv[1:], env=env)
        if proc.returncode != 0:
            raise LabError(f"`docker run` for {self.kind} failed: "  # type: ignore[attr-defined]
                           f"{self.state.mask(proc.stderr.strip()[-300:])}")  # type: ignore[attr-defined]
        rec = self.state.record(self.name, kind=self.kind, backend="docker", pid=None,  # type: ignore[attr-defined]
                                host="127.0.0.1", port=port, container=self.container(), stopped=False)
        procs.wait_until(self.healthy, 120, f"{self.kind} container {self.container()}")  # type: ignore[attr-defined]
        self.after_start()
        return rec

    def after_start(self) -> None:
        pass

    def stop(self, purge: bool = False) -> None:
        if engine_available()[0]:
            self._docker("rm", "-f", self.container(), timeout=120)
        if purge:
            self.state.forget(self.name)  # type: ignore[attr-defined]
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)
        else:
            self.state.record(self.name, pid=None, stopped=True)  # type: ignore[attr-defined]

    def status(self) -> ServiceStatus:
        rec = self.record  # type: ignore[attr-defined]
        running = self.running()
        ok = running and self.healthy()  # type: ignore[attr-defined]
        detail = f"container {self.container()}" + ("" if running else " not running")
        return ServiceStatus(self.name, self.kind, "docker",  # type: ignore[attr-defined]
                             f"127.0.0.1:{rec.get('port', '?')}", None, ok, detail)


@register
class DockerMySQL(DockerMixin, MySQLBase):
    backend = "docker"
    container_port = 3306
    default_port = ARTICLE_PORT

    def run_argv(self, port: int) -> tuple[list[str], dict[str, str]]:
        env = {"MYSQL_ROOT_PASSWORD": self.root_password(), "MYSQL_PASSWORD": self.password()}
        argv = ["docker", "run", "-d", "--name", self.container(), "-p", f"127.0.0.1:{port}:3306",
                "-e", "MYSQL_ROOT_PASSWORD", "-e", "MYSQL_PASSWORD",
                "-e", f"MYSQL_DATABASE={DATABASE}", "-e", f"MYSQL_USER={USER}",
                "-v", f"{self.data_dir}:/var/lib/mysql", IMAGES["mysql"],
                "--innodb-buffer-pool-size=64M", "--performance-schema=OFF",
                "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"]
        return argv, env

    def _admin(self):
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=int(self.record["port"]), user="root",
                               password=self.root_password(), autocommit=True, connect_timeout=5)


@register
class DockerRedis(DockerMixin, RedisBase):
    backend = "docker"
    container_port = 6379
    default_port = DEFAULT_PORT

    @property
    def conf(self) -> Path:
        return self.state.home / "docker" / "redis.conf"

    def before_start(self) -> None:
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        # inside the container Redis listens on all interfaces; the host side is published on 127.0.0.1 only
        self.conf.write_text(redis_conf(6379, self.password(), "/data", {"bind": "0.0.0.0", "protected-mode": "no"}))
        self.conf.chmod(0o600)

    def run_argv(self, port: int) -> tuple[list[str], dict[str, str]]:
        conf = self.conf
        argv = ["docker", "run", "-d", "--name", self.container(), "-p", f"127.0.0.1:{port}:6379",
                "-v", f"{conf}:/usr/local/etc/redis/redis.conf:ro", "-v", f"{self.data_dir}:/data",
                IMAGES["redis"], "redis-server", "/usr/local/etc/redis/redis.conf"]
        return argv, {}


@register
class DockerObjectStore(DockerMixin, ObjectStoreBase):
    """``file`` stays a host directory (JuiceFS runs on the host); ``s3`` runs moto's image."""

    backend = "docker"
    container_port = 5000
    default_port = None

    def run_argv(self, port: int) -> tuple[list[str], dict[str, str]]:
        return (["docker", "run", "-d", "--name", self.container(), "-p", f"127.0.0.1:{port}:5000",
                 IMAGES["s3"]], {})

    def commands(self) -> list[str]:
        if self.store == "file":
            return [f"mkdir -p {self.state.home / 'objects'}/"]
        return super().commands()

    def preflight(self) -> None:
        if self.store == "s3":
            super().preflight()

    def ensure(self) -> dict[str, Any]:
        if self.store == "file":
            base = self.state.home / "objects"
            base.mkdir(parents=True, exist_ok=True)
            return self.state.record(self.name, kind=self.kind, backend="docker", store="file", storage="file",
                                     bucket=f"{base}/", pid=None, host="", port=None, stopped=False)
        rec = super().ensure()
        return self.state.record(self.name, store="s3", storage="s3",
                                 bucket=f"http://127.0.0.1:{rec['port']}/{BUCKET}")

    def healthy(self) -> bool:
        rec = self.record
        if rec.get("storage") == "file":
            return (self.state.home / "objects").is_dir()
        return bool(rec.get("port")) and procs.port_open(int(rec["port"]))
