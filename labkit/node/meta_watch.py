"""Routers told of every change to the file lists, so they search without a metadata read.

A labkit extension of the rw node. A router sends Cmd ``labkit_meta_watch {"port": P, "lease_s": L}``
every L/4 seconds; the node answers ``{"epoch": E, "version": V}`` and keeps the router (the
caller's host, port P) as a watcher for L seconds from when the message arrived. Every committed
statement that changes Tables or TableFiles bumps V and, before that statement returns (so before
any reply acknowledges the write), the node sends every watcher Cmd ``labkit_meta_changed E:V``.

A watcher that does not answer is waited out: the statement returns only once that watcher's lease
has run out, and a router trusts its kept file lists only within the lease counted from when it
sent its last message (before the node received it), so from then on it checks MySQL per search
again. A write is thus never acknowledged while a router could still search an older file list.
A router that stops sends ``labkit_meta_unwatch {"port": P}``. A node started anew has no watchers
and a new epoch; routers see its restart as the loss of their connection to it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid

import grpc

from labkit.milvus.proto import messages

log = logging.getLogger("labkit.node")
pb, _, _ = messages()

MAX_LEASE_S = 10.0
NOTIFY_TIMEOUT_S = 0.5
# statements that change what a search reads: rows of Tables (collections, partitions, their state)
# or TableFiles (segment files), written by this node
CHANGES_FILE_LISTS = re.compile(
    r"^\s*(INSERT\s+INTO|UPDATE|DELETE\s+FROM|REPLACE\s+INTO)\s+`?(Tables|TableFiles)\b", re.IGNORECASE)


def peer_host(peer: str) -> str:
    """The host of a gRPC peer string (``ipv4:127.0.0.1:5432``, ``ipv6:[::1]:5432``)."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rpartition(":")[0]  # an ipv6 host keeps its brackets: a valid gRPC target host
    raise ValueError(f"cannot tell the caller's address from {peer!r}")


class MetaWatchers:
    """The routers watching this node's metadata changes, and the counter they follow."""

    def __init__(self, notify_timeout_s: float = NOTIFY_TIMEOUT_S) -> None:
        self.epoch = uuid.uuid4().hex[:12]
        self.version = 0
        self.notify_timeout_s = notify_timeout_s
        self._lock = threading.Lock()
        self._leases: dict[str, float] = {}  # "host:port" -> monotonic time the lease runs out
        self._channels: dict[str, grpc.Channel] = {}
        self.notified = 0  # messages delivered
        self.waited_out = 0  # watchers that did not answer and were waited out

    def register(self, host: str, port: int, lease_s: float) -> dict:
        if not 0 < lease_s <= MAX_LEASE_S or not 0 < port < 65536:
            raise ValueError(f"lease_s must be in (0, {MAX_LEASE_S:g}] and port in 1..65535")
        addr = f"{host}:{int(port)}"
        with self._lock:
            self._leases[addr] = time.monotonic() + lease_s
            return {"epoch": self.epoch, "version": self.version}

    def unregister(self, host: str, port: int) -> None:
        addr = f"{host}:{int(port)}"
        with self._lock:
            self._leases.pop(addr, None)
            channel = self._channels.pop(addr, None)
        if channel is not None:
            channel.close()

    def watchers(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return sorted(a for a, t in self._leases.items() if t > now)

    def changed(self) -> None:
        """A change was committed: tell every watcher before the caller goes on (see the module doc).

        Called with the metadata lock held, so changes are told in the order they were made.
        """
        with self._lock:
            self.version += 1
            now = time.monotonic()
            for addr in [a for a, t in self._leases.items() if t <= now]:
                del self._leases[addr]
            targets = list(self._leases.items())
            version = self.version
        if not targets:
            return
        request = pb.Command(cmd=f"labkit_meta_changed {self.epoch}:{version}").SerializeToString()
        for addr, until in targets:
            try:
                self._call(addr)(request, timeout=self.notify_timeout_s)
                self.notified += 1
                continue
            except grpc.RpcError as exc:
                log.warning("router %s did not take a metadata change (%s): waiting out its lease",
                            addr, exc.code().name)
            # it may still search its kept lists until its lease ends: do not acknowledge before
            self.waited_out += 1
            time.sleep(max(0.0, until - time.monotonic()))
            with self._lock:
                if self._leases.get(addr) == until:
                    del self._leases[addr]

    def _call(self, addr: str):  # noqa: ANN202 - a grpc unary callable on raw bytes
        with self._lock:
            channel = self._channels.get(addr)
            if channel is None:
                channel = self._channels[addr] = grpc.insecure_channel(addr)
        return channel.unary_unary("/milvus.grpc.MilvusService/Cmd")

    def stats(self) -> dict:
        return {"epoch": self.epoch, "version": self.version, "watchers": self.watchers(),
                "notified": self.notified, "waited_out": self.waited_out}

    def close(self) -> None:
        with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
            self._leases.clear()
        for c in channels:
            c.close()
