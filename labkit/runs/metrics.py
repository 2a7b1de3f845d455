"""What each metric is: its kind, and so its direction and default noise band. The one place that says so.

Metrics come from the notebooks' ``artifacts/NN_metrics.json`` (any keys; nested dicts are flattened
to dotted keys prefixed with the notebook number, e.g. ``06.preload_first_s.p50``) and from the run
itself (``run.06.seconds``: the notebook's wall time; ``run.seconds``: the whole run). A key's kind is
the first pattern in ``PATTERNS`` that matches it (``fnmatch`` on the key without the ``NN.`` prefix);
a key no pattern knows is ``unknown`` and only informational, so a new metric never fails a
comparison until it is declared here. Booleans and strings are informational whatever their name.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """How a kind of metric is compared.

    ``direction``: "lower" or "higher" is better, or "info" (shown, never a verdict).
    ``band``: default noise band, relative (0.3: a change within x1.3 either way is noise); used only
    when the runs hold no repeated measurements of the metric. ``floor``: absolute differences up to
    this (in the metric's own unit) are noise. ``exact``: compared without any band.
    """

    name: str
    direction: str
    band: float = 0.0
    floor: float = 0.0
    exact: bool = False
    unit: str = ""

    @property
    def gating(self) -> bool:
        return self.direction in ("lower", "higher")


KINDS: dict[str, Kind] = {k.name: k for k in (
    # one query or operation, in seconds, mostly single shots on 2 shared cores: millisecond values
    # jitter by tens of percent between identical runs, hence the wide band and the 5 ms floor
    Kind("latency", "lower", band=0.50, floor=0.005, unit="s"),
    Kind("latency_ms", "lower", band=0.50, floor=5.0, unit="ms"),
    # a whole notebook or benchmark, in seconds (kernel start, machine load): wide band, 5 s floor
    Kind("duration", "lower", band=0.50, floor=5.0, unit="s"),
    Kind("throughput", "higher", band=0.25),
    # speed of one target over another (notebook 05's ratios): > 1 means the first is faster
    Kind("speed_ratio", "higher", band=0.35),
    # search quality must not drop at all
    Kind("recall", "higher", exact=True),
    Kind("count", "info"),
    Kind("setting", "info"),
    Kind("flag", "info"),
    Kind("text", "info"),
    Kind("unknown", "info"),
)}

# (pattern on the key without its "NN." prefix, kind); the first match wins
PATTERNS: tuple[tuple[str, str], ...] = (
    ("plan.*", "setting"),
    ("*.n", "count"),
    ("*recall*", "recall"),
    ("ratios.*", "speed_ratio"),
    ("*mib_s*", "throughput"),
    ("*mb_s*", "throughput"),
    ("*_per_s*", "throughput"),
    ("*ops_s*", "throughput"),
    ("*iops*", "throughput"),
    ("*qps*", "throughput"),
    ("*throughput*", "throughput"),
    ("*_ms", "latency_ms"),
    ("*_ms.*", "latency_ms"),
    ("seconds", "duration"),
    ("*.seconds", "duration"),
    ("*_seconds", "duration"),
    ("*_s", "latency"),
    ("*_s.*", "latency"),
    ("*port*", "setting"),
    ("size", "setting"),
    ("*_code", "setting"),
    ("*version*", "setting"),
    ("*bytes*", "count"),
)

# keys drawn as trend small multiples in the report (full keys, notebook prefix included)
KEY_PATTERNS: tuple[str, ...] = (
    "06.*_first_s.p50", "06.*_freshness_s.p50", "06.*_warm_s.p50",
    "05.ratios.*.write_1", "05.ratios.*.read_1", "05.seconds",
    "02.write_close_s", "02.open_read_s",
    "*recall*",
    "*.p50",
    "run.seconds",
)
MAX_KEY_METRICS = 16

SKIPPED = ("notebook", "recorded_at")  # bookkeeping fields of every NN_metrics.json


def kind_of(key: str, value: Any = None) -> Kind:
    """The kind of metric ``key`` (full dotted key); booleans and strings are informational."""
    if isinstance(value, bool):
        return KINDS["flag"]
    if isinstance(value, str):
        return KINDS["text"]
    _, _, path = key.partition(".")
    for pattern, kind in PATTERNS:
        if fnmatch.fnmatchcase(path, pattern):
            return KINDS[kind]
    return KINDS["unknown"]


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_samples(value: Any) -> bool:
    """A list of numbers: repeated measurements of one metric."""
    return isinstance(value, list) and len(value) > 0 and all(is_number(v) for v in value)


def flatten(metrics: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"<prefix>.a.b": 1}``. A list of numbers stays a list: repeated
    measurements of its key (compared by median, its spread is the noise); other lists are left out,
    and so are the bookkeeping fields at the top level."""
    out: dict[str, Any] = {}
    for name, value in metrics.items():
        if name in SKIPPED and prefix.count(".") == 0:
            continue
        key = f"{prefix}.{name}"
        if isinstance(value, dict):
            out.update(flatten(value, key))
        elif is_samples(value) or isinstance(value, bool | str) or is_number(value):
            out[key] = value
    return out


def of_record(record: dict[str, Any]) -> dict[str, Any]:
    """Every metric of a history record: the notebooks' metrics and the run's own wall times."""
    out: dict[str, Any] = {}
    for number, metrics in sorted((record.get("metrics") or {}).items()):
        out.update(flatten(metrics, number))
    for nb in record.get("notebooks") or []:
        if nb.get("ok") and is_number(nb.get("seconds")):
            out[f"run.{nb['notebook'][:2]}.seconds"] = nb["seconds"]
    if record.get("ok") and is_number(record.get("seconds")):
        out["run.seconds"] = record["seconds"]
    return out


def key_metrics(keys: list[str]) -> list[str]:
    """The keys among ``keys`` drawn as trends, in ``KEY_PATTERNS`` order, at most MAX_KEY_METRICS."""
    chosen: list[str] = []
    for pattern in KEY_PATTERNS:
        for key in sorted(keys):
            if key not in chosen and fnmatch.fnmatchcase(key, pattern) and kind_of(key).gating:
                chosen.append(key)
    if not chosen:  # e.g. only 00 and 99 ran: their wall times
        chosen = sorted(k for k in keys if k.startswith("run."))
    return chosen[:MAX_KEY_METRICS]
