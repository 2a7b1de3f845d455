"""The router's counters, safe to add to from the gRPC and fan-out worker threads."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping


class Counters:
    """Named integer counters behind one lock; ``snapshot()`` for reports."""

    def __init__(self, names: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(names, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + n

    def add_all(self, counts: Mapping[str, int]) -> None:
        with self._lock:
            for name, n in counts.items():
                self._values[name] = self._values.get(name, 0) + n

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)
