"""Searching through the router while a read node fails: one row per search, labelled by phase.

    loop = SearchLoop(lambda: cluster.connect(router), "lab_routed", queries, truth_ids, topk=10)
    loop.start("both read nodes up")
    ...kill a node...;  loop.phase("ro1 killed")
    ...restart it...;   loop.phase("ro1 restarted")
    rows = loop.stop()

Every search is checked against brute-force ground truth, so "the results stay complete" is measured,
not assumed: a failed search or a missing neighbour shows up as ok False or recall below 1.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from labkit.nb.walkthrough import recall, result_ids


class SearchLoop:
    """Back-to-back searches on a client of its own, in a background thread, until ``stop()``."""

    def __init__(self, connect: Callable[[], Any], collection: str, queries: np.ndarray,
                 truth_ids: np.ndarray, topk: int, params: dict[str, Any] | None = None) -> None:
        self._connect, self.collection, self.topk = connect, collection, topk
        self.queries, self.truth, self.params = np.asarray(queries).tolist(), truth_ids, params or {}
        self.rows: list[dict[str, Any]] = []
        self._phase = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = 0.0

    def start(self, phase: str) -> SearchLoop:
        self._phase, self._t0 = phase, time.perf_counter()
        self._thread = threading.Thread(target=self._run, name="search-loop", daemon=True)
        self._thread.start()
        return self

    def phase(self, name: str, settle_s: float = 0.0) -> None:
        """Label the searches from now on; ``settle_s`` waits so the phase gets some searches."""
        self._phase = name
        time.sleep(settle_s)

    def _run(self) -> None:
        client = self._connect()
        while not self._stop.is_set():
            t = time.perf_counter()
            phase = self._phase
            try:
                status, results = client.search(self.collection, self.topk, self.queries, params=self.params)
                ok, message = status.OK(), status.message
                r = recall(result_ids(results), self.truth) if ok else 0.0
            except Exception as exc:  # noqa: BLE001 - a client-side failure is a failed search, recorded
                ok, message, r = False, f"{type(exc).__name__}: {exc}", 0.0
            self.rows.append({"t_s": round(t - self._t0, 3), "phase": phase, "ok": ok, "recall": r,
                              "latency_s": round(time.perf_counter() - t, 4),
                              "message": "" if ok else message})

    def stop(self) -> list[dict[str, Any]]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        return self.rows


def phase_summary(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per phase, in order: searches, failed, lowest recall, median and slowest latency."""
    out = []
    for phase in dict.fromkeys(r["phase"] for r in rows):
        mine = [r for r in rows if r["phase"] == phase]
        lat = [r["latency_s"] for r in mine]
        out.append({"phase": phase, "searches": len(mine), "failed": sum(not r["ok"] for r in mine),
                    "lowest recall": min(r["recall"] for r in mine),
                    "median latency (s)": round(float(np.median(lat)), 4), "slowest (s)": max(lat)})
    return out
