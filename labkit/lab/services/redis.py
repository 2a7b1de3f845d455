"""Redis for JuiceFS metadata: AOF on, no eviction, a generated password, 127.0.0.1 only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services import binaries
from labkit.lab.services.base import Service, ServiceStatus, register
from labkit.lab.services.ports import start_on_free_port
from labkit.lab.state import write_private

DEFAULT_PORT = 6379
DB = 1  # the article's remote form uses /1


def redis_conf(port: int, password: str, datadir: Path | str, extra: dict[str, str] | None = None) -> str:
    """A redis.conf with the settings JuiceFS documents for its metadata engine."""
    lines = {
        "bind": "127.0.0.1",
        "protected-mode": "yes",
        "port": str(port),
        "requirepass": password,
        "appendonly": "yes",
        "appendfsync": "everysec",
        "maxmemory-policy": "noeviction",
        "dir": str(datadir),
        "daemonize": "no",
        "save": "3600 1 300 100",
    }
    lines.update(extra or {})
    return "".join(f"{k} {v}\n" for k, v in lines.items())


def ping(port: int, password: str, host: str = "127.0.0.1") -> bool:
    import redis

    try:
        return bool(redis.Redis(host=host, port=port, password=password, socket_timeout=2,
                                socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


class RedisBase(Service):
    kind = "redis"

    def password(self) -> str:
        return self.state.secret("redis_password")

    def url(self) -> str:
        rec = self.record
        return f"redis://:{self.password()}@{rec.get('host', '127.0.0.1')}:{rec.get('port')}/{DB}"

    def url_without_password(self) -> str:
        rec = self.record
        return f"redis://{rec.get('host', '127.0.0.1')}:{rec.get('port')}/{DB}"

    def healthy(self) -> bool:
        port = self.record.get("port")
        return bool(port) and ping(int(port), self.password())


@register
class LocalRedis(RedisBase):
    backend = "local"

    @property
    def base(self) -> Path:
        return self.state.home / "redis"

    @property
    def conf(self) -> Path:
        return self.base / "redis.conf"

    @property
    def log(self) -> Path:
        return self.base / "redis.log"

    def preflight(self) -> None:
        binaries.require(["redis-server"], "Redis")

    def commands(self) -> list[str]:
        try:
            return [f"{binaries.require(['redis-server'], 'Redis')} {self.conf}"]
        except LabError:
            return []

    @staticmethod
    def _expect(port: Any) -> str:
        # redis-server rewrites its process title to "redis-server 127.0.0.1:PORT"
        return f"redis-server 127.0.0.1:{port}"

    def ensure(self) -> dict[str, Any]:
        rec = self.record
        expect = self._expect(rec.get("port"))
        if procs.alive(rec.get("pid"), expect):
            try:
                procs.wait_until(self.healthy, 10, "Redis", pid=rec["pid"])
                return self.record
            except LabError:
                procs.stop(rec["pid"], expect=expect)
        self.preflight()
        return start_on_free_port("Redis", self.options.get("port"), rec.get("port"), DEFAULT_PORT,
                                  self._start)

    def _start(self, port: int) -> dict[str, Any]:
        data = self.base / "data"
        data.mkdir(parents=True, exist_ok=True)
        fd_conf = redis_conf(port, self.password(), data, {"logfile": str(self.log),
                                                            "pidfile": str(self.base / "redis.pid")})
        write_private(self.conf, fd_conf)  # holds the password
        pid = procs.spawn([binaries.require(["redis-server"], "Redis"), str(self.conf)],
                          self.base / "redis.out")
        rec = self.state.record(self.name, kind=self.kind, backend=self.backend, stopped=False, pid=pid,
                                host="127.0.0.1", port=port, expect=self._expect(port), log=str(self.log))
        procs.wait_until(self.healthy, 30, "Redis", pid=pid, log=self.log)
        return rec

    def stop(self, purge: bool = False) -> None:
        self.stop_process(self._expect(self.record.get("port")), purge, self.base)

    def status(self) -> ServiceStatus:
        rec = self.record
        running = procs.alive(rec.get("pid"), self._expect(rec.get("port")))
        healthy = running and self.healthy()
        if healthy or running:
            detail = "PONG, appendonly yes" if healthy else "process running, no PONG"
        else:
            detail = "stopped (data kept)" if rec.get("stopped") else "not running"
        return ServiceStatus(self.name, self.kind, self.backend, f"127.0.0.1:{rec.get('port', '?')}",
                             rec.get("pid") if running else None, healthy, detail)
