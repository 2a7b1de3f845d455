"""Storage comparison of the article (notebook 05): throughput (fio) and metadata ops per file system.

``run_storage(size)`` sets up every target (local disk, JuiceFS on the file store and on the S3
emulator, s3fs on the same emulator, bindfs, user paths such as a real EFS mount), measures each or
records why it was skipped, tears everything down and returns one dict (JSON-ready). The published
JuiceFS / EFS / S3FS figures ride along under ``published``, labelled as not measured here.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from labkit.bench import add_output_args, emit, results_only_on_stdout
from labkit.bench.published import MD_OPS, published, published_ratios
from labkit.bench.storage_fio import throughput
from labkit.bench.storage_meta import MetaRun, run_metadata
from labkit.bench.storage_targets import DEFAULT_TARGETS, Scratch, Target
from labkit.errors import LabError
from labkit.lab.services.binaries import which
from labkit.lab.state import lab_home
from labkit.nb.progress import milestone
from labkit.nb.sizes import config

THROUGHPUT_KEYS = ("write_1", "read_1", "write_multi", "read_multi")
# s3fs creates ~15 entries/s; like the published run (344 items vs 12,440) it gets fewer items.
S3FS_ITEMS_DIVISOR = 10
# moto keeps every object in RAM: cap the data an S3-emulator target gets per fio run (jobs x size)
S3_EMULATOR_MAX_MB = 1024
# JuiceFS target -> the baselines its ratios are taken against
RATIO_PAIRS: tuple[tuple[str, str], ...] = (
    ("juicefs-s3", "s3fs-s3"), ("juicefs-file", "local"), ("juicefs-file", "bindfs"),
)


def parse_paths(specs: Sequence[str] | Mapping[str, str] | None) -> dict[str, str]:
    """``["efs=/mnt/efs", "/mnt/nfs"]`` or a mapping -> ``{name: path}``; names default to user1, user2..."""
    if not specs:
        return {}
    if isinstance(specs, Mapping):
        return {str(k): str(v) for k, v in specs.items()}
    out: dict[str, str] = {}
    for i, spec in enumerate(specs, 1):
        name, sep, path = spec.partition("=")
        out[name if sep else f"user{i}"] = path if sep else spec
    return out


def ratios(targets: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """JuiceFS / baseline per metric for every measured pair (and JuiceFS / each user path)."""
    by_name = {t["name"]: t for t in targets if t["status"] == "measured"}
    pairs = list(RATIO_PAIRS) + [(j, t["name"]) for t in targets if t["kind"] == "user"
                                 for j in ("juicefs-file", "juicefs-s3")]
    out: dict[str, dict[str, float]] = {}
    for num, den in pairs:
        if num not in by_name or den not in by_name:
            continue
        row = {}
        for section, keys in (("throughput", THROUGHPUT_KEYS), ("metadata", MD_OPS)):
            a, b = by_name[num].get(section) or {}, by_name[den].get(section) or {}
            for k in keys:
                if a.get(k) and b.get(k):
                    row[k] = round(a[k] / b[k], 2)
        out[f"{num}/{den}"] = row
    return out


def _target_row(t: Target) -> dict[str, Any]:
    row: dict[str, Any] = {"name": t.name, "kind": t.kind, "label": t.label,
                           "status": "skipped" if t.skipped else "measured", **t.info}
    if t.skipped:
        row["reason"] = t.skipped
    return row


def run_storage(size: str | None = None, targets: Sequence[str] = DEFAULT_TARGETS,
                paths: Sequence[str] | Mapping[str, str] | None = None, pause_s: float = 1.1,
                workdir: str | os.PathLike[str] | None = None, use_fio: bool | None = None) -> dict[str, Any]:
    """Measure every target; the returned dict lists each one as measured or skipped with a reason."""
    cfg = config(size)
    unknown = [t for t in targets if t not in DEFAULT_TARGETS]
    if unknown:
        raise LabError(f"Unknown storage target {unknown[0]!r}; choose from {', '.join(DEFAULT_TARGETS)}.")
    user = parse_paths(paths)
    root = Path(workdir or lab_home() / "bench" / f"storage-{os.getpid()}-{int(time.time())}")
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with Scratch(root) as scratch:
        made = [scratch.make(name) for name in targets]
        made += [scratch.user_path(name, path) for name, path in user.items()]
        for t in made:
            rows.append(_target_row(t))
            milestone(f"storage: {t.name} " + (f"skipped ({t.skipped})" if t.skipped else "ready"))
        live = [t for t in made if t.ok]
        for t, row in zip(made, rows, strict=True):
            if not t.ok:
                continue
            milestone(f"storage: fio on {t.name}")
            try:
                assert t.path is not None
                size_mb = cfg.fio_size_mb
                if t.name.endswith("-s3"):
                    size_mb = max(4, min(size_mb, S3_EMULATOR_MAX_MB // cfg.fio_jobs))
                row["throughput"] = throughput(t.path, cfg.fio_jobs, size_mb,
                                               juicefs=t.kind == "juicefs", use_fio=use_fio)
            except LabError as exc:
                row["throughput"] = None
                row["throughput_error"] = str(exc)
        milestone("storage: metadata phases on " + ", ".join(t.name for t in live))
        items = {t.name: max(10, cfg.md_items // S3FS_ITEMS_DIVISOR) if t.kind == "s3fs" else cfg.md_items
                 for t in live}
        runs = {t.name: MetaRun(t.path / "mdtest", items[t.name]) for t in live if t.path is not None}
        meta = run_metadata(runs, pause_s=pause_s)
        for t, row in zip(made, rows, strict=True):
            if t.name in meta:
                row["md_items"] = items[t.name]
                err = meta[t.name].pop("error", None)
                row["metadata"] = meta[t.name]
                if err:
                    row["metadata_error"] = err
        problems = scratch.close()
    return {
        "benchmark": "storage",
        "size": cfg.size,
        "config": {"fio_size_mb": cfg.fio_size_mb, "fio_jobs": cfg.fio_jobs, "md_items": cfg.md_items,
                   "pause_s": pause_s, "block": "4M",
                   "fio": bool(which(["fio"])) if use_fio is None else use_fio, "root": os.geteuid() == 0},
        "targets": rows,
        "ratios": ratios(rows),
        "published": published(),
        "published_ratios": {"fio": published_ratios("fio"), "mdtest": published_ratios("mdtest")},
        "efs_note": EFS_NOTE,
        "cleanup_problems": problems,
        "seconds": round(time.perf_counter() - t0, 1),
    }


EFS_NOTE = ("Amazon EFS cannot be reproduced on this machine (it is a managed NFS service inside AWS, and "
            "this kernel has no NFS client). The EFS figures are the published ones. To measure EFS, run on "
            "an EC2 VM with EFS mounted (e.g. at /mnt/efs): `labkit bench storage --size small --path "
            "efs=/mnt/efs --json`, or set PATHS = {'efs': '/mnt/efs'} in notebook 05.")


def summary_table(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One flat row per target (throughput and metadata side by side) for a DataFrame or print."""
    out = []
    for t in result["targets"]:
        row = {"target": t["name"], "status": t["status"]}
        row.update({k: (t.get("throughput") or {}).get(k) for k in THROUGHPUT_KEYS})
        row.update({k: (t.get("metadata") or {}).get(k) for k in MD_OPS})
        if t["status"] == "skipped":
            row["reason"] = t["reason"]
        out.append(row)
    return out


def save_json(result: Mapping[str, Any], name: str = "05_storage", out_dir: str | None = None) -> Path:
    from labkit.nb.artifacts import save_json as save

    return save(result, name, out_dir)


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labkit bench storage", description=__doc__.splitlines()[0])
    p.add_argument("--size", default=None, help="ci, small or full (default $LABKIT_SIZE, then small)")
    p.add_argument("--targets", default=",".join(DEFAULT_TARGETS), help="comma list of built-in targets")
    p.add_argument("--path", action="append", default=[], metavar="NAME=PATH",
                   help="also measure this directory, e.g. efs=/mnt/efs (repeatable)")
    p.add_argument("--pause", type=float, default=1.1, help="seconds between metadata phases (default 1.1)")
    p.add_argument("--no-fio", action="store_true", help="use the pure-Python fallback even if fio exists")
    add_output_args(p)
    args = p.parse_args(argv)
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    with results_only_on_stdout():  # progress lines never mix with the JSON
        result = run_storage(args.size, names, args.path, args.pause, use_fio=False if args.no_fio else None)
    emit(result, args, summary_table(result))
    return 0
