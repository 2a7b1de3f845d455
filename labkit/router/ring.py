"""The consistent-hash ring that places segment files on read nodes (Mishards: get_node(str(file id))).

uhashring's ketama ring (md5, 160 points per node) keeps most files where they were when a
node joins or leaves: only the files on the arcs the change touches move.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from uhashring import HashRing

_SPACE = float(1 << 128)  # md5 positions


class Ring:
    """An immutable ring over ``nodes`` (``host:port`` names); empty rings place nothing."""

    def __init__(self, nodes: Iterable[str]) -> None:
        self.nodes: tuple[str, ...] = tuple(sorted(set(nodes)))
        self._ring = HashRing(nodes=list(self.nodes)) if self.nodes else None
        self._cache: dict[str, str] = {}
        self._plans: dict[tuple, dict[str, list[str]]] = {}  # plans of recent file lists (searches repeat)

    def node_for(self, file_id: int | str) -> str:
        if self._ring is None:
            raise ValueError("the ring has no nodes")
        key = str(file_id)
        node = self._cache.get(key)
        if node is None:
            node = self._cache[key] = self._ring.get_node(key)
        return node

    def assign(self, file_ids: Iterable[int | str]) -> dict[str, list[str]]:
        """node -> the file ids (as strings) it serves, in input order; shared between calls: read only."""
        ids = tuple(file_ids)
        plan = self._plans.get(ids)
        if plan is None:
            plan = {}
            for fid in ids:
                plan.setdefault(self.node_for(fid), []).append(str(fid))
            if len(self._plans) >= 64:
                self._plans.clear()
            self._plans[ids] = plan
        return plan

    def points(self) -> list[tuple[float, str]]:
        """(position in [0, 1), node) of every virtual point, sorted: plain data for plots."""
        if self._ring is None:
            return []
        return sorted((pos / _SPACE, node) for pos, node in self._ring.get_points())

    def position(self, file_id: int | str) -> float:
        """Where ``file_id`` hashes on the ring, in [0, 1)."""
        if self._ring is None:
            return 0.0
        return self._ring.hashi(str(file_id)) / _SPACE


def moved(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
    """file id -> (old node, new node) for the files whose node changed between two plans."""
    old = {f: n for n, fs in before.items() for f in fs}
    new = {f: n for n, fs in after.items() for f in fs}
    return {f: (old[f], new[f]) for f in new if f in old and old[f] != new[f]}


def plan(file_ids: Sequence[int | str], nodes: Sequence[str]) -> dict[str, list[str]]:
    """Convenience: ``Ring(nodes).assign(file_ids)``."""
    return Ring(nodes).assign(file_ids)
