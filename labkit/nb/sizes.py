"""Lab sizes (ci, small, full) and the knobs derived from them."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from labkit.errors import LabError


@dataclass(frozen=True, kw_only=True)
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
    "ci": LabConfig(size="ci", dim=128, rows=5_000, batches=3, batch_rows=5_000, interval_s=(0.2, 0.5),
                    ro_nodes=2, nq=10, topk=10, fio_size_mb=32, fio_jobs=2, md_items=100),
    "small": LabConfig(size="small", dim=128, rows=50_000, batches=5, batch_rows=20_000,
                       interval_s=(1.0, 3.0), ro_nodes=2, nq=10, topk=10, fio_size_mb=128, fio_jobs=4,
                       md_items=300),
    "full": LabConfig(size="full", dim=128, rows=200_000, batches=10, batch_rows=100_000,
                      interval_s=(1.0, 8.0), ro_nodes=2, nq=10, topk=10, fio_size_mb=1024, fio_jobs=16,
                      md_items=1000),
}


def config(size: str | None = None) -> LabConfig:
    """The LabConfig for ``size``; ``None`` falls back to $LABKIT_SIZE, then "small"."""
    name = (size or os.environ.get("LABKIT_SIZE") or "small").lower()
    if name not in SIZES:
        raise LabError(f"Unknown SIZE {name!r}; choose one of: {', '.join(SIZES)}.")
    return SIZES[name]
