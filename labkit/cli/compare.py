"""`labkit compare A B`: every metric of run(s) B against baseline run(s) A, with verdicts.

    labkit compare A B [--history FILE] [--rename OLD=NEW] [--out DIR] [--json]

A and B: ``last``, ``last:N``, a run id (or unique prefix) of the history, a run folder, a
``run.json``, or a history ``.jsonl`` (``FILE.jsonl:N`` for its newest N); comma-separated runs are
repeats of one configuration. Prints the markdown table (for CI logs); ``--out`` also writes
``compare.md``, ``compare.html`` and the trend plots. Exit status 3 when a metric of B is worse
than A beyond its noise band, 1 for a bad run name, else 0.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labkit.cli.run import EXIT_REGRESSION, history_path, parse_rename


def cli(argv: list[str]) -> int:
    from labkit.runs import compare, record, report

    p = argparse.ArgumentParser(prog="labkit compare", description="Compare run(s) B with baseline run(s) A.")
    p.add_argument("baseline", metavar="A", help="the baseline run(s)")
    p.add_argument("candidate", metavar="B", help="the run(s) judged against A")
    p.add_argument("--history", default="",
                   help="history file for last / run ids (default artifacts/history.jsonl)")
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                   help="compare B's keys containing OLD with A's containing NEW (e.g. lazy_=preload_)")
    p.add_argument("--out", default="", help="also write compare.md, compare.html and trend plots here")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON instead of markdown")
    args = p.parse_args(argv)
    history = history_path(args.history)
    base = record.resolve(args.baseline, history)
    cand = record.resolve(args.candidate, history)
    result = compare.compare(base, cand, parse_rename(args.rename))
    if args.out:
        trend = record.read_history(history) if history.is_file() else [*base, *cand]
        md, page = report.write(Path(args.out), None, trend, result, stem="compare")
        print(f"[labkit compare] {page} and {md}")
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        print(report.comparison_markdown(result))
    return EXIT_REGRESSION if result.regressions else 0
