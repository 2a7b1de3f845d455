"""Idempotent setup, standard library only (it runs before the venv exists).

    python3 labkit/bootstrap.py [--venv .venv] [--no-apt]

1. Debian packages the lab runs (MariaDB, Redis, FUSE, fio, s3fs, Prometheus Pushgateway, docker.io,
   docker-compose, debootstrap): installed with apt-get when root and missing; otherwise the exact
   command to run is printed.
2. ``.venv`` with labkit (editable, dev extras), then ``pymilvus==1.1.2 --no-deps`` (it
   pins grpcio<1.38, which has no wheel for Python 3.11; labkit.milvus.proto makes it run).
3. A stamp file skips step 2 when pyproject.toml has not changed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# package -> a file it installs (cheap presence test without dpkg locks)
APT_PACKAGES = {
    "mariadb-server": "/usr/sbin/mariadbd",
    "redis-server": "/usr/bin/redis-server",
    "fuse3": "/usr/bin/fusermount3",
    "fio": "/usr/bin/fio",
    "s3fs": "/usr/bin/s3fs",
    "bindfs": "/usr/bin/bindfs",
    "procps": "/usr/bin/pgrep",
    "prometheus-pushgateway": "/usr/bin/prometheus-pushgateway",
    "g++": "/usr/bin/g++",  # the annoy package builds its extension from source
    "chromium": "/usr/bin/chromium",  # the browser test of JupyterLab
    "chromium-driver": "/usr/bin/chromedriver",
    # the docker backend and its tests: an engine labkit starts itself, compose, the base image
    "docker.io": "/usr/sbin/dockerd",
    "docker-compose": "/usr/bin/docker-compose",
    "debootstrap": "/usr/sbin/debootstrap",
}
PYMILVUS = "pymilvus==1.1.2"


def say(msg: str) -> None:
    print(f"[setup] {msg}", flush=True)


def run(cmd: list[str], **kw) -> None:
    say("$ " + " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


def apt(skip: bool) -> None:
    missing = [pkg for pkg, path in APT_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        say("Debian packages: all present")
        return
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    if skip:
        say("Debian packages missing (skipped): " + " ".join(missing))
        return
    if os.geteuid() != 0:
        say("Debian packages missing; run as root:\n    sudo apt-get update && sudo " + " ".join(cmd))
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update", "-q"], env=env)
    run(cmd, env=env)


def venv(path: Path) -> Path:
    python = path / "bin" / "python"
    if not python.exists():
        try:
            run([sys.executable, "-m", "venv", str(path)])
        except subprocess.CalledProcessError:
            say("python3 -m venv failed; on Debian install it with: apt-get install -y python3-venv")
            raise
        run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"])
    return python


def pip(python: Path, path: Path) -> None:
    stamp = path / ".labkit-setup"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        say("Python packages: up to date")
        return
    run([str(python), "-m", "pip", "install", "-q", "-e", f"{ROOT}[dev]"])
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", PYMILVUS])
    check = "from milvus import Milvus; from google.protobuf.internal import api_implementation as a; print(a.Type())"
    backend = subprocess.run([str(python), "-c", check], capture_output=True, text=True, check=True).stdout.strip()
    say(f"pymilvus 1.1.2 imports on the {backend} protobuf runtime")
    stamp.write_text(digest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--venv", default=str(ROOT / ".venv"))
    parser.add_argument("--no-apt", action="store_true", help="do not install Debian packages")
    args = parser.parse_args(argv)
    if sys.version_info < (3, 11):  # noqa: UP036 - this file runs on the system python, before the venv
        say(f"Python 3.11+ is needed (this is {sys.version.split()[0]}).")
        return 1
    apt(args.no_apt)
    path = Path(args.venv)
    pip(venv(path), path)
    if not shutil.which("make"):
        say("note: `make` is not installed (apt-get install -y make); the Makefile targets need it")
    say("ready: .venv/bin/labkit doctor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
