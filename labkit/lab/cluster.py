"""Glue for the notebooks: start/stop Milvus 1.1 lab nodes and the router, connect pymilvus.

    rw = cluster.start_node(lab, "rw", role="rw")
    ro = cluster.start_node(lab, "ro1", role="ro", preload=False)
    router = cluster.start_router(lab)
    client = cluster.connect(router)
"""

from __future__ import annotations

from typing import Any

from labkit.lab.services.base import get_service


def _state(lab: Any):
    return getattr(lab, "state", None)


def start_node(lab: Any, name: str, role: str = "rw", preload: bool = False, backend: str = "local",
               **overrides: Any) -> dict[str, Any]:
    """Start (or find healthy) node ``name``; returns its state record (host, port, pid, ...).

    ``overrides``: port, cache_size ("4GB"), insert_buffer_size, auto_flush_interval,
    preload_poll_interval, storage_path / meta_uri (instead of the lab's mount / MySQL),
    metrics=True (push Milvus metrics to the lab's Pushgateway, started if needed),
    http=True (serve Milvus 1.1's REST API on a free port, recorded as ``http_port``).
    """
    if role not in {"rw", "ro"}:
        raise ValueError(f"role must be 'rw' or 'ro', not {role!r}")
    svc = get_service("node", backend, state=_state(lab), name=name, lab=lab, role=role, preload=preload,
                      **overrides)
    return svc.ensure()


def start_pushgateway(lab: Any) -> dict[str, Any]:
    """Start (or find healthy) the lab's Prometheus Pushgateway; its record has the port nodes push to."""
    return get_service("pushgateway", "local", state=_state(lab)).ensure()


def stop_node(lab: Any, name: str, purge: bool = False) -> None:
    """Stop node ``name`` by its PID (``purge`` also deletes its local conf/wal/logs)."""
    rec = (_state(lab) or _default_state()).get(name) or {}
    svc = get_service("node", rec.get("backend", "local"), state=_state(lab), name=name, lab=lab)
    svc.stop(purge=purge)


def nodes(lab: Any) -> list[dict[str, Any]]:
    """The recorded node records, rw first."""
    recs = [r for r in (_state(lab) or _default_state()).services().values() if r.get("kind") == "node"]
    return sorted(recs, key=lambda r: (r.get("role") != "rw", r.get("name", "")))


def start_router(lab: Any, backend: str = "local", name: str = "router", **opts: Any) -> dict[str, Any]:
    """Start the Mishards-compatible router in front of the recorded nodes (the router service's options:
    woserver, hosts, bind, metrics=True to push its counters to the lab's Pushgateway, ...)."""
    svc = get_service("router", backend, state=_state(lab), name=name, lab=lab, **opts)
    return svc.ensure()


def connect(record: dict[str, Any], timeout: float = 10.0):
    """A pymilvus 1.1.2 client (``milvus.Milvus``) for a node or router record."""
    from milvus import Milvus

    return Milvus(record.get("host", "127.0.0.1"), int(record["port"]), wait_timeout=timeout)


def _default_state():
    from labkit.lab.state import LabState

    return LabState()
