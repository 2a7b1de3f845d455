"""Lab sizes (ci, small, full) and the knobs derived from them."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from labkit.errors import LabError


@dataclass(frozen=True)
class LabConfig:
    """Everything a notebook derives from its SIZE parameter."""

    size: str
    dim: int  # vector dimension (the article: 128)
    rows: int  # rows inserted in the walk-through notebooks
    batches: int  # first-query benchmark: number of batches
    batch_rows: int  # first-query benchmark: rows per batch (the article: 100,000)
    interval_s: tuple[float, float]  # pause between batches (the article: 1 to 8 s)
    ro_nodes: int  # read-only nodes in the cluster
    nq: int  # queries per search
    topk: int
    fio_size_mb: int  # per fio job
    fio_jobs: int  # the multi-job run
    md_items: int  # metadata benchmark: dirs and files per phase

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SIZES: dict[str, LabConfig] = {
    "ci": LabConfig("ci", 128, 5_000, 3, 5_000, (0.2, 0.5), 2, 10, 10, 32, 2, 100),
    "small": LabConfig("small", 128, 50_000, 5, 20_000, (1.0, 3.0), 2, 10, 10, 128, 4, 300),
    "full": LabConfig("full", 128, 200_000, 10, 100_000, (1.0, 8.0), 2, 10, 10, 1024, 16, 1000),
}


def config(size: str | None = None) -> LabConfig:
    """The LabConfig for ``size``; ``None`` falls back to $LABKIT_SIZE, then "small"."""
    name = (size or os.environ.get("LABKIT_SIZE") or "small").lower()
    if name not in SIZES:
        raise LabError(f"Unknown SIZE {name!r}; choose one of: {', '.join(SIZES)}.")
    return SIZES[name]
