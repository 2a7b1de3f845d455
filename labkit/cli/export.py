"""`labkit export compose --hosts N OUT/`: the article's cluster as docker-compose files, one set per host."""

from __future__ import annotations

import argparse
import subprocess

from labkit.errors import LabError
from labkit.lab import compose
from labkit.lab.services import binaries


def validate(folder, local: bool = False) -> str:
    """``docker-compose config -q`` for one host folder; "" when valid, else its message."""
    tool = binaries.which(["docker-compose"])
    if tool is None:
        raise LabError("Validating needs docker-compose (apt-get install docker-compose); "
                       "or pass --no-validate.")
    argv = compose.compose_argv(folder, local)
    proc = subprocess.run([tool, *argv[1:], "config", "-q"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    return "" if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labkit export", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("compose", help="one docker-compose.yml + .env per host, juicefs commands, README")
    c.add_argument("out", help="a new (or empty) folder")
    c.add_argument("--hosts", type=int, default=3, help="number of hosts (1 rw + N-1 ro Milvus), default 3")
    c.add_argument("--project", default="milvus", help="compose project name prefix")
    c.add_argument("--no-validate", action="store_true", help="skip `docker-compose config`")
    args = p.parse_args(argv)
    folders = compose.export(args.out, args.hosts, args.project)
    for folder in folders:
        status = "written"
        if not args.no_validate:
            problems = [m for m in (validate(folder), validate(folder, local=True)) if m]
            if problems:
                raise LabError(f"{folder}/docker-compose.yml does not validate: {problems[0].splitlines()[0]}")
            status = "valid (docker-compose config)"
        print(f"{folder}: {status}")
    print(f"Order of steps: {args.out.rstrip('/')}/README.md")
    return 0
