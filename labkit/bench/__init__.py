"""Benchmarks: each module returns plain data (dicts); its ``cli(argv)`` prints through ``emit``.

Every ``labkit bench NAME`` takes the same output options: ``--json`` prints the whole result as
one indented JSON document on stdout (nothing else goes to stdout), the default prints a short
summary (one line per row), and ``--out FILE`` also writes the whole JSON to FILE.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

_results: list = []  # the stream results go to while progress output is sent to stderr


@contextlib.contextmanager
def results_only_on_stdout() -> Iterator[None]:
    """Send everything printed inside the block to stderr, except what ``emit`` prints."""
    _results.append(_results[-1] if _results else sys.stdout)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _results.pop()


def add_output_args(parser: argparse.ArgumentParser) -> None:
    """``--json`` and ``--out``, with the same meaning for every benchmark."""
    parser.add_argument("--json", action="store_true",
                        help="print the whole result as one JSON document (default: a short summary)")
    parser.add_argument("--out", default=None, metavar="FILE", help="also write the whole JSON result here")


def scalar_rows(result: Mapping[str, Any], prefix: str = "") -> list[str]:
    """``key: value`` lines for the scalars of ``result`` and of its nested mappings."""
    lines = []
    for key, value in result.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            lines += scalar_rows(value, f"{name}.")
        elif isinstance(value, str | int | float | bool) or value is None:
            lines.append(f"{name}: {value}")
    return lines


def emit(result: Any, args: argparse.Namespace,
         summary: Iterable[str | Mapping[str, Any]] | None = None) -> None:
    """A benchmark's output: the JSON document (``--json``) or the summary lines; ``--out`` also writes it.

    Summary rows that are mappings print as one JSON line each; strings print as they are. Without
    a summary, the result's scalars print as ``key: value`` lines.
    """
    out = getattr(args, "out", None)
    if out:
        Path(out).write_text(json.dumps(result, indent=2))
    stream = _results[-1] if _results else sys.stdout
    if getattr(args, "json", False):
        json.dump(result, stream, indent=2)
        print(file=stream)
        return
    for row in scalar_rows(result) if summary is None else summary:
        print(row if isinstance(row, str) else json.dumps(row), file=stream)
