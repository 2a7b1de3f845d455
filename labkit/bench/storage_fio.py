"""Sequential throughput per the published method: fio, 4M blocks, write with end_fsync, cold read.

Without fio, a pure-Python writer/reader (threads, one file each) does the same pattern and the
result says ``method: "python"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab.services.binaries import which

BLOCK = 4 << 20  # the published --bs=4M
MiB = 1 << 20


def drop_page_cache() -> bool:
    """``sync; echo 3 > /proc/sys/vm/drop_caches`` when allowed (root, writable sysctl); True if done."""
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError:
        return False
    return True


def evict_juicefs(path: Path) -> bool:
    """Evict ``path`` from this JuiceFS client's block cache so the next read is cold."""
    exe = which(["juicefs"])
    if not exe:
        return False
    done = subprocess.run([exe, "warmup", "--evict", str(path)], capture_output=True, text=True, timeout=120)
    return done.returncode == 0


def fio_command(directory: Path, rw: str, jobs: int, size_mb: int) -> list[str]:
    """The published job (``--rw=read|write --refill_buffers --bs=4M``, writes ``--end_fsync=1``)."""
    cmd = ["fio", "--name=labkit-seq", f"--directory={directory}", f"--rw={rw}", "--bs=4M",
           f"--size={size_mb}M", f"--numjobs={jobs}", "--refill_buffers", "--group_reporting",
           "--output-format=json"]
    if rw == "write":
        cmd.append("--end_fsync=1")
    return cmd


def parse_fio(output: str, rw: str) -> float:
    """Aggregate MiB/s of the ``rw`` side of fio's JSON report (group_reporting: one job entry)."""
    start = output.find("{")  # fio may print warnings before the JSON
    if start < 0:
        raise LabError("fio printed no JSON report.")
    report = json.loads(output[start:])
    return sum(job[rw]["bw_bytes"] for job in report["jobs"]) / MiB


def run_fio(directory: Path, rw: str, jobs: int, size_mb: int) -> float:
    exe = which(["fio"])
    cmd = fio_command(directory, rw, jobs, size_mb)
    cmd[0] = exe or "fio"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise LabError(f"fio {rw} on {directory} failed: {(done.stderr or done.stdout).strip()[-300:]}")
    return parse_fio(done.stdout, rw)


def _py_one(path: Path, rw: str, size: int, errors: list[BaseException]) -> None:
    try:
        if rw == "write":
            block = os.urandom(BLOCK)  # refill per file, like --refill_buffers keeps data incompressible
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                for _ in range(size // BLOCK):
                    os.write(fd, block)
                os.fsync(fd)  # end_fsync
            finally:
                os.close(fd)
        else:
            fd = os.open(path, os.O_RDONLY)
            try:
                while os.read(fd, BLOCK):
                    pass
            finally:
                os.close(fd)
    except BaseException as exc:  # re-raised by the caller
        errors.append(exc)


def run_python(directory: Path, rw: str, jobs: int, size_mb: int) -> float:
    """The fio job's pattern in Python: ``jobs`` threads, one file each, 4 MiB blocks."""
    size = max(BLOCK, size_mb * MiB)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_py_one, args=(directory / f"labkit-seq.{i}.0", rw, size, errors))
               for i in range(jobs)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - t0
    if errors:
        raise LabError(f"Python {rw} on {directory} failed: {errors[0]}")
    return jobs * size / MiB / seconds


def throughput(path: Path, jobs_multi: int, size_mb: int, juicefs: bool,
               use_fio: bool | None = None) -> dict[str, Any]:
    """write_1, read_1, write_multi, read_multi in MiB/s on ``path``, reads cold; files removed after."""
    use_fio = bool(which(["fio"])) if use_fio is None else use_fio
    runner = run_fio if use_fio else run_python
    out: dict[str, Any] = {"method": "fio" if use_fio else "python fallback (no fio)",
                           "jobs_multi": jobs_multi, "size_mb_per_job": size_mb,
                           "page_cache_dropped": True, "juicefs_cache_evicted": juicefs or None}
    t0 = time.perf_counter()
    for label, jobs in (("1", 1), ("multi", jobs_multi)):
        work = path / f"fio-{jobs}"
        work.mkdir(parents=True, exist_ok=True)
        try:
            out[f"write_{label}"] = round(runner(work, "write", jobs, size_mb), 1)
            out["page_cache_dropped"] &= drop_page_cache()
            if juicefs:
                out["juicefs_cache_evicted"] &= evict_juicefs(work)
            out[f"read_{label}"] = round(runner(work, "read", jobs, size_mb), 1)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out
