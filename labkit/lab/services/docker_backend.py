"""The ``docker`` backend of the storage services: MySQL, Redis and the S3 emulator in containers.

Images come from ``labkit.lab.images`` (the real set, mysql:5.7 as in the article, or the local
set built here). Containers use host networking, so each server binds 127.0.0.1 on the lab's
chosen port; data lives in bind-mounted folders under ``<lab home>/docker/<service>``.
Passwords travel in the container environment, never on a command line; ``commands()`` (the dry
run) shows them as ``-e NAME``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import engine as engines
from labkit.lab import images, procs
from labkit.lab.services import containers
from labkit.lab.services.base import ServiceStatus, register
from labkit.lab.services.containers import RunSpec, render
from labkit.lab.services.mysql import ARTICLE_PORT, DATABASE, USER, MySQLBase
from labkit.lab.services.objectstore import BUCKET, ObjectStoreBase
from labkit.lab.services.ports import choose_port, start_on_free_port
from labkit.lab.services.redis import DEFAULT_PORT, RedisBase, redis_conf

S3_IMAGE = "motoserver/moto:latest"

__all__ = ["DockerMixin", "engine_available", "render"]


def engine_available() -> tuple[bool, str]:
    """Whether the docker backend can run (an engine answers, or labkit may start its own)."""
    return engines.available()


class DockerMixin:
    """Container lifecycle shared by the docker services. Needs ``kind``, ``state``, ``name``, ``healthy``."""

    default_port: int | None
    ready_timeout: float = 120.0

    def container(self) -> str:
        return containers.container_name(self.state.home, self.name)  # type: ignore[attr-defined]

    @property
    def data_dir(self) -> Path:
        return self.state.home / "docker" / self.name  # type: ignore[attr-defined]

    def port(self) -> int:
        return choose_port(self.kind, self.options.get("port"), self.record.get("port"),  # type: ignore[attr-defined]
                           self.default_port)

    def spec(self, port: int) -> RunSpec:
        raise NotImplementedError

    def commands(self) -> list[str]:
        return [containers.docker_run_line(self.spec(self.record.get("port") or self.port()),  # type: ignore[attr-defined]
                                           self.container())]

    def preflight(self) -> None:
        ok, why = engines.available()
        if not ok:
            raise LabError(f"The docker backend cannot start {self.kind}: {why}; "  # type: ignore[attr-defined]
                           "`labkit up --backend docker --dry-run` prints the commands it would run.")

    def before_start(self, port: int) -> None:
        """Files the container mounts (written only for a real start, never for a dry run)."""

    def _box(self):
        return containers.lookup(self.container())

    def running(self) -> bool:
        box = self._box()
        return box is not None and containers.state(box)["running"]

    def ensure(self) -> dict[str, Any]:
        self.preflight()
        if self.running() and self.healthy():  # type: ignore[attr-defined]
            return self.record  # type: ignore[attr-defined]
        rec = self.record  # type: ignore[attr-defined]
        rec = start_on_free_port(f"{self.kind} container", self.options.get("port"),  # type: ignore[attr-defined]
                                 rec.get("port"), self.default_port, self._start)
        self.after_start()
        return rec

    def _start(self, port: int) -> dict[str, Any]:
        client = engines.ensure().client()
        containers.remove(client, self.container())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.before_start(port)
        spec = self.spec(port)
        images.require(spec.image)
        box = containers.run(client, spec, self.container(), self.state.home, self.name)  # type: ignore[attr-defined]
        rec = self.state.record(self.name, kind=self.kind, backend="docker",  # type: ignore[attr-defined]
                                pid=containers.state(box)["pid"], host="127.0.0.1", port=port,
                                container=self.container(), container_id=box.id, image=spec.image,
                                stopped=False)
        try:
            containers.wait_ready(box, self.healthy, self.ready_timeout,  # type: ignore[attr-defined]
                                  f"The {self.kind} container {self.container()}")  # type: ignore[attr-defined]
        except LabError:
            containers.remove(client, self.container())
            raise
        return rec

    def after_start(self) -> None:
        pass

    def stop(self, purge: bool = False) -> None:
        eng = engines.find()
        if eng is not None:
            containers.remove(eng.client(), self.container())
        if purge:
            self.state.forget(self.name)  # type: ignore[attr-defined]
            if self.data_dir.exists():
                shutil.rmtree(self.data_dir)
        elif self.record:  # type: ignore[attr-defined]
            self.state.record(self.name, pid=None, stopped=True)  # type: ignore[attr-defined]

    def status(self) -> ServiceStatus:
        rec = self.record  # type: ignore[attr-defined]
        box = self._box()
        st = containers.state(box) if box is not None else {"running": False}
        ok = st["running"] and self.healthy()  # type: ignore[attr-defined]
        if box is None:
            detail = "no container" + (" (stopped, data kept)" if rec.get("stopped") else "")
        else:
            detail = (f"container {self.container()}, {rec.get('image', '?')}, docker health {st['health']}"
                      + ("" if st["running"] else f", exited {st['exit_code']}"))
        return ServiceStatus(self.name, self.kind, "docker",  # type: ignore[attr-defined]
                             f"127.0.0.1:{rec.get('port', '?')}", st.get("pid") if st["running"] else None,
                             ok, detail)


@register
class DockerMySQL(DockerMixin, MySQLBase):
    backend = "docker"
    default_port = ARTICLE_PORT

    def spec(self, port: int) -> RunSpec:
        return RunSpec(
            image=images.image_for("mysql"),
            command=[f"--port={port}", "--bind-address=127.0.0.1", "--innodb-buffer-pool-size=64M",
                     "--performance-schema=OFF", "--character-set-server=utf8mb4",
                     "--collation-server=utf8mb4_general_ci", "--max-connections=200"],
            env={"MYSQL_DATABASE": DATABASE, "MYSQL_USER": USER},
            secret_env={"MYSQL_ROOT_PASSWORD": self.root_password(), "MYSQL_PASSWORD": self.password()},
            binds={str(self.data_dir): "/var/lib/mysql"}, health_port=port)

    def _admin(self):
        import pymysql

        return pymysql.connect(host="127.0.0.1", port=int(self.record["port"]), user="root",
                               password=self.root_password(), autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> dict[str, Any]:
        # mysql:5.7 makes the user for '%' only; GRANT to 'milvus'@'localhost' needs it to exist
        conn = self._admin()
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE USER IF NOT EXISTS %s@'localhost' IDENTIFIED BY %s",
                            (USER, self.password()))
        finally:
            conn.close()
        return super().create_database(name)


@register
class DockerRedis(DockerMixin, RedisBase):
    backend = "docker"
    default_port = DEFAULT_PORT

    @property
    def conf(self) -> Path:
        return self.state.home / "docker" / "redis.conf"

    def before_start(self, port: int) -> None:
        self.conf.parent.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(redis_conf(port, self.password(), "/data"))
        self.conf.chmod(0o600)

    def spec(self, port: int) -> RunSpec:
        return RunSpec(image=images.image_for("redis"),
                       command=["redis-server", "/usr/local/etc/redis/redis.conf"],
                       binds={str(self.conf): "/usr/local/etc/redis/redis.conf:ro",
                              str(self.data_dir): "/data"},
                       health_port=port)


@register
class DockerObjectStore(DockerMixin, ObjectStoreBase):
    """``file`` stays a host directory (JuiceFS runs on the host); ``s3`` runs moto's image."""

    backend = "docker"
    default_port = None

    def spec(self, port: int) -> RunSpec:
        return RunSpec(image=S3_IMAGE, command=["-H", "127.0.0.1", "-p", str(port)], health_port=port)

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
            return self.state.record(self.name, kind=self.kind, backend="docker", store="file",
                                     storage="file", bucket=f"{base}/", pid=None, host="", port=None,
                                     stopped=False)
        rec = super().ensure()
        return self.state.record(self.name, store="s3", storage="s3",
                                 bucket=f"http://127.0.0.1:{rec['port']}/{BUCKET}")

    def status(self) -> ServiceStatus:
        if self.record.get("storage") == "file":
            ok = self.healthy()
            return ServiceStatus(self.name, self.kind, "docker", f"{self.state.home / 'objects'}/", None, ok,
                                 "file store (host directory)")
        return super().status()

    def healthy(self) -> bool:
        rec = self.record
        if rec.get("storage") == "file":
            return (self.state.home / "objects").is_dir()
        return bool(rec.get("port")) and procs.port_open(int(rec["port"]))
