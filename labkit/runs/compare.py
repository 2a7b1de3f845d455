"""Compare runs: every metric with its change and a verdict (better / same within noise / worse).

Each side is one run or several (repeats of the same configuration). A side's value of a metric is
the median of its samples: one value per run when the side has several runs, else the run's own
repeated measurements when the metric is a list of numbers, else the single value. The change is
the ratio candidate / baseline, judged in the metric's direction (``labkit.runs.metrics``):

* noise band from repeats, when either side has >= 2 samples: ``K * sqrt(s_a**2/n_a + s_b**2/n_b)``
  with ``s`` the relative robust spread (1.4826 * MAD / median) of a side (a side without repeats
  borrows the other's), ``K = 3``, and never below ``MIN_BAND``;
* else the kind's declared default band; a kind marked ``exact`` (recall) has no band at all;
* an absolute difference within the kind's ``floor`` is noise whatever the ratio.

A ratio beyond ``1 + band`` in the bad direction is ``worse``, in the good direction ``better``.
Informational kinds get ``same`` or ``changed``; keys on one side only are ``new`` or ``missing``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from labkit.runs import metrics as mx

K = 3.0
MIN_BAND = 0.02
VERDICTS = ("worse", "better", "same", "changed", "new", "missing")


@dataclass
class Row:
    key: str
    kind: str
    direction: str
    base: Any
    cand: Any
    n_base: int = 0
    n_cand: int = 0
    ratio: float | None = None
    band: float | None = None
    noise: str = ""  # where the band came from
    verdict: str = "same"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Comparison:
    rows: list[Row]
    base_ids: list[str]
    cand_ids: list[str]
    rename: dict[str, str] = field(default_factory=dict)
    context: list[tuple[str, Any, Any]] = field(default_factory=list)  # (fact, baseline, candidate)

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "worse"]

    def counts(self) -> dict[str, int]:
        return {v: sum(r.verdict == v for r in self.rows) for v in VERDICTS}

    def summary(self) -> str:
        c = self.counts()
        return (f"{c['worse']} worse, {c['better']} better, {c['same']} same within noise, "
                f"{c['changed']} changed (informational), {c['new']} new, {c['missing']} missing")

    def as_dict(self) -> dict[str, Any]:
        return {"baseline": self.base_ids, "candidate": self.cand_ids, "rename": self.rename,
                "summary": self.counts(), "context": [list(c) for c in self.context],
                "rows": [r.as_dict() for r in self.rows]}


# ------------------------------------------------------------------------------------ statistics
def samples(records: Sequence[dict[str, Any]], key: str, flat: Sequence[dict[str, Any]]) -> list[Any]:
    """A side's samples of ``key``: one per run when there are several runs, else the run's own list."""
    values = [f[key] for f in flat if key in f]
    if len(values) == 1:
        return list(values[0]) if mx.is_samples(values[0]) else values
    return [statistics.median(v) if mx.is_samples(v) else v for v in values]


def rel_spread(values: Sequence[float]) -> float | None:
    """Robust relative spread: 1.4826 * MAD / |median| (None for < 2 values or a zero median)."""
    if len(values) < 2:
        return None
    med = statistics.median(values)
    if med == 0:
        return None
    mad = statistics.median(abs(v - med) for v in values)
    return 1.4826 * mad / abs(med)


def noise_band(a: Sequence[float], b: Sequence[float], kind: mx.Kind) -> tuple[float, str]:
    """(relative band, where it came from) for two sides' samples of a metric of ``kind``."""
    if kind.exact:
        return 0.0, "exact"
    sa, sb = rel_spread(a), rel_spread(b)
    if sa is None and sb is None:
        return kind.band, f"default ±{kind.band:.0%}"
    sa = sb if sa is None else sa
    sb = sa if sb is None else sb
    band = max(MIN_BAND, K * math.sqrt(sa**2 / len(a) + sb**2 / len(b)))
    return band, f"repeats n={len(a)}/{len(b)}"


def verdict(base: float, cand: float, kind: mx.Kind, band: float) -> str:
    """better / same / worse for medians ``base`` -> ``cand`` of a directional metric."""
    if cand == base or abs(cand - base) <= kind.floor:
        return "same"
    worse_if_up = kind.direction == "lower"
    up = cand > base
    if kind.exact:
        return "worse" if up == worse_if_up else "better"
    if base == 0 or (base > 0) != (cand > 0):  # no meaningful ratio: the difference decides
        return "worse" if up == worse_if_up else "better"
    ratio = cand / base
    if max(ratio, 1 / ratio) <= 1 + band:
        return "same"
    return "worse" if up == worse_if_up else "better"


# ------------------------------------------------------------------------------------ comparison
def _renamed(flat: dict[str, Any], rename: dict[str, str]) -> dict[str, Any]:
    out = {}
    for key, value in flat.items():
        for old, new in rename.items():
            key = key.replace(old, new)
        out[key] = value
    return out


def context_diff(base: Sequence[dict[str, Any]],
                 cand: Sequence[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    """Parameters, versions, lab and machine facts that differ between the two sides' newest runs."""
    if not base or not cand:
        return []
    a, b = base[-1], cand[-1]
    facts = []
    for section in ("size", "params", "env", "versions", "lab"):
        fa, fb = mx.flatten({section: a.get(section)}, "x"), mx.flatten({section: b.get(section)}, "x")
        for key in sorted(set(fa) | set(fb)):
            if fa.get(key) != fb.get(key):
                facts.append((key[2:], fa.get(key), fb.get(key)))
    for key in ("cores", "memory_gib"):
        ma, mb = (a.get("machine") or {}).get(key), (b.get("machine") or {}).get(key)
        if ma != mb:
            facts.append((f"machine.{key}", ma, mb))
    return facts


def compare(base: Sequence[dict[str, Any]], cand: Sequence[dict[str, Any]],
            rename: dict[str, str] | None = None) -> Comparison:
    """Compare candidate runs ``cand`` with baseline runs ``base`` (history records).

    ``rename`` maps substrings of the candidate's keys to the baseline's, e.g. ``{"lazy_": "preload_"}``
    compares the candidate's lazy first query with the baseline's preload one.
    """
    rename = dict(rename or {})
    flat_a = [mx.of_record(r) for r in base]
    flat_b = [_renamed(mx.of_record(r), rename) for r in cand]
    keys = sorted(set().union(*flat_a, *flat_b)) if flat_a or flat_b else []
    rows = []
    for key in keys:
        a, b = samples(base, key, flat_a), samples(cand, key, flat_b)
        probe = (a or b)[0]
        kind = mx.kind_of(key, probe)
        row = Row(key, kind.name, kind.direction, None, None, len(a), len(b))
        if not a or not b:
            row.base = _summary(a) if a else None
            row.cand = _summary(b) if b else None
            row.verdict = "new" if not a else "missing"
        elif not (all(mx.is_number(v) for v in a) and all(mx.is_number(v) for v in b)):
            row.base, row.cand = a[-1], b[-1]
            row.verdict = "same" if a[-1] == b[-1] else "changed"
        else:
            row.base, row.cand = statistics.median(a), statistics.median(b)
            row.ratio = row.cand / row.base if row.base else None
            if not kind.gating:
                row.verdict = "same" if row.base == row.cand else "changed"
            else:
                row.band, row.noise = noise_band(a, b, kind)
                row.verdict = verdict(row.base, row.cand, kind, row.band)
        rows.append(row)
    return Comparison(rows, [r.get("run_id", "?") for r in base], [r.get("run_id", "?") for r in cand],
                      rename, context_diff(base, cand))


def _summary(values: list[Any]) -> Any:
    if all(mx.is_number(v) for v in values):
        return statistics.median(values)
    return values[-1]
