"""Where a server's requests spend their time: cumulative seconds per stage, per request kind.

The node and the router both time the stages of a search (metadata, fan-out, search, merge, reply)
and report the totals through their Cmd (``labkit_stats`` / ``labkit_topology``); a benchmark reads them
before and after its timed searches and divides by the calls, so no timing crosses the wire per call.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict


class StageTimes:
    """``add(kind, stage, seconds)`` totals, thread safe; ``snapshot()`` is plain data."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sums: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._calls: dict[str, int] = defaultdict(int)

    def record(self, kind: str, stages: dict[str, float]) -> None:
        """One request of ``kind`` and the seconds each of its stages took."""
        with self._lock:
            self._calls[kind] += 1
            sums = self._sums[kind]
            for stage, seconds in stages.items():
                sums[stage] += seconds

    def snapshot(self) -> dict[str, dict]:
        """kind -> {"calls": n, "seconds": {stage: total}}."""
        with self._lock:
            return {k: {"calls": self._calls[k],
                        "seconds": {s: round(v, 6) for s, v in self._sums[k].items()}}
                    for k in self._calls}


class Clock:
    """Stage durations of one request: ``lap("stage")`` closes the stage that ran since the last lap."""

    __slots__ = ("stages", "started", "_last")

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self.started = self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self._last
        self._last = now


def per_call(before: dict[str, dict], after: dict[str, dict], kind: str) -> dict[str, float] | None:
    """Milliseconds per call of each stage of ``kind`` between two ``snapshot()``s (None: no calls).

    Stages are consecutive laps of one request, so ``total`` (their sum) is the time in the server.
    """
    a, b = after.get(kind), before.get(kind, {"calls": 0, "seconds": {}})
    if not a:
        return None
    calls = a["calls"] - b["calls"]
    if calls <= 0:
        return None
    out = {s: round((v - b["seconds"].get(s, 0.0)) / calls * 1000, 3) for s, v in a["seconds"].items()}
    out["total"] = round(sum(out.values()), 3)
    out["calls"] = calls
    return out
