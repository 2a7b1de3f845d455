"""Which nodes the router talks to: the rw node (WOSERVER) and the read nodes of the ring.

Sources, as Mishards's static discovery plus what a one-machine lab needs:
- ``static``: DISCOVERY_STATIC_HOSTS (``host`` or ``host:port``), and DISCOVERY_STATIC_HOSTS_FILE,
  re-read whenever its mtime changes;
- ``labkit``: the lab's running nodes from state.json (role ``ro``; WOSERVER defaults to the
  ``rw`` node), re-read at most once a second;
- admin commands at runtime (Cmd ``add_node host:port`` / ``remove_node host:port``).
A read node whose call fails is suspended: out of the ring, its files rebalanced onto the others.
The first suspension lasts SUSPEND_SECONDS, each further one while the node stays unresponsive
twice as long (up to ``MAX_SUSPEND_S``). When a suspension ends the node returns only after a
quick probe (``set_prober``: a status call with a short timeout) answers, so a hung node costs
real searches one timeout, not one per suspension.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from labkit.router.config import RouterConfig, parse_host, parse_hosts

log = logging.getLogger("labkit.router")

MAX_SUSPEND_S = 60.0


class Discovery:
    def __init__(self, cfg: RouterConfig) -> None:
        self.cfg = cfg
        self._lock = threading.Lock()
        self._added: list[str] = []
        self._removed: set[str] = set()
        self._suspended: dict[str, float] = {}  # node -> until (monotonic)
        self._strikes: dict[str, int] = {}  # node -> suspensions in a row without a good answer
        self._probing: set[str] = set()
        self._prober: Callable[[str], bool] | None = None
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
        """Read nodes not suspended (a node whose suspension ended stays out until its probe answers)."""
        now = time.monotonic()
        with self._lock:
            expired = [n for n, t in self._suspended.items() if t <= now]
            if self._prober is None:
                for n in expired:
                    del self._suspended[n]
            else:
                for n in expired:
                    if n not in self._probing:
                        self._probing.add(n)
                        threading.Thread(target=self._probe, args=(n,), daemon=True,
                                         name=f"probe-{n}").start()
            out = set(self._suspended)
        return [n for n in self.read_nodes() if n not in out]

    def set_prober(self, prober: Callable[[str], bool]) -> None:
        """``prober(node)`` -> whether the node answers now (it must return within about a second)."""
        self._prober = prober

    def _probe(self, node: str) -> None:
        try:
            good = bool(self._prober and self._prober(node))
        except Exception:  # noqa: BLE001 - a probe that fails is a node that does not answer
            good = False
        with self._lock:
            self._probing.discard(node)
            if node not in self._suspended:
                return  # refreshed or re-added meanwhile
            if good:
                del self._suspended[node]
            else:
                self._extend(node)
        if not good:
            log.warning("read node %s still does not answer; suspended for %.0f s", node,
                        self._suspended.get(node, time.monotonic()) - time.monotonic())

    def suspended(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return sorted(n for n, t in self._suspended.items() if t > now)

    # -- changes ---------------------------------------------------------------------------
    def suspend(self, node: str, unreachable: bool = False) -> None:
        """Take ``node`` out of the ring after a failed call (no-op while it is already out).

        ``unreachable``: it did not answer at all (timeout, connection), which starts or continues
        the back-off; a node that answered with an error is out for SUSPEND_SECONDS.
        """
        with self._lock:
            if node in self._suspended:
                return
            if unreachable:
                self._extend(node)
            else:
                self._suspended[node] = time.monotonic() + self.cfg.suspend_seconds

    def _extend(self, node: str) -> None:
        strikes = self._strikes.get(node, 0) + 1
        self._strikes[node] = strikes
        seconds = min(self.cfg.suspend_seconds * 2 ** (strikes - 1), MAX_SUSPEND_S)
        self._suspended[node] = time.monotonic() + seconds

    def answered(self, nodes: set[str] | list[str]) -> None:
        """These nodes served a search: their next failure starts the back-off afresh."""
        with self._lock:
            for node in nodes:
                self._strikes.pop(node, None)

    def add(self, entry: str) -> str:
        node = parse_host(entry, self.cfg.static_port)
        with self._lock:
            self._removed.discard(node)
            self._suspended.pop(node, None)
            self._strikes.pop(node, None)
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
            self._strikes.clear()
