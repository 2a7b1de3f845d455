"""Where notebooks leave figures and metrics: ``artifacts/`` (or $LABKIT_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from labkit.lab.state import REPO_ROOT


def artifacts_dir(out_dir: str | os.PathLike[str] | None = None) -> Path:
    path = Path(out_dir or os.environ.get("LABKIT_ARTIFACTS") or REPO_ROOT / "artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


def savefig(fig: Any, name: str, out_dir: str | os.PathLike[str] | None = None) -> Any:
    """Save a matplotlib figure as ``<artifacts>/<name>.png`` and return the figure."""
    fig.savefig(artifacts_dir(out_dir) / f"{name}.png", dpi=110, bbox_inches="tight")
    return fig


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "as_dict"):
        return value.as_dict()
    return str(value)


def record_metrics(notebook: str, metrics: dict[str, Any],
                   out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write ``<artifacts>/<NN>_metrics.json`` (NN = the notebook's number) and return its path."""
    number = notebook.split("_", 1)[0]
    path = artifacts_dir(out_dir) / f"{number}_metrics.json"
    payload = {"notebook": notebook, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%S"), **metrics}
    path.write_text(json.dumps(payload, indent=2, default=_jsonable))
    return path


def save_json(result: Any, name: str, out_dir: str | os.PathLike[str] | None = None) -> Path:
    """Write ``<artifacts>/<name>.json`` (a benchmark's full result) and return its path."""
    path = artifacts_dir(out_dir) / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, default=_jsonable))
    return path
