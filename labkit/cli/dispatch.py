"""`labkit` command line: a thin dispatcher; each command lives in its own module.

Every command module exposes ``cli(argv: list[str]) -> int``. Errors meant for a
person are LabError: printed as one sentence, exit code 1.
"""

from __future__ import annotations

import importlib
import sys

from labkit.errors import LabError

# command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "doctor": ("labkit.lab.doctor", "what this machine can do, and how to install what is missing"),
    "up": ("labkit.cli.lab:up", "start the lab's storage (MySQL, Redis, object store, JuiceFS); --cluster: "
           "also the nodes and the router"),
    "status": ("labkit.cli.lab:status", "table of the lab's services, addresses, PIDs and health"),
    "down": ("labkit.cli.lab:down", "stop everything and unmount (--purge also deletes data)"),
    "logs": ("labkit.cli.lab:logs", "the last lines a service logged (container log or log file)"),
    "images": ("labkit.cli.images", "build the local container images (labkit images build)"),
    "export": ("labkit.cli.export", "write a multi-host docker-compose set (labkit export compose --hosts N OUT/)"),
    "run": ("labkit.cli.run", "execute the notebooks in order; record, report, compare (artifacts/)"),
    "compare": ("labkit.cli.compare", "compare two runs: every metric with a verdict; exit 3 if worse"),
    "bench": ("", "benchmarks printing JSON: client, insert, search, engine, storage, first-query"),
}

# `labkit bench NAME` -> module with cli(argv)
BENCHES: dict[str, str] = {
    "client": "labkit.bench.client",
    "insert": "labkit.bench.insert",
    "search": "labkit.bench.search",
    "storage": "labkit.bench.storage",
    "first-query": "labkit.bench.first_query",
    "engine": "labkit.bench.engine",
}


def _usage() -> str:
    lines = ["usage: labkit COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<8} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", f"benchmarks: labkit bench {{{','.join(BENCHES)}}} --help"]
    return "\n".join(lines)


def _resolve(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr or "cli")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    try:
        if command == "bench":
            if not rest or rest[0] not in BENCHES:
                print(f"Choose a benchmark: {', '.join(BENCHES)}.", file=sys.stderr)
                return 2
            from labkit.bench import results_only_on_stdout

            with results_only_on_stdout():  # progress lines never mix with the JSON
                return int(_resolve(BENCHES[rest[0]])(rest[1:]) or 0)
        if command not in COMMANDS:
            print(f"Unknown command {command!r}.\n\n{_usage()}", file=sys.stderr)
            return 2
        return int(_resolve(COMMANDS[command][0])(rest) or 0)
    except LabError as exc:
        print(f"labkit {command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
