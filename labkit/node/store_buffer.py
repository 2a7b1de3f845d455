"""The rw node's insert buffer (Milvus' MemTable): unflushed rows per collection and partition."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class PartitionBuffer:
    ids: list[np.ndarray] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    nbytes: int = 0

    @property
    def rows(self) -> int:
        return sum(len(i) for i in self.ids)

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.ids.append(ids)
        self.vectors.append(vectors)
        self.nbytes += vectors.nbytes + ids.nbytes

    def drop_ids(self, ids: np.ndarray) -> int:
        """Remove rows with these ids; returns how many went."""
        gone = 0
        for k, chunk in enumerate(self.ids):
            hit = np.isin(chunk, ids)
            if hit.any():
                gone += int(hit.sum())
                keep = ~hit
                self.nbytes -= self.vectors[k][hit].nbytes + chunk[hit].nbytes
                self.ids[k], self.vectors[k] = chunk[keep], self.vectors[k][keep]
        return gone

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """All rows as (ids, vectors), contiguous."""
        return np.concatenate(self.ids), np.ascontiguousarray(np.concatenate(self.vectors))


@dataclass
class CollectionBuffer:
    parts: dict[str, PartitionBuffer] = field(default_factory=dict)  # partition table_id -> rows
    first_lsn: int = 0  # first WAL record not yet flushed (0: nothing buffered)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts.values())

    @property
    def empty(self) -> bool:
        return not any(p.rows for p in self.parts.values())

    def add(self, table_id: str, ids: np.ndarray, vectors: np.ndarray, lsn: int) -> None:
        self.parts.setdefault(table_id, PartitionBuffer()).add(ids, vectors)
        if not self.first_lsn:
            self.first_lsn = lsn

    def drop_ids(self, ids: np.ndarray, table_ids: set[str] | None = None) -> int:
        return sum(p.drop_ids(ids) for t, p in self.parts.items() if table_ids is None or t in table_ids)
