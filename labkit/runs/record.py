"""The record of one `labkit run`, and the history file (JSON lines) the records are appended to.

A record holds: ``run_id``, ``started``/``finished`` (UTC), ``seconds``, ``ok``, ``size``, ``only``,
``params`` (papermill parameters: ``"*"`` for every notebook, ``"06"`` for one), ``out_dir``,
``notebooks`` (name, seconds, ok, error), ``versions``, ``machine`` (cores, memory, load before and
after), ``lab`` (backend, object store, FUSE) and ``metrics`` (``"06"`` -> that notebook's
``NN_metrics.json`` as written, bookkeeping fields removed). Each run folder also keeps its own
record as ``run.json``.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from labkit.errors import LabError

SCHEMA = 1
RUN_FILE = "run.json"


def new_run_id(now: datetime | None = None) -> str:
    """A sortable id: UTC time of the start and 4 random hex digits, e.g. ``20261130T184400Z-3f2a``."""
    return f"{(now or datetime.now(UTC)):%Y%m%dT%H%M%SZ}-{secrets.token_hex(2)}"


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------ facts
def versions() -> dict[str, str]:
    """labkit, pymilvus, juicefs, MariaDB, Redis, faiss and Python versions ("" when not installed)."""
    from labkit.lab.doctor import _version as first_line
    from labkit.lab.services.binaries import which

    def pkg(name: str) -> str:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return ""

    def binary(names: list[str], flag: str = "--version") -> str:
        path = which(names)
        line = first_line([path, flag]) if path else ""
        found = re.search(r"\d+\.\d+(?:\.\d+)?[\w.+-]*", line)  # e.g. "Ver 10.11.19-MariaDB", "v=7.0.15"
        return found.group(0) if found else line

    try:
        import faiss

        faiss_version = str(getattr(faiss, "__version__", "")) or pkg("faiss-cpu")
    except ImportError:
        faiss_version = ""
    import labkit

    return {"labkit": pkg("labkit") or labkit.__version__, "pymilvus": pkg("pymilvus"),
            "juicefs": binary(["juicefs"], "version"), "mariadb": binary(["mariadbd", "mysqld"]),
            "redis": binary(["redis-server"]), "faiss": faiss_version,
            "python": platform.python_version()}


def lab_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The ``LABKIT_*`` variables of this run (values of names that look secret are masked)."""
    env = os.environ if environ is None else environ
    secret = re.compile(r"PASS|SECRET|TOKEN|KEY", re.IGNORECASE)
    return {k: ("****" if secret.search(k) else v) for k, v in sorted(env.items()) if k.startswith("LABKIT_")}


def load() -> list[float]:
    """1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def machine() -> dict[str, Any]:
    """Cores, memory and what else shapes the numbers (load is added before and after the run)."""
    import psutil

    mem = psutil.virtual_memory()
    return {"cores": os.cpu_count(), "memory_gib": round(mem.total / 2**30, 2),
            "memory_available_gib": round(mem.available / 2**30, 2), "platform": platform.platform(),
            "machine": platform.machine()}


def lab_facts() -> dict[str, Any]:
    """The lab's storage settings as recorded in its state (they survive `labkit down` without --purge)."""
    from labkit.lab.services.juicefs import fuse_available
    from labkit.lab.state import LabState

    state = LabState()
    store = state.get("objectstore") or {}
    mysql = state.get("mysql") or {}
    volume = state.get("juicefs") or {}
    return {"home": str(state.home), "backend": mysql.get("backend", ""),
            "object_store": store.get("store", ""),
            "juicefs_storage": volume.get("storage", store.get("storage", "")), "fuse": fuse_available()[0]}


# ------------------------------------------------------------------------------------ metrics
def collect_metrics(out_dir: Path, results: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``NN_metrics.json`` of each notebook that ran and wrote one during this run (older files are
    left out: ``results[i]["started"]`` is the notebook's start, epoch seconds)."""
    found: dict[str, dict[str, Any]] = {}
    for result in results:
        number = result["notebook"][:2]
        path = out_dir / f"{number}_metrics.json"
        if not path.is_file() or path.stat().st_mtime < result.get("started", 0):
            continue
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError:
            continue
        found[number] = {k: v for k, v in data.items() if k not in ("notebook", "recorded_at")}
    return found


# ------------------------------------------------------------------------------------ history
def append(history: Path, record: dict[str, Any]) -> None:
    """Append one record as one line (locked, so concurrent runs do not interleave)."""
    history.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    with open(history, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(line)
        fh.flush()
        fcntl.flock(fh, fcntl.LOCK_UN)


def read_history(history: Path) -> list[dict[str, Any]]:
    """Every record of a history file, oldest first; a damaged line is a LabError naming it."""
    if not history.is_file():
        return []
    out = []
    for n, line in enumerate(history.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            raise LabError(f"Line {n} of {history} is not a JSON record; fix or remove that line.") from None
    return out


def _read_record(path: Path) -> dict[str, Any]:
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise LabError(f"{path} is not a readable run record ({exc}).") from None
    if not isinstance(record, dict) or "metrics" not in record:
        raise LabError(f"{path} is not a run record (no metrics field).")
    return record


def _newest(records: list[dict[str, Any]], count: int, where: str) -> list[dict[str, Any]]:
    if not records:
        raise LabError(f"{where} holds no runs yet.")
    if count > len(records):
        raise LabError(f"{where} holds {len(records)} runs, fewer than the {count} asked for.")
    return records[-count:]


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise LabError(f"{text!r} is not a number of runs (use e.g. last:3).")
    return int(text)


def resolve(spec: str, history: Path) -> list[dict[str, Any]]:
    """The run(s) ``spec`` names, oldest first. Comma-separated parts, each one of:

    ``last`` or ``last:N`` (the newest N runs of ``history``); a run id or a unique prefix of one
    (in ``history``); a run folder (its ``run.json``); a record file ``*.json``; a history file
    ``*.jsonl`` (its newest run), or ``FILE.jsonl:N`` (its newest N).
    Several runs are repeats of one configuration: their medians are compared, their spread is the noise.
    """
    out: list[dict[str, Any]] = []
    for part in [p.strip() for p in spec.split(",") if p.strip()]:
        name, _, count = part.partition(":")
        if name == "last":
            out += _newest(read_history(history), _count(count or "1"), str(history))
            continue
        path = Path(name)
        if path.is_dir():
            if not (path / RUN_FILE).is_file():
                raise LabError(f"{path} has no {RUN_FILE}; is it the --out folder of a labkit run?")
            out.append(_read_record(path / RUN_FILE))
        elif path.is_file() and path.suffix == ".jsonl":
            out += _newest(read_history(path), _count(count or "1"), str(path))
        elif path.is_file():
            out.append(_read_record(path))
        else:
            matches = [r for r in read_history(history) if str(r.get("run_id", "")).startswith(part)]
            if len(matches) != 1:
                what = "no run" if not matches else f"{len(matches)} runs"
                raise LabError(f"{part!r} is not a file or folder, and {history} has {what} with that id.")
            out += matches
    if not out:
        raise LabError("Name a run: last, last:N, a run id, a run folder, run.json or a history .jsonl file.")
    return out
