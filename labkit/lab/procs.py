"""Process and port helpers shared by every service: start detached, find, stop by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from labkit.errors import LabError


def spawn(cmd: Sequence[str], log: Path, env: Mapping[str, str] | None = None,
          cwd: Path | None = None) -> int:
    """Start ``cmd`` in its own session (it outlives the notebook kernel), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
        )
    return proc.pid


def cmdline(pid: int) -> str:
    """The process's command line joined by spaces, or "" if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def alive(pid: int | None, expect: str | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when given, its command line contains ``expect``.

    Checking the command line guards against a recycled PID from a crashed earlier lab.
    """
    if not pid:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        _reap(pid)
        return False
    return expect is None or expect in cmdline(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop(pid: int | None, timeout: float = 10.0, expect: str | None = None) -> bool:
    """SIGTERM ``pid``, then SIGKILL after ``timeout``. Returns True if it was running."""
    if not alive(pid, expect):
        return False
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        _reap(pid)
        if not alive(pid):
            break
        time.sleep(0.05)
    return True


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on ``port`` and we could bind it on IPv4 and (if present) IPv6.

    gRPC servers often listen dual-stack (``[::]:PORT``), which an IPv4-only bind test can miss,
    so a connect attempt and an IPv6 bind are checked too.
    """
    if port_open(port, host, timeout=0.2):
        return False
    for family, addr in ((socket.AF_INET, host), (socket.AF_INET6, "::")):
        try:
            s = socket.socket(family, socket.SOCK_STREAM)
        except OSError:  # no IPv6 on this machine
            continue
        with s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((addr, port))
            except OSError as exc:
                if family == socket.AF_INET6 and exc.errno == 99:  # EADDRNOTAVAIL: IPv6 disabled
                    continue
                return False
    return True


def free_port(preferred: int | None = None, host: str = "127.0.0.1", avoid: set[int] | None = None) -> int:
    """``preferred`` when it is free (and not in ``avoid``), otherwise a free ephemeral port."""
    avoid = avoid or set()
    if preferred and preferred not in avoid and port_free(preferred, host):
        return preferred
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if port not in avoid:
            return port
    raise LabError("Could not find a free TCP port on this machine.")


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if a TCP connection to ``host:port`` succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file ("" if missing)."""
    try:
        data = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(data[-lines:])


def wait_until(check, timeout: float, what: str, pid: int | None = None, log: Path | None = None,
               interval: float = 0.1) -> None:
    """Poll ``check()`` until true; raise LabError naming ``what`` (with the log tail) on timeout or death."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if pid is not None and not alive(pid):
            break
        time.sleep(interval)
    reason = "exited" if pid is not None and not alive(pid) else f"was not ready after {timeout:.0f} s"
    msg = f"{what} {reason}."
    if log is not None:
        msg += f" Last lines of {log}:\n{tail(log)}"
    raise LabError(msg)


@contextlib.contextmanager
def environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the processes started inside the block."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
