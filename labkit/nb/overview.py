"""Notebook 00's tables: what runs where on this machine, and how long each notebook takes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from labkit.lab.state import REPO_ROOT
from labkit.nb.sizes import LabConfig

# rough minutes on a 2-core machine at SIZE=small (measured runs replace these when present)
ESTIMATE_MIN = {"00": 0.1, "01": 0.5, "02": 0.2, "03": 0.3, "04": 0.3, "05": 2.0, "06": 2.0, "99": 0.1}
# minutes a workshop participant needs: reading, running and the exercises (00's table of contents)
WORKSHOP_MIN = {"00": 10, "01": 10, "02": 15, "03": 20, "04": 20, "05": 15, "06": 15, "99": 5}


def fuse_mode(fuse_available: bool) -> bool:
    """True when nodes get their own JuiceFS mounts: FUSE works and LABKIT_NO_FUSE is not set."""
    return fuse_available and os.environ.get("LABKIT_NO_FUSE", "").lower() not in {"1", "true", "yes"}


def storage_sentence(fuse: bool) -> str:
    """The one sentence every notebook prints about where the nodes' data lives."""
    if fuse:
        return "FUSE works here: every node gets its own JuiceFS mount (its own client, cache and metrics)."
    return ("FUSE is not available here (or LABKIT_NO_FUSE=1): the nodes share one local directory "
            "instead of JuiceFS mounts; everything else runs the same.")


def node_names(cfg: LabConfig) -> list[str]:
    """rw, ro1, ro2, ... for ``cfg.ro_nodes`` read nodes."""
    return ["rw"] + [f"ro{i}" for i in range(1, cfg.ro_nodes + 1)]


def placement_rows(cfg: LabConfig, fuse: bool) -> list[dict[str, Any]]:
    """Every process the lab starts, what it is for, and where it listens or keeps data."""
    storage = "its own JuiceFS mount" if fuse else "the shared local directory"
    rows = [
        {"process": "mariadbd", "role": "Milvus metadata (MySQL `milvus` db)", "where": "127.0.0.1, free port",
         "notebook": "01"},
        {"process": "redis-server", "role": "JuiceFS metadata engine (AOF on)", "where": "127.0.0.1, free port",
         "notebook": "02"},
        {"process": "object store", "role": "JuiceFS data blocks (file dir or moto S3)", "where": "lab home",
         "notebook": "02"},
    ]
    for name in node_names(cfg):
        if fuse:
            rows.append({"process": f"juicefs mount ({name})", "role": f"JuiceFS client for node {name}",
                         "where": f"<lab home>/mounts/{name}/jfs", "notebook": "02"})
    for name in node_names(cfg):
        role = "rw: inserts, flushes, merges" if name == "rw" else "ro: searches only"
        rows.append({"process": f"labkit.node ({name})", "role": f"Milvus 1.1 node, {role}",
                     "where": f"gRPC on 127.0.0.1; db/ on {storage}", "notebook": "03" if name != "ro2" else "04"})
    rows.append({"process": "labkit.router", "role": "Mishards: forwards writes to rw, spreads searches over ro",
                 "where": "127.0.0.1:19530 when free", "notebook": "04"})
    return rows


def _title(path: Path) -> str:
    try:
        cells = json.loads(path.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return ""
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            first = "".join(cell.get("source", "")).strip().splitlines()[0]
            return first.lstrip("# ").strip()
    return ""


def _measured(executed: Path) -> float | None:
    """Seconds papermill recorded for an executed copy, if any."""
    try:
        meta = json.loads(executed.read_text()).get("metadata", {}).get("papermill", {})
    except (OSError, ValueError):
        return None
    duration = meta.get("duration")
    return round(float(duration), 1) if duration and meta.get("exception") is not True else None


def notebook_rows(folder: Path | str = REPO_ROOT / "notebooks", executed_dir: Path | str | None = None) -> list[dict]:
    """Each notebook with its title, the estimate and, when an executed copy exists, the measured time."""
    from labkit.nb.artifacts import artifacts_dir

    executed = Path(executed_dir) if executed_dir else artifacts_dir()
    rows = []
    for path in sorted(Path(folder).glob("[0-9][0-9]_*.ipynb")):
        number = path.name[:2]
        rows.append({"notebook": path.name, "title": _title(path),
                     "workshop (min)": WORKSHOP_MIN.get(number, 10),
                     "run time, estimate (min)": ESTIMATE_MIN.get(number, 1.0),
                     "last run (s)": _measured(executed / path.name)})
    measured = [r["last run (s)"] for r in rows]
    rows.append({"notebook": "total", "title": "",
                 "workshop (min)": sum(r["workshop (min)"] for r in rows),
                 "run time, estimate (min)": round(sum(r["run time, estimate (min)"] for r in rows), 1),
                 "last run (s)": round(sum(measured), 1) if rows and None not in measured else None})
    return rows
