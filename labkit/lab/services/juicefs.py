"""JuiceFS: the formatted volume (Redis metadata + object store) and one client mount per node.

Each node gets its own ``juicefs mount -d`` (own mountpoint, ``--cache-dir``,
``--metrics`` port, log), as separate hosts would. Never ``--writeback``: readers
would see metadata before the data is uploaded (EIO). The Redis password goes
through ``META_PASSWORD`` so it is not on any command line.

Without FUSE (Binder, or ``LABKIT_NO_FUSE=1``) ``mount`` hands out one plain shared
directory instead, and every status line says so.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.services import binaries
from labkit.lab.services.base import Service, ServiceStatus, get_service, register
from labkit.lab.services.binaries import fuse_available
from labkit.lab.services.ports import choose_port

VOLUME = "milvus-jfs"
NO_FUSE_DETAIL = "NO FUSE: plain shared local directory, not JuiceFS"


def _unescape(field: str) -> str:
    # /proc/mounts escapes space, tab, newline and backslash as octal
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounts_under(prefix: Path | str, table: str | None = None) -> list[tuple[str, str]]:
    """(mountpoint, fstype) of every mount at or below ``prefix`` (``table``: /proc/mounts text)."""
    prefix = str(prefix).rstrip("/")
    found = []
    text = Path("/proc/mounts").read_text() if table is None else table
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            mp = _unescape(parts[1])
            if mp == prefix or mp.startswith(prefix + "/"):
                found.append((mp, parts[2]))
    return found


def mount_fstype(mountpoint: Path | str) -> str | None:
    for mp, fstype in mounts_under(mountpoint):
        if mp == str(mountpoint).rstrip("/"):
            return fstype
    return None


def is_stale(mountpoint: Path | str) -> bool:
    """A mount whose FUSE process died: listed in /proc/mounts but ENOTCONN on access."""
    if mount_fstype(mountpoint) is None:
        return False
    try:
        # statfs always reaches the FUSE daemon; stat() may be answered from the kernel's
        # attribute cache (1 s) and look healthy right after the client died
        os.statvfs(mountpoint)
        return False
    except OSError as exc:
        return exc.errno in (errno.ENOTCONN, errno.EIO)


def client_pids(mountpoint: Path | str) -> list[int]:
    """PIDs of ``juicefs mount`` processes (supervisor and client) serving ``mountpoint``.

    juicefs rewrites its process title, which can cut off the tail of a long command
    line, so a lab mount is also recognised by its own ``--cache-dir`` (placed first).
    """
    mountpoint = str(mountpoint)
    cache_opt = f" --cache-dir {Path(mountpoint).parent / 'cache'} "
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # juicefs rewrites its process title into one space-joined string
        line = " ".join(a.decode(errors="replace") for a in args if a)
        head = line.split(" ", 1)[0]
        if Path(head).name == "juicefs" and " mount " in line and (
                line.endswith(" " + mountpoint) or cache_opt in line + " "):
            pids.append(int(entry.name))
    return sorted(pids)


def force_unmount(mountpoint: Path | str, recorded_pids: list[int] | None = None) -> None:
    """Lazy unmount (works on a dead FUSE endpoint) and stop any leftover client process."""
    tool = binaries.which(["fusermount3", "fusermount"])
    if mount_fstype(mountpoint) is not None and tool:
        subprocess.run([tool, "-uz", str(mountpoint)], capture_output=True, timeout=30)
    pids = client_pids(mountpoint)
    for pid in pids:
        procs.stop(pid, expect="juicefs")
    remove_fd_sockets([*pids, *(recorded_pids or [])])


def remove_fd_sockets(pids: list[int]) -> None:
    """Remove ``/tmp/fuse_fd_comm.<pid>`` left by a juicefs supervisor that did not exit cleanly.

    ``juicefs mount -d`` passes the FUSE fd to its child through that socket and deletes it on a
    clean unmount; a killed supervisor leaves it behind.
    """
    for pid in pids:
        sock = Path(f"/tmp/fuse_fd_comm.{int(pid)}")
        if not procs.alive(int(pid)) and sock.is_socket():
            sock.unlink(missing_ok=True)


def _meta(state) -> tuple[Service, Service]:
    """The recorded Redis and object store services (whatever their backend)."""
    redis_rec, store_rec = state.get("redis"), state.get("objectstore")
    if not redis_rec or not store_rec:
        raise LabError("The lab's Redis and object store are not running; run `labkit up` first.")
    return (get_service("redis", redis_rec["backend"], state, "redis"),
            get_service("objectstore", store_rec["backend"], state, "objectstore"))


def _run_juicefs(state, args: list[str], env: dict[str, str],
                 timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([binaries.juicefs(), *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env}, stdin=subprocess.DEVNULL)


class _JuiceFSBase(Service):
    def meta_url(self) -> str:
        """META-URL without the password (the password travels in META_PASSWORD)."""
        redis, _ = _meta(self.state)
        return redis.url_without_password()  # type: ignore[attr-defined]

    def meta_env(self) -> dict[str, str]:
        redis, store = _meta(self.state)
        return {"META_PASSWORD": redis.password(), **store.env()}  # type: ignore[attr-defined]

    def masked_meta_url(self) -> str:
        return self.meta_url().replace("redis://", "redis://:****@", 1)


@register
class JuiceFSVolume(_JuiceFSBase):
    """The formatted volume: no process of its own; healthy when `juicefs status` reads its settings."""

    kind = "juicefs"
    backend = "local"

    def url(self) -> str:
        redis, _ = _meta(self.state)
        return redis.url()

    def format_cmd(self) -> list[str]:
        _, store = _meta(self.state)
        return ["format", *store.format_args(), "--trash-days", "0", "--no-update",  # type: ignore[attr-defined]
                self.meta_url(), self.options.get("volume") or VOLUME]

    def commands(self) -> list[str]:
        try:
            return [f"juicefs {' '.join(self.format_cmd())}".replace(self.meta_url(), self.masked_meta_url())]
        except LabError:
            return []

    def juicefs_status(self) -> dict[str, Any]:
        """`juicefs status` parsed from its JSON (logs go to stderr)."""
        proc = _run_juicefs(self.state, ["status", self.meta_url()], self.meta_env(), timeout=60)
        if proc.returncode != 0:
            last = proc.stderr.strip().splitlines()[-1:][0] if proc.stderr.strip() else "no output"
            raise LabError(f"`juicefs status` failed: {self.state.mask(last)}")
        try:
            return json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise LabError("`juicefs status` did not print JSON; is the volume formatted?") from None

    def formatted(self) -> bool:
        try:
            return bool(self.juicefs_status().get("Setting", {}).get("Name"))
        except LabError:
            return False

    def ensure(self) -> dict[str, Any]:
        binaries.juicefs()
        if not self.formatted():
            proc = _run_juicefs(self.state, self.format_cmd(), self.meta_env())
            log = self.state.home / "juicefs-format.log"
            log.write_text(self.state.mask(proc.stdout + proc.stderr))
            if proc.returncode != 0:
                raise LabError(f"`juicefs format` failed (exit {proc.returncode}). "
                               f"Last lines of {log}:\n{procs.tail(log)}")
        redis, store = _meta(self.state)
        return self.state.record(self.name, kind=self.kind, backend=self.backend, pid=None, host="127.0.0.1",
                                 stopped=False,
                                 port=redis.record.get("port"), volume=self.options.get("volume") or VOLUME,
                                 storage=store.record.get("storage"), bucket=store.record.get("bucket"))

    def fsck(self) -> tuple[bool, str]:
        """Run `juicefs fsck`; (clean, masked output)."""
        proc = _run_juicefs(self.state, ["fsck", self.meta_url()], self.meta_env(), timeout=300)
        out = self.state.mask(proc.stdout + proc.stderr)
        return proc.returncode == 0 and "lost" not in out.lower() and "broken" not in out.lower(), out

    def stop(self, purge: bool = False) -> None:
        # nothing runs; the data lives in Redis and the object store, purged with them
        if purge:
            self.state.forget(self.name)
        else:
            self.state.record(self.name, stopped=True)

    def status(self) -> ServiceStatus:
        if self.record.get("stopped"):
            return ServiceStatus(self.name, self.kind, self.backend, self.record.get("volume", VOLUME), None,
                                 False, "stopped (metadata kept in Redis)")
        try:
            redis, _ = _meta(self.state)
            if not redis.healthy():  # type: ignore[attr-defined]
                # juicefs itself would retry an unreachable Redis for ~20 s
                return ServiceStatus(self.name, self.kind, self.backend, self.masked_meta_url(), None, False,
                                     "metadata engine (Redis) unreachable")
            st = self.juicefs_status()
        except LabError as exc:
            return ServiceStatus(self.name, self.kind, self.backend, "?", None, False, str(exc))
        setting, stat = st.get("Setting", {}), st.get("Stat", {})
        detail = (f"volume {setting.get('Name')} on {setting.get('Storage')}, "
                  f"{len(st.get('Sessions') or [])} session(s), "
                  f"{stat.get('UsedSpace', 0) / 2**20:.1f} MiB in {stat.get('UsedInodes', 0)} inodes")
        return ServiceStatus(self.name, self.kind, self.backend, self.masked_meta_url(), None,
                             bool(setting.get("Name")), detail)


@register
class JuiceFSMount(_JuiceFSBase):
    """One node's JuiceFS client. Options: ``node`` (the node name), ``read_only``."""

    kind = "mount"
    backend = "local"

    @property
    def node(self) -> str:
        return self.options.get("node") or self.record.get("node") or self.name.removeprefix("mount-")

    @property
    def base(self) -> Path:
        return self.state.home / "mounts" / self.node

    @property
    def mountpoint(self) -> Path:
        return self.base / "jfs"

    @property
    def shared_dir(self) -> Path:
        return self.state.home / "shared"

    def url(self) -> str:
        return str(self.record.get("path") or self.mountpoint)

    def mount_cmd(self, metrics_port: int) -> list[str]:
        cmd = ["mount", "--cache-dir", str(self.base / "cache"), "-d", "--no-usage-report",
               "--cache-size", "1024", "--metrics", f"127.0.0.1:{metrics_port}",
               "--log", str(self.base / "juicefs.log")]
        if self.options.get("read_only"):
            cmd.append("--read-only")
        return [*cmd, self.meta_url(), str(self.mountpoint)]

    def commands(self) -> list[str]:
        try:
            cmd = " ".join(self.mount_cmd(self.record.get("metrics_port") or 9567))
        except LabError:
            return []
        return [f"juicefs {cmd}".replace(self.meta_url(), self.masked_meta_url())]

    def healthy(self) -> bool:
        if not self.record.get("fuse", True):
            return self.shared_dir.is_dir()
        if mount_fstype(self.mountpoint) != "fuse.juicefs" or is_stale(self.mountpoint):
            return False
        return bool(client_pids(self.mountpoint))

    def ensure(self) -> dict[str, Any]:
        fuse, why = fuse_available()
        if not fuse:
            self.shared_dir.mkdir(parents=True, exist_ok=True)
            return self.state.record(self.name, kind=self.kind, backend=self.backend, node=self.node,
                                     fuse=False, path=str(self.shared_dir), pid=None, host="", port=None,
                                     detail=f"{NO_FUSE_DETAIL} ({why})")
        if self.record.get("fuse", True) and self.healthy():
            pids = client_pids(self.mountpoint)
            return self.state.record(self.name, pid=pids[0], pids=pids)
        # stale endpoint or orphaned client: clean up before remounting
        force_unmount(self.mountpoint, self.record.get("pids"))
        binaries.juicefs()
        rec = self.record
        port = choose_port("JuiceFS metrics", None, rec.get("metrics_port"), None)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        (self.base / "cache").mkdir(parents=True, exist_ok=True)
        if any(self.mountpoint.iterdir()):
            raise LabError(f"The mountpoint {self.mountpoint} is not empty; move its files away first.")
        proc = _run_juicefs(self.state, self.mount_cmd(port), self.meta_env(), timeout=120)
        log = self.base / "juicefs.log"
        if proc.returncode != 0 or mount_fstype(self.mountpoint) != "fuse.juicefs":
            with open(log, "a") as fh:
                fh.write(self.state.mask(proc.stdout + proc.stderr))
            force_unmount(self.mountpoint, self.record.get("pids"))
            raise LabError(f"`juicefs mount` for node {self.node} failed (exit {proc.returncode}). "
                           f"Last lines of {log}:\n{procs.tail(log)}")
        pids = client_pids(self.mountpoint)
        return self.state.record(self.name, kind=self.kind, backend=self.backend, node=self.node, fuse=True,
                                 path=str(self.mountpoint), pid=pids[0] if pids else None, pids=pids,
                                 host="127.0.0.1", port=port, metrics_port=port, log=str(log),
                                 expect=str(self.mountpoint), read_only=bool(self.options.get("read_only")))

    def stop(self, purge: bool = False) -> None:
        if mount_fstype(self.mountpoint) is not None and not is_stale(self.mountpoint):
            try:
                proc = subprocess.run([binaries.juicefs(), "umount", str(self.mountpoint)],
                                      capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
                if proc.returncode != 0:
                    with open(self.base / "juicefs.log", "a") as fh:
                        fh.write(f"labkit: juicefs umount failed ({proc.returncode}): {proc.stderr}\n")
            except (subprocess.TimeoutExpired, LabError):
                pass
        force_unmount(self.mountpoint, self.record.get("pids"))
        if mount_fstype(self.mountpoint) is not None:
            raise LabError(f"Could not unmount {self.mountpoint}; close programs using it and retry.")
        self.state.forget(self.name)
        if purge and self.base.exists():
            shutil.rmtree(self.base)

    def status(self) -> ServiceStatus:
        rec = self.record
        if not rec.get("fuse", True):
            return ServiceStatus(self.name, self.kind, self.backend, str(self.shared_dir), None,
                                 self.shared_dir.is_dir(), rec.get("detail", NO_FUSE_DETAIL))
        pids = client_pids(self.mountpoint)
        mounted = mount_fstype(self.mountpoint) == "fuse.juicefs"
        if is_stale(self.mountpoint) or (mounted and not pids):  # no client serves it any more
            detail = "STALE mount (client died: transport endpoint is not connected); run `labkit up`"
            ok = False
        elif not mounted:
            detail, ok = "not mounted", False
        else:
            ok = bool(pids)
            detail = f"JuiceFS client, metrics 127.0.0.1:{rec.get('metrics_port')}"
            if rec.get("read_only"):
                detail += ", read-only"
        return ServiceStatus(self.name, self.kind, self.backend, str(self.mountpoint),
                             pids[0] if pids else None, ok, detail)
