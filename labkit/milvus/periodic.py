"""A call repeated on a daemon thread every few seconds until stopped (pushers, renewals, placement)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    """``fn()`` every ``interval`` seconds from ``start()`` until ``stop()``; the first call comes at
    once with ``at_start``, else after one interval. ``fn`` handles its own errors."""

    def __init__(self, fn: Callable[[], None], interval: float, name: str, at_start: bool = False) -> None:
        self.fn, self.interval, self.name, self.at_start = fn, interval, name, at_start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Periodic:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        if not self.at_start and self._stop.wait(self.interval):
            return
        while not self._stop.is_set():
            self.fn()
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
