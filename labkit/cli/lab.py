"""`labkit up`, `labkit status`, `labkit down`: the Lab API on the command line.

Everything printed goes through ``LabState.mask`` so no generated password reaches a terminal or log.
"""

from __future__ import annotations

import argparse
import json
import sys

from labkit.errors import LabError
from labkit.lab.api import Lab
from labkit.lab.services.base import ServiceStatus


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one sentence, exit 2, as argparse does, but plainer
        raise SystemExit(self.exit(2, f"labkit {self.prog.split()[-1]}: {message}.\n"))


def _parser(cmd: str, help_: str) -> argparse.ArgumentParser:
    p = _Parser(prog=f"labkit {cmd}", description=help_)
    p.add_argument("--home", help="lab directory (default: $LABKIT_HOME, else <repo>/.lab)")
    return p


def _port(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None


def table(rows: list[ServiceStatus]) -> str:
    """The `labkit status` table: service, kind, backend, address, pid, health."""
    head = ("SERVICE", "KIND", "BACKEND", "ADDRESS", "PID", "HEALTH")
    body = [(r.name, r.kind, r.backend, r.address, str(r.pid or "-"),
             ("ok" if r.healthy else "DOWN") + (f" ({r.detail})" if r.detail else "")) for r in rows]
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=False)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    return "\n".join(fmt.format(*row) for row in (head, *body))


def _fuse_banner(lab: Lab) -> str:
    from labkit.lab.services.juicefs import fuse_available

    ok, why = fuse_available()
    if ok:
        return ""
    return (f"WARNING: NO FUSE ({why}). JuiceFS volumes are formatted but NOT mounted: "
            f"every node shares the plain directory {lab.home / 'shared'}.")


def _print(lab: Lab, text: str, file=None) -> None:
    print(lab.state.mask(text), file=file or sys.stdout)


def _warn_home(lab: Lab) -> None:
    warning = lab.state.home_warning()
    if warning:
        _print(lab, warning, file=sys.stderr)


def up(argv: list[str]) -> int:
    p = _parser("up", "Start the lab's storage services (MySQL, Redis, object store, JuiceFS volume).")
    p.add_argument("--backend", default=None, help="local (processes, default) or docker (containers)")
    p.add_argument("--cluster", action="store_true",
                   help="also the rw node, --ro read nodes and the router "
                        "(a plain `up` restores a recorded one)")
    p.add_argument("--ro", type=int, default=None, help="read nodes with --cluster (default 1)")
    p.add_argument("--object-store", default=None,
                   help="file (default) or s3 (SeaweedFS S3 server, objects on disk)")
    p.add_argument("--mysql-port", type=_port, default=None,
                   help="explicit MySQL port (default 3306 if free)")
    p.add_argument("--redis-port", type=_port, default=None,
                   help="explicit Redis port (default 6379 if free)")
    p.add_argument("--dry-run", action="store_true", help="print the commands instead of running them")
    args = p.parse_args(argv)
    lab = Lab(args.home, backend=args.backend, object_store=args.object_store,
              mysql_port=args.mysql_port, redis_port=args.redis_port)
    if args.dry_run:
        for kind, cmds in lab.commands().items():
            for cmd in cmds:
                _print(lab, f"[{kind}] {cmd}")
        return 0
    from labkit.lab import cluster

    if args.ro is not None and not args.cluster:
        raise LabError("--ro needs --cluster.")
    router = None
    if args.cluster or (cluster.recorded(lab) and args.backend is None):
        router = cluster.up(lab, ro=args.ro, backend=args.backend)
        rows = lab.status()
    else:
        rows = lab.up()
    _print(lab, table(rows))
    _warn_home(lab)
    banner = _fuse_banner(lab)
    if banner:
        _print(lab, banner)
    _print(lab, f"MySQL meta_uri: {lab.meta_uri()}")
    _print(lab, f"JuiceFS META-URL: {lab.redis_url()}")
    if router is not None:
        host, port = router["host"], router["port"]
        _print(lab, f"Router (Mishards role): {host}:{port}   pymilvus: Milvus(host='{host}', port={port})")
    return 0 if all(r.healthy for r in rows) else 1


def status(argv: list[str]) -> int:
    p = _parser("status", "Table of the lab's services, addresses, PIDs and health.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    args = p.parse_args(argv)
    lab = Lab(args.home)
    rows = lab.status()
    _warn_home(lab)
    banner = _fuse_banner(lab)
    if args.json:
        _print(lab, json.dumps({"home": str(lab.home), "fuse": not banner, "warning": banner or None,
                                "services": [r.as_dict() for r in rows]}, indent=2))
        return 0
    ext_line = _existing_line()
    if ext_line:
        _print(lab, ext_line)
    if not rows:
        if not ext_line:
            _print(lab, f"No lab services are recorded in {lab.home}; run `labkit up`.")
        return 0
    _print(lab, table(rows))
    if banner:
        _print(lab, banner)
    if any(r.backend == "docker" for r in rows):
        _print(lab, _engine_line())
    return 0


def _existing_line() -> str:
    """One line about the cluster named by LABKIT_CLUSTER_* settings ("" when none is set)."""
    from labkit.lab import existing

    ext = existing.load()
    if ext is None:
        return ""
    check = ext.check()
    parts = [f"{k} {'ok' if v else 'DOWN'}" + (f" (Milvus {v})" if isinstance(v, str) else "")
             for k, v in check.items()]
    return (f"Existing cluster from {ext.source}: router {ext.router['host']}:{ext.router['port']}; "
            + ", ".join(parts))


def _engine_line() -> str:
    from labkit.lab import engine

    st = engine.status()
    if not st["running"]:
        return f"Docker engine: {st['detail']}"
    own = f"labkit's own dockerd, PID {st['pid']}" if st["managed"] else "not started by labkit"
    return f"Docker engine {st['version']} at {st['url']} ({own})"


def down(argv: list[str]) -> int:
    p = _parser("down", "Stop every lab service and unmount JuiceFS; --purge also deletes the data.")
    p.add_argument("--purge", action="store_true", help="also delete databases, volumes and state")
    args = p.parse_args(argv)
    lab = Lab(args.home)
    if not lab.state.path.exists():
        _print(lab, f"No lab recorded in {lab.home}; nothing to stop.")
        return 0
    lab.down(purge=args.purge)
    _stop_idle_engine()
    _print(lab, "Lab stopped"
           + (" and its data deleted." if args.purge else "; data kept (use --purge to delete)."))
    return 0


def logs(argv: list[str]) -> int:
    p = _parser("logs", "The last lines a service logged: its container's log, or its log file.")
    p.add_argument("name", help="service name as `labkit status` shows it (mysql, rw, ro1, router, ...)")
    p.add_argument("-n", "--lines", type=int, default=40, help="how many lines (default 40)")
    args = p.parse_args(argv)
    lab = Lab(args.home)
    rec = lab.state.get(args.name)
    if rec is None:
        raise LabError(f"No service named {args.name!r} is recorded in {lab.home}; see `labkit status`.")
    if rec.get("container"):
        from labkit.lab.services import containers

        box = containers.lookup(rec["container"])
        if box is None:
            raise LabError(f"{args.name} has no container now (stopped); its files are under {lab.home}.")
        _print(lab, containers.logs(box, args.lines))
        return 0
    if not rec.get("log"):
        raise LabError(f"{args.name} keeps no log file.")
    from labkit.lab import procs

    _print(lab, procs.tail(rec["log"], args.lines))
    return 0


def _stop_idle_engine() -> None:
    """Stop labkit's own dockerd once no container is left on it (its images stay cached)."""
    from labkit.lab import engine

    eng = engine.find()
    if eng is None or not eng.managed:
        return
    client = eng.client()
    try:
        idle = not client.containers.list(all=True)
    finally:
        client.close()
    if idle:
        engine.stop_managed()


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - convenience entry
    try:
        return up(argv or [])
    except LabError as exc:
        print(f"labkit: {exc}", file=sys.stderr)
        return 1
