"""A buffer whose pages already exist, ready for the next large file read.

Reading a 53 MB index through JuiceFS took 108-128 ms (p50 of 10 loads, three first-query runs) into a
new array and 58-74 ms into one whose pages were already in place: a new buffer's page faults are
paid inside the reads. So after each large read the next buffer of that size is made and its pages
touched off the load's path. A read buffer becomes the loaded segment's memory (faiss reads an index
in place) and is never handed out twice; at most one spare of at most ``MAX_BYTES`` is held.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

MIN_BYTES = 8 << 20  # smaller reads fault in little time
MAX_BYTES = 256 << 20  # the most a node holds in advance
_PAGE = 4096

_lock = threading.Lock()
_spare: np.ndarray | None = None
_pending: int | None = None  # size being prepared


def take(size: int) -> np.ndarray:
    """``size`` bytes to read into: the spare when it fits (up to 1/16 larger), else a new array."""
    global _spare
    with _lock:
        if _spare is not None and size <= _spare.size <= size + size // 16:
            buf, _spare = _spare[:size], None
            return buf
    return np.empty(size, dtype=np.uint8)


def prepare(size: int, submit: Callable[[Callable[[], None]], Any]) -> None:
    """Have ``submit`` make the spare for a next read of ``size`` bytes (large reads only)."""
    global _pending
    if not MIN_BYTES <= size <= MAX_BYTES:
        return
    with _lock:
        if _pending == size or (_spare is not None and _spare.size == size):
            return
        _pending = size
    submit(lambda: _make(size))


def _make(size: int) -> None:
    global _spare, _pending
    buf = np.empty(size, dtype=np.uint8)
    buf[::_PAGE] = 0  # every page now, rather than during the next read
    with _lock:
        _spare = buf  # a newer size replaces an older spare
        if _pending == size:
            _pending = None
