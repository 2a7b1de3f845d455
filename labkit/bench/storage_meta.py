"""Metadata operations in the mdtest spirit, one phase at a time, so phases of several targets interleave.

mdtest's phases: directory create/stat/remove, file create/stat/read (open-close, no data) /remove,
tree create/remove. Between two phases on the same target at least ``pause_s`` must pass (longer than
FUSE's 1 s attribute cache) so a stat is not answered by the kernel's cache. Running phase k of every
target before phase k+1 of the first makes most of that pause useful work instead of sleep.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from labkit.bench.published import MD_OPS

TREE_BRANCH = 4  # children per directory in the tree phases (mdtest -b)


def tree_depth(items: int, branch: int = TREE_BRANCH) -> int:
    """Smallest depth whose tree (root excluded) holds at least 80% of ``items`` directories."""
    depth, total = 1, branch
    while total < 0.8 * items and depth < 8:
        depth += 1
        total += branch**depth
    return depth


def tree_dirs(root: Path, depth: int, branch: int = TREE_BRANCH) -> list[Path]:
    """The tree's directories, parents before children (breadth first)."""
    level, out = [root], []
    for _ in range(depth):
        level = [p / f"t{i}" for p in level for i in range(branch)]
        out.extend(level)
    return out


class MetaRun:
    """The mdtest-like phases on one directory; ``phase(op)`` runs one and returns ops/s."""

    def __init__(self, base: Path, items: int) -> None:
        self.base = base
        self.items = items
        self.dirs = [base / "dirs" / f"d{i}" for i in range(items)]
        self.files = [base / "files" / f"f{i}" for i in range(items)]
        self.tree = tree_dirs(base / "tree", tree_depth(items))
        for sub in ("dirs", "files", "tree"):
            (base / sub).mkdir(parents=True, exist_ok=True)

    def _dir_create(self) -> int:
        for d in self.dirs:
            os.mkdir(d)
        return len(self.dirs)

    def _dir_stat(self) -> int:
        for d in self.dirs:
            os.stat(d)
        return len(self.dirs)

    def _dir_remove(self) -> int:
        for d in self.dirs:
            os.rmdir(d)
        return len(self.dirs)

    def _file_create(self) -> int:
        for f in self.files:
            os.close(os.open(f, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o644))
        return len(self.files)

    def _file_stat(self) -> int:
        for f in self.files:
            os.stat(f)
        return len(self.files)

    def _file_open_close(self) -> int:  # mdtest's "File read" without data (-w 0 / -e 0)
        for f in self.files:
            os.close(os.open(f, os.O_RDONLY))
        return len(self.files)

    def _file_remove(self) -> int:
        for f in self.files:
            os.unlink(f)
        return len(self.files)

    def _tree_create(self) -> int:
        for d in self.tree:
            os.mkdir(d)
        return len(self.tree)

    def _tree_remove(self) -> int:
        for d in reversed(self.tree):
            os.rmdir(d)
        return len(self.tree)

    def phase(self, op: str) -> float:
        """Run phase ``op`` (one of MD_OPS); ops/s."""
        t0 = time.perf_counter()
        n = getattr(self, f"_{op}")()
        return round(n / max(time.perf_counter() - t0, 1e-9), 1)

    def cleanup(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def run_metadata(runs: dict[str, MetaRun], pause_s: float = 1.1,
                 ops: Sequence[str] = MD_OPS) -> dict[str, dict]:
    """Every phase on every target, round-robin, at least ``pause_s`` apart per target.

    Returns ``{target: {op: ops/s}}``; a phase that fails records ``None`` and the target's later
    phases are skipped (their inputs would be missing), with the error under ``"error"``.
    """
    results: dict[str, dict] = {name: {} for name in runs}
    last: dict[str, float] = {}
    for op in ops:
        for name, run in runs.items():
            if "error" in results[name]:
                continue
            wait = pause_s - (time.monotonic() - last.get(name, -1e9))
            if wait > 0:
                time.sleep(wait)
            try:
                results[name][op] = run.phase(op)
            except OSError as exc:
                results[name][op] = None
                results[name]["error"] = f"{op}: {exc}"
            last[name] = time.monotonic()
    for run in runs.values():
        run.cleanup()
    return results
