"""Which nodes the router talks to: the rw node (WOSERVER) and the read nodes of the ring.

Sources, as Mishards's static discovery plus what a one-machine lab needs:
- ``static``: DISCOVERY_STATIC_HOSTS (``host`` or ``host:port``), and DISCOVERY_STATIC_HOSTS_FILE,
  re-read whenever its mtime changes;
- ``labkit``: the lab's running nodes from state.json (role ``ro``; WOSERVER defaults to the
  ``rw`` node), re-read at most once a second;
- admin commands at runtime (Cmd ``add_node host:port`` / ``remove_node host:port``).
A read node whose call fails is suspended for SUSPEND_SECONDS: out of the ring, its files
rebalanced onto the others, then tried again.
"""

from __future__ import annotations

import os
import threading
import time

from labkit.router.config import RouterConfig, parse_host, parse_hosts


class Discovery:
    def __init__(self, cfg: RouterConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._added: list[str] = []
        self._removed: set[str] = set()
        self._suspended: dict[str, float] = {}  # node -> until (monotonic)
        self._file_mtime: float | None = None
        self._file_hosts: list[str] = []
        self._state_read = 0.0
        self._state_hosts: list[str] = []
        self._state_rw = ""

    # -- sources ---------------------------------------------------------------------------
    def _from_file(self) -> list[str]:
        path = self.cfg.hosts_file
        if not path:
            return []
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return []
        if mtime != self._file_mtime:
            with open(path) as fh:
                self._file_hosts = parse_hosts(fh.read(), self.cfg.static_port)
            self._file_mtime = mtime
        return self._file_hosts

    def _from_state(self) -> list[str]:
        now = time.monotonic()
        if now - self._state_read >= 1.0:
            from labkit.lab.procs import alive
            from labkit.lab.state import LabState

            services = LabState(self.cfg.labkit_home or None).services()
            ro, rw = [], ""
            for rec in sorted(services.values(), key=lambda r: r.get("name", "")):
                if rec.get("kind") != "node" or not rec.get("port") or not alive(rec.get("pid")):
                    continue
                addr = f"{rec.get('host') or '127.0.0.1'}:{rec['port']}"
                if rec.get("role") == "rw":
                    rw = addr
                else:
                    ro.append(addr)
            self._state_hosts, self._state_rw, self._state_read = ro, rw, now
        return self._state_hosts

    # -- views -----------------------------------------------------------------------------
    def woserver(self) -> str:
        if self.cfg.woserver:
            return self.cfg.woserver
        with self._lock:
            self._from_state()
            return self._state_rw

    def read_nodes(self) -> list[str]:
        """Every configured read node (suspended ones included), in a stable order."""
        with self._lock:
            base = list(self.cfg.static_hosts) + self._from_file()
            if self.cfg.discovery == "labkit":
                base += self._from_state()
            nodes: list[str] = []
            for n in base + self._added:
                if n not in nodes and n not in self._removed:
                    nodes.append(n)
            return nodes

    def live_nodes(self) -> list[str]:
        """Read nodes not currently suspended."""
        now = time.monotonic()
        with self._lock:
            self._suspended = {n: t for n, t in self._suspended.items() if t > now}
            out = set(self._suspended)
        return [n for n in self.read_nodes() if n not in out]

    def suspended(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return sorted(n for n, t in self._suspended.items() if t > now)

    # -- changes ---------------------------------------------------------------------------
    def suspend(self, node: str) -> None:
        with self._lock:
            self._suspended[node] = time.monotonic() + self.cfg.suspend_seconds

    def add(self, entry: str) -> str:
        node = parse_host(entry, self.cfg.static_port)
        with self._lock:
            self._removed.discard(node)
            self._suspended.pop(node, None)
            if node not in self._added:
                self._added.append(node)
        return node

    def remove(self, entry: str) -> str:
        node = parse_host(entry, self.cfg.static_port)
        with self._lock:
            self._removed.add(node)
            if node in self._added:
                self._added.remove(node)
        return node

    def refresh(self) -> None:
        """Forget cached sources (the next read re-reads the hosts file and the lab state)."""
        with self._lock:
            self._file_mtime = None
            self._state_read = 0.0
            self._suspended.clear()
