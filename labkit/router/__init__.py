"""The Mishards-compatible router: one client endpoint, searches split over read nodes.

``python -m labkit.router`` runs it (``labkit.lab.services.router`` starts it for the lab).
Admin and introspection go through ``Cmd`` so any pymilvus client can use them:

- ``conn_stats``: as Mishards, ``{group: {node: {"connections", "max-time", "num"}}}`` of the read nodes;
- ``labkit_topology``: the topology as JSON (rw node, read nodes, live/suspended, counters, seconds
  per stage of routed searches);
- ``routing <collection> [tag ...]``: the ring's points and the file -> node map;
- ``add_node host:port`` / ``remove_node host:port`` / ``refresh_nodes``: change the read nodes.
"""

from __future__ import annotations

import json
from typing import Any


def _cmd(client_or_addr: Any, text: str) -> dict:
    """Run a router Cmd through a pymilvus client (or ``(host, port)``) and parse its JSON."""
    if isinstance(client_or_addr, tuple | list):
        from milvus import Milvus

        host, port = client_or_addr
        client = Milvus(host=host, port=int(port))
        try:
            return _cmd(client, text)
        finally:
            client.close()
    status, reply = client_or_addr._cmd(text)
    if not status.OK():
        raise RuntimeError(f"router command {text!r} failed: {status.message}")
    return json.loads(reply)


def introspect(client_or_addr: Any, collection: str | None = None, tags: list[str] | None = None) -> dict:
    """Plain data for notebooks: the topology, and with ``collection`` the ring and file -> node map."""
    out = {"topology": _cmd(client_or_addr, "labkit_topology")}
    if collection:
        out["routing"] = _cmd(client_or_addr, " ".join(["routing", collection, *(tags or [])]))
    return out


def add_node(client_or_addr: Any, addr: str) -> dict:
    return _cmd(client_or_addr, f"add_node {addr}")


def remove_node(client_or_addr: Any, addr: str) -> dict:
    return _cmd(client_or_addr, f"remove_node {addr}")
