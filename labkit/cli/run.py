"""`labkit run`: execute every notebook in order with papermill; executed copies to artifacts/.

    labkit run [--size ci|small|full] [--only 03] [--timeout 900] [--no-log-output]

Each notebook runs with kernel python3, its folder as working directory, an execution
timeout per cell, ``-p SIZE <size>`` and ``-p OUT_DIR <artifacts dir>`` (figures and metrics
land beside the executed copies). The run stops at the first failing notebook
(later ones build on it) and exits 1 with one sentence naming it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab.state import REPO_ROOT
from labkit.nb.artifacts import artifacts_dir

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DEFAULT_TIMEOUT = 900  # seconds per cell


def notebooks(folder: Path | str = NOTEBOOKS_DIR, only: str = "") -> list[Path]:
    """``NN_*.ipynb`` in ``folder``, in order; ``only`` keeps names starting with it (e.g. "03")."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    return [p for p in found if p.name.startswith(only)]


def default_size() -> str:
    return os.environ.get("LABKIT_SIZE") or "small"


def run_notebook(path: Path, size: str, out_dir: Path, timeout: int = DEFAULT_TIMEOUT, log_output: bool = True,
                 env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Execute one notebook; returns name, seconds, ok and (on failure) the error in one line.

    ``env`` entries are set for the kernel (it inherits this process's environment) and restored after.
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError

    out_dir.mkdir(parents=True, exist_ok=True)
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    start = time.monotonic()
    error = ""
    try:
        pm.execute_notebook(str(path), str(out_dir / path.name), parameters={"SIZE": size, "OUT_DIR": str(out_dir)},
                            kernel_name="python3", cwd=str(path.parent), execution_timeout=timeout, log_output=log_output,
                            progress_bar=False)
    except pm.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except CellTimeoutError as exc:
        error = f"a cell ran longer than {timeout} s ({str(exc).splitlines()[0]})"
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"notebook": path.name, "seconds": round(time.monotonic() - start, 1), "ok": not error, "error": error}


def run_all(size: str, out_dir: Path, only: str = "", timeout: int = DEFAULT_TIMEOUT,
            log_output: bool = True, keep_going: bool = False) -> list[dict[str, Any]]:
    """Run the notebooks in order; stop at the first failure unless ``keep_going``."""
    paths = notebooks(NOTEBOOKS_DIR, only)
    if not paths:
        raise LabError(f"No notebooks matching {only or 'NN_*'}.ipynb in {NOTEBOOKS_DIR}.")
    results = []
    for path in paths:
        print(f"[labkit run] {path.name} (SIZE={size})", flush=True)
        results.append(run_notebook(path, size, out_dir, timeout, log_output,
                                    env={"LABKIT_ARTIFACTS": str(out_dir), "LABKIT_CI": "1"}))
        if not results[-1]["ok"] and not keep_going:
            break
    return results


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="labkit run", description="Execute all notebooks in order (papermill).")
    parser.add_argument("--size", default=default_size(), choices=["ci", "small", "full"],
                        help="lab size passed as -p SIZE (default: $LABKIT_SIZE or small)")
    parser.add_argument("--only", default="", help="run only notebooks whose name starts with this, e.g. 03")
    parser.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds allowed per cell")
    parser.add_argument("--out", default="", help="where executed notebooks and figures go (default artifacts/)")
    parser.add_argument("--no-log-output", dest="log_output", action="store_false",
                        help="do not echo cell output to this terminal")
    parser.add_argument("--keep-going", action="store_true", help="run the rest after a failure")
    args = parser.parse_args(argv)
    if args.log_output:  # papermill logs cell output at INFO on its own logger
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        logging.getLogger("papermill").setLevel(logging.INFO)
    out_dir = artifacts_dir(args.out or None)
    results = run_all(args.size, out_dir, args.only, args.timeout, args.log_output, args.keep_going)
    (out_dir / "run_summary.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    failed = [r for r in results if not r["ok"]]
    if failed:
        raise LabError(f"Notebook {failed[0]['notebook']} failed at {failed[0]['error']}; "
                       f"its executed copy is in {out_dir}.")
    return 0
