"""Benchmarks: each module returns plain data (dicts) and has ``cli(argv)`` printing JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def emit(result: Any, as_json: bool, out: str | None, rows: Iterable[dict]) -> None:
    """A benchmark CLI's output: the full JSON (``--json``) or one JSON line per summary row,
    and the full JSON also written to ``out`` when given."""
    if out:
        Path(out).write_text(json.dumps(result, indent=2))
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        for row in rows:
            print(json.dumps(row))
