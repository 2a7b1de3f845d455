"""Tell each read node which segment files the router sends it, so a preloading node reads only those.

A ro node with ``cache.preload_new_segments`` loads new segments before they are asked for. Behind
the router, each file is searched by one node only (the consistent-hash ring), so every node
loading every file doubles the reads and the memory, and on a small machine makes each load slower.
The router therefore sends each live read node the ring it routes with (Cmd ``labkit_placement``,
a labkit extension): ``{"me": "host:port", "nodes": [...], "ttl_s": 10}``. The node preloads only
the files the ring gives it; the router sends the ring again when the live nodes change (a node
suspended or added) and renews it well before ``ttl_s`` runs out. A node that hears nothing for
``ttl_s`` (the router is gone) preloads every file again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from labkit.milvus.periodic import Periodic
from labkit.milvus.proto import messages

log = logging.getLogger("labkit.router")
pb, status_pb, _ = messages()

TTL_S = 10.0  # a node falls back to preloading everything this long after the last message
PERIOD_S = 0.25  # how often the live nodes are compared with what was sent


def placement_command(me: str, nodes: list[str], ttl_s: float = TTL_S) -> bytes:
    """The serialized Cmd request that gives node ``me`` the ring over ``nodes``."""
    spec = json.dumps({"me": me, "nodes": sorted(nodes), "ttl_s": ttl_s})
    return pb.Command(cmd=f"labkit_placement {spec}").SerializeToString()


class PlacementSender:
    """A thread that keeps every live read node told of the ring (see the module doc).

    ``live_nodes()`` gives the nodes searches are routed to now; ``call(addr, request)`` sends a
    serialized Cmd to a node and returns its raw reply (raising on a transport error).
    """

    def __init__(self, live_nodes: Callable[[], list[str]], call: Callable[[str, bytes], bytes],
                 ttl_s: float = TTL_S, period_s: float = PERIOD_S) -> None:
        self.live_nodes = live_nodes
        self.call = call
        self.ttl_s = ttl_s
        self.period_s = period_s
        self._sent: dict[str, tuple[tuple[str, ...], float]] = {}  # node -> (ring nodes, when)
        self._timer = Periodic(self._round, period_s, "placement")

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _round(self) -> None:
        try:
            self.send_due()
        except Exception:  # noqa: BLE001 - keep telling the nodes; the next round retries
            log.warning("sending the placement failed", exc_info=True)

    def send_due(self) -> list[str]:
        """Send the ring to each live node whose last message is stale or older than ttl/3."""
        nodes = tuple(sorted(self.live_nodes()))
        now = time.monotonic()
        sent = []
        for node in nodes:
            last = self._sent.get(node)
            if last is not None and last[0] == nodes and now - last[1] < self.ttl_s / 3:
                continue
            try:
                raw = self.call(node, placement_command(node, list(nodes), self.ttl_s))
            except Exception as exc:  # noqa: BLE001 - unreachable: searches find out and suspend it
                log.debug("placement to %s not delivered: %s", node, exc)
                self._sent.pop(node, None)
                continue
            reply = pb.StringReply.FromString(raw)
            if reply.status.error_code:
                log.debug("node %s refused the placement: %s", node, reply.status.reason)
            self._sent[node] = (nodes, now)
            sent.append(node)
        for gone in set(self._sent) - set(nodes):
            del self._sent[gone]
        return sent
