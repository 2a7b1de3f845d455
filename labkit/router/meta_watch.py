"""The router's lease on the rw node's change messages: kept file lists used with no metadata read.

The rw node (``labkit.node.meta_watch``) tells each router that holds a lease of every committed
change to Tables or TableFiles before it acknowledges the write. Here the router renews its lease
every ``period_s`` and counts a ``generation`` that every change message (and every sign that
messages may have been missed) bumps. A file list read from MySQL while the generation was ``g``
is exact as long as the generation is still ``g`` and the lease holds: ``fresh(g)``.

The lease is counted from when the renewal was sent, so it ends no later than the rw node's view of
it; a renewal that fails, a reply from a new epoch or version, or the connection to the rw node
dropping (a restarted node keeps no watchers) ends it at once. Until a renewal succeeds again the
router checks MySQL on every search as before. A rw node that does not know the command (a real
Milvus 1.1 image) is asked again only every ``UNSUPPORTED_RETRY_S``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from labkit.milvus.periodic import Periodic
from labkit.milvus.proto import messages

log = logging.getLogger("labkit.router")
pb, _, _ = messages()

LEASE_S = 2.0
PERIOD_S = 0.5
UNSUPPORTED_RETRY_S = 10.0


class MetaWatch:
    """``rw()`` gives the rw node's address ("" when none), ``channel(addr)`` the router's channel to
    it and ``call(addr, request, timeout)`` sends it a serialized Cmd; ``port()`` is the router's own
    gRPC port (the rw node calls back there)."""

    def __init__(self, rw: Callable[[], str], channel: Callable[[str], grpc.Channel],
                 call: Callable[[str, bytes, float], bytes], port: Callable[[], int],
                 lease_s: float = LEASE_S, period_s: float = PERIOD_S) -> None:
        self.rw, self.channel, self.call, self.port = rw, channel, call, port
        self.lease_s, self.period_s = lease_s, period_s
        self._lock = threading.Lock()
        self.generation = 0
        self._valid_until = 0.0
        self._source: tuple[str, str, int] | None = None  # (rw address, epoch, version) last heard
        self._subscribed: set[str] = set()
        self._retry_at = 0.0
        self._timer = Periodic(self._round, period_s, "meta-watch", at_start=True)
        self.messages = 0  # change messages received

    # -- what searches ask ---------------------------------------------------------------------
    def fresh(self, generation: int) -> bool:
        """Whether a file list read at ``generation`` is still exact (no change since, lease held)."""
        with self._lock:
            return generation == self.generation and time.monotonic() < self._valid_until

    def current(self) -> int:
        with self._lock:
            return self.generation

    # -- what the rw node and the connection say ----------------------------------------------------
    def changed(self, text: str) -> None:
        """A ``labkit_meta_changed epoch:version`` message: every kept list may be out of date."""
        epoch, _, version = text.partition(":")
        with self._lock:
            self.generation += 1
            self.messages += 1
            if self._source is not None and self._source[1] == epoch and version.isdigit():
                self._source = (self._source[0], epoch, int(version))

    def invalidate(self, why: str) -> None:
        with self._lock:
            if self._valid_until:
                log.info("metadata lease ended (%s): searches check MySQL until it is renewed", why)
            self._valid_until = 0.0
            self.generation += 1

    def _connectivity(self, addr: str, state: grpc.ChannelConnectivity) -> None:
        if state is not grpc.ChannelConnectivity.READY:
            with self._lock:
                current = self._source is not None and self._source[0] == addr
            if current:
                self.invalidate(f"connection to {addr} is {state.name}")

    # -- renewal -------------------------------------------------------------------------------
    def renew(self) -> bool:
        """Ask the rw node for (another) lease; True when one holds now."""
        addr = self.rw()
        if not addr:
            self.invalidate("no rw node known")
            return False
        spec = json.dumps({"port": self.port(), "lease_s": self.lease_s})
        request = pb.Command(cmd=f"labkit_meta_watch {spec}").SerializeToString()
        sent = time.monotonic()
        try:
            reply = pb.StringReply.FromString(self.call(addr, request, min(self.lease_s / 2, 1.0)))
            data = json.loads(reply.string_reply) if reply.status.error_code == 0 else None
            source = (addr, str(data["epoch"]), int(data["version"]))
        except grpc.RpcError as exc:
            self.invalidate(f"rw node {addr}: {exc.code().name}")
            return False
        except (ValueError, KeyError, TypeError):
            self.invalidate(f"rw node {addr} does not offer change messages")
            self._retry_at = time.monotonic() + UNSUPPORTED_RETRY_S
            return False
        if addr not in self._subscribed:
            self._subscribed.add(addr)
            self.channel(addr).subscribe(lambda state, _a=addr: self._connectivity(_a, state))
        with self._lock:
            if source != self._source:
                self.generation += 1  # another node, a restart, or a change whose message was lost
                self._source = source
            self._valid_until = sent + self.lease_s
        return True

    def start(self) -> None:
        self._timer.start()

    def _round(self) -> None:
        if time.monotonic() < self._retry_at:
            return
        try:
            self.renew()
        except Exception:  # noqa: BLE001 - keep renewing; searches check MySQL meanwhile
            log.warning("renewing the metadata lease failed", exc_info=True)
            self.invalidate("renewal error")

    def stop(self) -> None:
        """End the lease at the rw node too, so its next write does not wait for this router."""
        self._timer.stop()
        with self._lock:
            held, self._valid_until = self._valid_until > time.monotonic(), 0.0
            addr = self._source[0] if self._source else ""
        if held and addr:
            request = pb.Command(cmd=f"labkit_meta_unwatch {json.dumps({'port': self.port()})}")
            try:
                self.call(addr, request.SerializeToString(), 1.0)
            except grpc.RpcError:
                pass  # the rw node waits the lease out

    def info(self) -> dict[str, Any]:
        with self._lock:
            left = self._valid_until - time.monotonic()
            return {"lease": left > 0, "lease_left_s": round(max(left, 0.0), 3),
                    "generation": self.generation, "messages": self.messages,
                    "rw": self._source[0] if self._source else "",
                    "epoch": self._source[1] if self._source else "",
                    "version": self._source[2] if self._source else None}
