"""Glue for the notebooks: start/stop Milvus 1.1 lab nodes and the router, connect pymilvus.

    rw = cluster.start_node(lab, "rw", role="rw")
    ro = cluster.start_node(lab, "ro1", role="ro", preload=False)
    router = cluster.start_router(lab)
    client = cluster.connect(router)

With ``LABKIT_CLUSTER_ROUTER`` set (see ``labkit.lab.existing``) these calls hand out the
addresses of a cluster the user already runs and start or stop nothing.
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
    ext = existing()
    if ext is not None:
        return ext.node(name, role)
    svc = get_service("node", backend, state=_state(lab), name=name, lab=lab, role=role, preload=preload,
                      **overrides)
    return svc.ensure()


def start_pushgateway(lab: Any) -> dict[str, Any]:
    """Start (or find healthy) the lab's Prometheus Pushgateway; its record has the port nodes push to."""
    return get_service("pushgateway", "local", state=_state(lab)).ensure()


def stop_node(lab: Any, name: str, purge: bool = False) -> None:
    """Stop node ``name`` by its PID (``purge`` also deletes its local conf/wal/logs)."""
    if existing() is not None:
        return  # an existing cluster's nodes are not labkit's to stop
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
    ext = existing()
    if ext is not None:
        return ext.router
    svc = get_service("router", backend, state=_state(lab), name=name, lab=lab, **opts)
    return svc.ensure()


def connect(record: dict[str, Any], timeout: float = 10.0):
    """A pymilvus 1.1.2 client (``milvus.Milvus``) for a node or router record."""
    from milvus import Milvus

    return Milvus(record.get("host", "127.0.0.1"), int(record["port"]), wait_timeout=timeout)


def existing():
    """The cluster named by LABKIT_CLUSTER_* settings (``labkit.lab.existing``), or None."""
    from labkit.lab import existing as ext

    return ext.load()


def _default_state():
    from labkit.lab.state import LabState

    return LabState()


# -- the whole cluster from one call -------------------------------------------------------------

def up(lab: Any, ro: int | None = None, backend: str | None = None, preload: bool = False) -> dict[str, Any]:
    """Storage, mounts, the rw node, ``ro`` read nodes and the router; returns the router record.

    Without arguments it restores the cluster recorded by an earlier ``up`` (``labkit up`` after
    ``labkit down``). ``backend`` (local | docker) runs the nodes and the router as processes or
    containers; the storage services follow the lab's own backend.
    """
    from labkit.errors import LabError

    ext = existing()
    if ext is not None:
        return ext.router
    state = lab.state
    recorded = state.meta("cluster") or {}
    ro = int(ro if ro is not None else recorded.get("ro", 1))
    backend = backend or recorded.get("backend") or "local"
    if ro < 0 or ro > 16:
        raise LabError(f"--ro must be between 0 and 16, not {ro}.")
    if backend not in {"local", "docker"}:
        raise LabError(f"Unknown backend {backend!r} for the cluster; choose one of: docker, local.")
    for name, rec in state.services().items():
        if rec.get("kind") in {"node", "router"} and rec.get("backend") != backend and not rec.get("stopped"):
            raise LabError(f"{name} runs on the {rec.get('backend')} backend; run `labkit down` before "
                           f"starting the cluster on {backend}.")
    state.set_meta("cluster", {"ro": ro, "backend": backend, "preload": preload})
    lab.up()
    start_node(lab, "rw", role="rw", backend=backend)
    wanted = {f"ro{i}" for i in range(1, ro + 1)}
    for name in sorted(wanted):
        start_node(lab, name, role="ro", preload=preload, backend=backend)
    for rec in nodes(lab):  # read nodes beyond the wanted count (an earlier, larger cluster)
        if rec.get("role") == "ro" and rec["name"] not in wanted:
            stop_node(lab, rec["name"], purge=True)
    router_rec = state.get("router") or {}
    if router_rec and router_rec.get("backend") != backend:
        get_service("router", router_rec["backend"], state=state, name="router", lab=lab).stop(purge=True)
    if backend == "docker":  # static read-node list: a new container when the list changed
        svc = get_service("router", "docker", state=state, name="router", lab=lab)
        if (state.get("router") or {}).get("read_nodes") != ",".join(svc._read_nodes()):  # type: ignore[attr-defined]
            svc.stop(purge=True)
    return start_router(lab, backend=backend)


def recorded(lab: Any) -> dict[str, Any] | None:
    """The cluster shape recorded by ``up`` (ro count, backend), or None."""
    return lab.state.meta("cluster")


def address(record: dict[str, Any]) -> str:
    """``host:port`` a pymilvus client uses for a node or router record."""
    return f"{record.get('host', '127.0.0.1')}:{record['port']}"
