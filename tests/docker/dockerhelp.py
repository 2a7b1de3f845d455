"""Helpers the docker tests share: the labkit CLI in a subprocess, and what a lab left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from labkit.lab import engine as engines
from labkit.lab.services import containers
from labkit.lab.services import juicefs as jfs

REPO = Path(__file__).resolve().parents[2]


def labkit(*args: str, home: Path, timeout: float = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """The `labkit` CLI in a subprocess (as a user runs it)."""
    full = {**os.environ, "LABKIT_HOME": str(home), "LABKIT_IMAGES": "local", "PYTHONPATH": str(REPO),
            **(env or {})}
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                          timeout=timeout, env=full, stdin=subprocess.DEVNULL)


def leftovers(home: Path, cleanup: bool = False) -> dict[str, list[str]]:
    """Containers labelled with ``home`` and mounts under it (removed when ``cleanup``)."""
    eng = engines.find()
    boxes = containers.labelled(eng.client(), home) if eng else []
    mounts = [mp for mp, _ in jfs.mounts_under(home)]
    if cleanup:
        for box in boxes:
            containers.remove(eng.client(), box.name)
        for mp in mounts:
            jfs.force_unmount(mp)
    return {"containers": [b.name for b in boxes], "mounts": mounts}
