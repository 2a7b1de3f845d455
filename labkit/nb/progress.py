"""Progress bars in JupyterLab, plain milestone lines in CI logs."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def in_ci() -> bool:
    """True under CI (``CI`` or ``LABKIT_CI`` set to a true value) or papermill's headless run."""
    for var in ("CI", "LABKIT_CI"):
        if os.environ.get(var, "").lower() in {"1", "true", "yes"}:
            return True
    return False


def milestone(message: str) -> None:
    """A timestamped line that shows up in CI logs (papermill --log-output)."""
    print(f"[labkit {time.strftime('%H:%M:%S')}] {message}", file=sys.stdout, flush=True)


def progress(items: Iterable[T], desc: str = "", total: int | None = None) -> Iterator[T]:
    """tqdm bar in notebooks; in CI one milestone line per ~10% instead of a frozen widget."""
    if not in_ci():
        from tqdm.auto import tqdm

        yield from tqdm(items, desc=desc, total=total)
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    step = max(1, (total or 10) // 10)
    for i, item in enumerate(items, 1):
        yield item
        if i % step == 0 or i == total:
            milestone(f"{desc}: {i}/{total if total else '?'}")
