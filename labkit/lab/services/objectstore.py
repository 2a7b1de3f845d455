"""Where JuiceFS keeps its data blocks: a local directory (``--storage file``) or an S3 emulator.

The S3 option runs moto's server on 127.0.0.1 so the notebooks can show chunks
landing in object storage as in the article. The article's Azure Blob form is
only rendered (``azure_commands``), never run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services import binaries
from labkit.lab.services.base import Service, ServiceStatus, register
from labkit.lab.services.ports import choose_port

STORES = ("file", "s3")
BUCKET = "milvus-jfs"
S3_KEYS = ("testing", "testing")  # moto accepts any key; these are not secrets
# JuiceFS asks us-east-1 buckets for LocationConstraint=us-east-1, which moto rejects
S3_REGION = "us-west-2"


def azure_commands(meta_url_masked: str, volume: str = "test", container: str = "<container>") -> list[str]:
    """The article's Azure Blob commands, as a cloud user would type them (never run here)."""
    return [
        "export AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=https;AccountName=<account>;"
        "AccountKey=****;EndpointSuffix=core.windows.net'",
        f"juicefs format --storage wasb --bucket https://{container} {meta_url_masked} {volume}",
        f"juicefs mount -d {meta_url_masked} ~/jfs",
    ]


class ObjectStoreBase(Service):
    kind = "objectstore"

    @property
    def store(self) -> str:
        store = self.options.get("store") or self.record.get("store") or "file"
        if store not in STORES:
            raise LabError(f"Unknown object store {store!r}; choose one of: {', '.join(STORES)}.")
        return store

    def format_args(self) -> list[str]:
        """``juicefs format`` options that point at this store."""
        rec = self.record
        args = ["--storage", rec["storage"], "--bucket", rec["bucket"]]
        if rec["storage"] == "s3":
            args += ["--access-key", S3_KEYS[0], "--secret-key", S3_KEYS[1]]
        return args

    def env(self) -> dict[str, str]:
        return {"AWS_REGION": S3_REGION} if self.record.get("storage") == "s3" else {}

    def url(self) -> str:
        return self.record.get("bucket", "")


@register
class LocalObjectStore(ObjectStoreBase):
    backend = "local"

    @property
    def base(self) -> Path:
        return self.state.home / "objects"

    def preflight(self) -> None:
        if self.store == "s3":
            binaries.require(["moto_server"], "The S3 object store")

    def _expect(self, port: Any) -> str:
        return f"moto_server -H 127.0.0.1 -p {port}"

    def _cmd(self, port: int) -> list[str]:
        return [binaries.require(["moto_server"], "The S3 object store"), "-H", "127.0.0.1", "-p", str(port)]

    def commands(self) -> list[str]:
        if self.store == "file":
            return [f"mkdir -p {self.base}/"]
        try:
            return [" ".join(self._cmd(self.record.get("port") or 5000))]
        except LabError:
            return []

    def ensure(self) -> dict[str, Any]:
        store, rec = self.store, self.record
        if store == "file":
            self.base.mkdir(parents=True, exist_ok=True)
            return self.state.record(self.name, kind=self.kind, backend=self.backend, stopped=False, store="file",
                                     storage="file", bucket=f"{self.base}/", pid=None, host="", port=None)
        if procs.alive(rec.get("pid"), self._expect(rec.get("port"))) and self.healthy():
            return rec
        procs.stop(rec.get("pid"), expect=self._expect(rec.get("port")))
        self.preflight()
        port = choose_port("the S3 object store", self.options.get("port"), rec.get("port"), None)
        self.base.mkdir(parents=True, exist_ok=True)
        log = self.base / "moto.log"
        pid = procs.spawn(self._cmd(port), log)
        rec = self.state.record(self.name, kind=self.kind, backend=self.backend, stopped=False, store="s3", storage="s3",
                                bucket=f"http://127.0.0.1:{port}/{BUCKET}", pid=pid, host="127.0.0.1",
                                port=port, expect=self._expect(port), log=str(log))
        procs.wait_until(self.healthy, 30, "The S3 emulator (moto_server)", pid=pid, log=log)
        return rec

    def healthy(self) -> bool:
        rec = self.record
        if rec.get("storage") == "file":
            return self.base.is_dir()
        return bool(rec.get("port")) and procs.port_open(int(rec["port"]))

    def stop(self, purge: bool = False) -> None:
        self.stop_process(self._expect(self.record.get("port")), purge, self.base)

    def status(self) -> ServiceStatus:
        rec = self.record
        if rec.get("storage", "file") == "file":
            if rec.get("stopped"):
                return ServiceStatus(self.name, self.kind, self.backend, f"file://{self.base}/", None, False,
                                     "stopped (objects kept on disk)")
            ok = self.base.is_dir()
            return ServiceStatus(self.name, self.kind, self.backend, f"file://{self.base}/", None, ok,
                                 "local directory (--storage file)" if ok else "directory missing")
        running = procs.alive(rec.get("pid"), self._expect(rec.get("port")))
        ok = running and self.healthy()
        detail = "moto S3 emulator (objects kept in memory)" if ok else (
            "stopped (moto kept objects in memory only)" if rec.get("stopped") else "not running")
        return ServiceStatus(self.name, self.kind, self.backend, f"127.0.0.1:{rec.get('port')}",
                             rec.get("pid") if running else None, ok, detail)
