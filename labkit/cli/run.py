"""`labkit run`: execute the notebooks in order with papermill, record the run, report and compare it.

    labkit run [--size ci|small|full] [--only 05,06] [-p NAME VALUE | -p NN:NAME=VALUE ...]
               [--out DIR] [--history FILE] [--baseline RUN_OR_FILE] [--rename OLD=NEW]
               [--timeout 900] [--no-log-output] [--keep-going] [--no-html]

Each notebook runs with kernel python3, its folder as working directory, an execution timeout per
cell and the papermill parameters ``SIZE``, ``OUT_DIR`` (figures, metrics and executed copies land
together) and any ``-p``: ``-p SEED 3`` (or ``-p SEED=3``) for every notebook, ``-p 06:MODE lazy``
for notebook 06 only; values are typed as papermill types them (``3`` int, ``0.5`` float,
``True``/``False``, ``None``, else a string). The run stops at the first failing notebook (later
ones build on it) unless ``--keep-going``.

Afterwards, whatever the outcome, the run's record (parameters, versions, machine, every metric of
``NN_metrics.json``; see ``labkit.runs.record``) is appended to the history (default
``artifacts/history.jsonl``) and saved as ``<out>/run.json``; ``<out>/report.md`` and ``report.html``
compare it with ``--baseline`` (or, informationally, with the previous run of the same size and
notebooks), and ``<out>/html/`` holds every executed notebook rendered to HTML with an index page.

Exit status: 0; 1 when a notebook failed (one sentence naming it); 2 for bad arguments; 3 when
``--baseline`` was given and a metric is worse beyond its noise band.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import procs
from labkit.lab.state import REPO_ROOT
from labkit.nb.artifacts import artifacts_dir

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
DEFAULT_TIMEOUT = 900  # seconds per cell
HISTORY_FILE = "history.jsonl"
EXIT_REGRESSION = 3
RESERVED = ("OUT_DIR",)  # set by the runner (--out)


def _prefixes(only: str) -> list[str]:
    return [p.strip() for p in only.split(",") if p.strip()]


def notebooks(folder: Path | str = NOTEBOOKS_DIR, only: str = "") -> list[Path]:
    """``NN_*.ipynb`` in ``folder``, in order; ``only`` ("03" or "05,06") keeps names starting with those."""
    found = sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))
    prefixes = _prefixes(only)
    return [p for p in found if not prefixes or any(p.name.startswith(x) for x in prefixes)]


def default_size() -> str:
    return os.environ.get("LABKIT_SIZE") or "small"


# ------------------------------------------------------------------------------------ parameters
def parse_value(text: str) -> Any:
    """A command-line value typed as papermill's ``-p`` types it."""
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_params(items: Sequence[Sequence[str]], numbers: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """``-p`` arguments -> ``{"*": {...}, "06": {...}}``; ``numbers``: the notebooks of this run."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if len(item) == 1 and "=" in item[0]:
            name, value = item[0].split("=", 1)
        elif len(item) == 2:
            name, value = item
        else:
            raise LabError("-p takes NAME VALUE or NAME=VALUE (NN:NAME for one notebook), "
                           f"not {' '.join(item)!r}.")
        scope, _, name = name.rpartition(":")
        scope = scope or "*"
        if scope != "*" and not re.fullmatch(r"\d\d", scope):
            raise LabError(f"{scope!r} is not a notebook number; write e.g. -p 06:{name} {value}.")
        if scope != "*" and numbers and scope not in numbers:
            raise LabError(f"-p {scope}:{name}: notebook {scope} is not part of this run "
                           f"({', '.join(numbers)}).")
        if not name.isidentifier():
            raise LabError(f"{name!r} is not a parameter name (a Python identifier, e.g. SIZE or SEED).")
        if name in RESERVED:
            raise LabError(f"{name} is set by labkit run; use --out instead.")
        out.setdefault(scope, {})[name] = parse_value(value)
    from labkit.nb.sizes import SIZES

    for scope, values in out.items():
        if "SIZE" in values and values["SIZE"] not in SIZES:
            raise LabError(f"Unknown SIZE {values['SIZE']!r} (-p {'' if scope == '*' else scope + ':'}SIZE); "
                           f"choose one of: {', '.join(SIZES)}.")
    return out


def notebook_params(params: Mapping[str, Mapping[str, Any]], number: str) -> dict[str, Any]:
    """The ``-p`` values for notebook ``number``: the ones for all, then its own."""
    return {**params.get("*", {}), **params.get(number, {})}


def parse_rename(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        old, sep, new = item.partition("=")
        if not sep or not old:
            raise LabError(f"--rename takes OLD=NEW (e.g. lazy_=preload_), not {item!r}.")
        out[old] = new
    return out


# ------------------------------------------------------------------------------------ execution
def run_notebook(path: Path, size: str, out_dir: Path, timeout: int = DEFAULT_TIMEOUT,
                 log_output: bool = True, env: Mapping[str, str] | None = None,
                 params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Execute one notebook; returns name, started (epoch s), seconds, ok and (on failure) the error.

    ``params`` are papermill parameters beyond SIZE and OUT_DIR (they may override SIZE).
    ``env`` entries are set for the kernel (it inherits this process's environment) and restored after.
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    start = time.monotonic()
    error = ""
    try:
        with procs.environ(dict(env or {})):  # the kernel inherits them
            pm.execute_notebook(str(path), str(out_dir / path.name),
                                parameters={"SIZE": size, "OUT_DIR": str(out_dir), **(params or {})},
                                kernel_name="python3", cwd=str(path.parent), execution_timeout=timeout,
                                log_output=log_output, progress_bar=False)
    except pm.PapermillExecutionError as exc:
        error = f"cell {exc.exec_count}: {exc.ename}: {exc.evalue}"
    except CellTimeoutError as exc:
        error = f"a cell ran longer than {timeout} s ({str(exc).splitlines()[0]})"
    except DeadKernelError as exc:  # e.g. killed for memory: recorded like any other failure
        error = f"the kernel died ({str(exc).splitlines()[0] if str(exc) else 'no message'})"
    return {"notebook": path.name, "started": round(started, 3),
            "seconds": round(time.monotonic() - start, 1), "ok": not error, "error": error}


def run_all(size: str, out_dir: Path, only: str = "", timeout: int = DEFAULT_TIMEOUT,
            log_output: bool = True, keep_going: bool = False,
            params: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Run the notebooks in order; stop at the first failure unless ``keep_going``."""
    paths = selected(only)
    results = []
    for path in paths:
        own = notebook_params(params or {}, path.name[:2])
        shown = ", ".join(f"{k}={v}" for k, v in {"SIZE": size, **own}.items())
        print(f"[labkit run] {path.name} ({shown})", flush=True)
        results.append(run_notebook(path, size, out_dir, timeout, log_output,
                                    env={"LABKIT_ARTIFACTS": str(out_dir), "LABKIT_CI": "1"}, params=own))
        if not results[-1]["ok"] and not keep_going:
            break
    return results


def selected(only: str) -> list[Path]:
    """The notebooks ``--only`` names; a prefix that matches none is an error, not a silent skip."""
    paths = notebooks(NOTEBOOKS_DIR, only)
    missing = [p for p in _prefixes(only) if not any(x.name.startswith(p) for x in paths)]
    if not paths or missing:
        raise LabError(f"No notebooks matching {','.join(missing) or only or 'NN_*'} in {NOTEBOOKS_DIR}.")
    return paths


# ------------------------------------------------------------------------------------ the command
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="labkit run", description="Execute the notebooks in order (papermill), "
                                "record the run in the history, report it and compare it with a baseline.")
    p.add_argument("--size", default=default_size(), choices=["ci", "small", "full"],
                   help="lab size passed as -p SIZE (default: $LABKIT_SIZE or small)")
    p.add_argument("--only", default="", help="notebooks whose names start with these, e.g. 03 or 05,06")
    p.add_argument("-p", "--parameter", dest="params", action="append", nargs="+", default=[],
                   metavar=("NAME", "VALUE"),
                   help="papermill parameter for every notebook (-p SEED 3) or one "
                   "(-p 06:MODE lazy); NAME=VALUE also works; repeatable")
    p.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds allowed per cell")
    p.add_argument("--out", default="", help="folder for this run's executed notebooks, figures, metrics, "
                   "report (default artifacts/)")
    p.add_argument("--history", default="", help=f"history file the record is appended to "
                   f"(default artifacts/{HISTORY_FILE})")
    p.add_argument("--no-history", action="store_true", help="do not append this run to the history")
    p.add_argument("--baseline", default="", metavar="RUN_OR_FILE",
                   help="compare with this run and exit 3 on a regression: last, last:N, a run id, a run "
                   "folder, a run.json or a history .jsonl; comma-separated runs are repeats")
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                   help="compare this run's keys containing OLD with the baseline's containing NEW")
    p.add_argument("--no-log-output", dest="log_output", action="store_false",
                   help="do not echo cell output to this terminal")
    p.add_argument("--keep-going", action="store_true", help="run the rest after a failure")
    p.add_argument("--no-html", action="store_true", help="skip the HTML rendering of the notebooks")
    return p


def history_path(arg: str = "") -> Path:
    return Path(arg) if arg else artifacts_dir() / HISTORY_FILE


def previous_comparable(history: Sequence[dict[str, Any]], record: dict[str, Any]) -> list[dict[str, Any]]:
    """The newest earlier successful run with the same size and notebooks (an informational baseline)."""
    names = [n["notebook"] for n in record["notebooks"]]
    for old in reversed(history):
        if (old.get("run_id") != record["run_id"] and old.get("ok") and old.get("size") == record["size"]
                and [n["notebook"] for n in old.get("notebooks", [])] == names):
            return [old]
    return []


def cli(argv: list[str]) -> int:
    from labkit.runs import compare, html, record, report

    args = _parser().parse_args(argv)
    paths = selected(args.only)
    params = parse_params(args.params, [p.name[:2] for p in paths])
    size = params.get("*", {}).get("SIZE", args.size)
    rename = parse_rename(args.rename)
    history = history_path(args.history)
    # a bad run name fails before the notebooks run, not after
    baseline = record.resolve(args.baseline, history) if args.baseline else None
    out_dir = artifacts_dir(args.out or None)
    if args.log_output:  # papermill logs cell output at INFO on its own logger
        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        logging.getLogger("papermill").setLevel(logging.INFO)

    rec: dict[str, Any] = {"schema": record.SCHEMA, "run_id": record.new_run_id(),
                           "started": record.utc_now(), "size": size, "only": args.only, "params": params,
                           "out_dir": str(out_dir),
                           "env": record.lab_env(),
                           "versions": record.versions(), "machine": record.machine()}
    rec["machine"]["load_before"] = record.load()
    t0 = time.monotonic()
    results = run_all(size, out_dir, args.only, args.timeout, args.log_output, args.keep_going, params)
    rec.update(seconds=round(time.monotonic() - t0, 1), finished=record.utc_now(),
               ok=all(r["ok"] for r in results) and len(results) == len(paths),
               notebooks=[{k: r[k] for k in ("notebook", "seconds", "ok", "error")} for r in results],
               lab=record.lab_facts(), metrics=record.collect_metrics(out_dir, results))
    rec["machine"]["load_after"] = record.load()
    (out_dir / record.RUN_FILE).write_text(json.dumps(rec, indent=2, default=str))
    if not args.no_history:
        record.append(history, rec)

    past = record.read_history(history) if history.is_file() else []
    gating = baseline is not None
    base = baseline if gating else previous_comparable(past, rec)
    comparison = compare.compare(base, [rec], rename) if base else None
    trend_history = past if not args.no_history else [*past, rec]
    md, page = report.write(out_dir, rec, trend_history, comparison, gating,
                            links=[("executed notebooks", f"{html.HTML_DIR}/index.html")])
    if not args.no_html:
        index = html.render_run(out_dir, results, rec["run_id"], links=[("run report", "../report.html")])
        print(f"[labkit run] notebooks as HTML: {index}")
    if comparison and gating:
        print(report.comparison_markdown(comparison))
    elif comparison:
        print(f"[labkit run] against the previous run {comparison.base_ids[0]} (informational): "
              f"{comparison.summary()}")
    kept = out_dir / record.RUN_FILE if args.no_history else history
    print(f"[labkit run] run {rec['run_id']}: record in {kept}; report {page} and {md}")

    failed = [r for r in results if not r["ok"]]
    if failed:
        raise LabError(f"Notebook {failed[0]['notebook']} failed at {failed[0]['error']}; "
                       f"its executed copy is in {out_dir}.")
    if gating and comparison and comparison.regressions:
        worst = ", ".join(r.key for r in comparison.regressions[:5])
        print(f"[labkit run] REGRESSION against {', '.join(comparison.base_ids)}: {worst}")
        return EXIT_REGRESSION
    return 0
