"""One rw node per storage path: an exclusive flock on ``<dir>/lock`` that names its owner.

On JuiceFS a flock lives in the metadata engine and belongs to the client session: when that
client is killed, the lock outlives every process until the session expires (about a minute).
The holder therefore writes its pid, host and process start time into the file; a node that
finds the lock taken by a process of this host that no longer runs replaces the file (a new
inode, locked before it is renamed into place) instead of waiting for the session to expire.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from labkit.milvus.status import Code, MilvusError


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (tells a recycled pid apart)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def _owner_record() -> str:
    pid = os.getpid()
    return json.dumps({"pid": pid, "host": socket.gethostname(), "start": _start_ticks(pid)})


def owner_gone(path: Path) -> bool:
    """True when ``path`` names an owner on this host whose process no longer runs."""
    try:
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return False
    if owner.get("host") != socket.gethostname() or not owner.get("pid"):
        return False  # another host's node: we cannot tell, so the lock stands
    return _start_ticks(int(owner["pid"])) != owner.get("start")


def _lock(fd: int) -> bool:
    try:
        # flock, not lockf: it also excludes a second Store in this process, and closing
        # another descriptor of the file does not drop it
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


def _claim(fd: int) -> int:
    os.ftruncate(fd, 0)
    os.pwrite(fd, _owner_record().encode(), 0)
    return fd


def take(directory: Path) -> int:
    """Lock ``directory/lock`` for this process; the open descriptor (keep it open to hold the lock)."""
    path = directory / "lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if _lock(fd):
        return _claim(fd)
    os.close(fd)
    if owner_gone(path):
        fresh = directory / f".lock.{os.getpid()}"
        fd = os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        if _lock(fd):
            _claim(fd)
            os.replace(fresh, path)
            if os.stat(path).st_ino == os.fstat(fd).st_ino:  # nobody replaced it in between
                return fd
        os.close(fd)
        fresh.unlink(missing_ok=True)
    holder = ""
    try:
        owner = json.loads(path.read_text() or "{}")
        holder = f" (pid {owner.get('pid')} on {owner.get('host')})"
    except (OSError, ValueError):
        pass
    raise MilvusError(Code.UNEXPECTED_ERROR,
                      f"{path} is locked: another rw Milvus node uses this path{holder}")
