"""The rw node's change messages and the router's lease on them (pure logic; the wire is faked)."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from labkit.milvus.proto import messages
from labkit.node import meta_watch as node_watch
from labkit.router.meta_watch import MetaWatch

pb, status_pb, _ = messages()


class _Down(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE


class _Channel:
    def __init__(self) -> None:
        self.callbacks = []

    def subscribe(self, callback) -> None:
        self.callbacks.append(callback)


def _router_watch(answer):
    """A MetaWatch whose rw node answers ``answer(request_text)`` (a reply text, or raises)."""
    channel = _Channel()

    def call(addr, request, timeout):
        text = answer(pb.Command.FromString(request).cmd)
        return pb.StringReply(status=status_pb.Status(), string_reply=text).SerializeToString()

    watch = MetaWatch(lambda: "127.0.0.1:1", lambda addr: channel, call, lambda: 19530, lease_s=0.5)
    return watch, channel


def test_a_list_is_fresh_only_at_its_generation_and_within_the_lease():
    version = {"v": 7}
    watch, channel = _router_watch(lambda cmd: json.dumps({"epoch": "e1", "version": version["v"]}))
    g = watch.current()
    assert not watch.fresh(g)  # no lease yet: every search checks MySQL
    assert watch.renew()
    g = watch.current()
    assert watch.fresh(g) and watch.info()["lease"]
    watch.changed("e1:8")  # the rw node's message: lists read before it are stale
    assert not watch.fresh(g) and watch.fresh(watch.current())
    version["v"] = 8
    g = watch.current()
    assert watch.renew() and watch.fresh(g)  # the same epoch and version: nothing was missed
    version["v"] = 10  # a change whose message never came: the renewal reveals it
    assert watch.renew() and not watch.fresh(g)
    g = watch.current()
    time.sleep(0.6)
    assert not watch.fresh(g)  # the lease ran out
    assert watch.renew() and watch.fresh(watch.current())
    channel.callbacks[0](grpc.ChannelConnectivity.TRANSIENT_FAILURE)  # the rw node went away
    assert not watch.fresh(watch.current())


def test_a_rw_node_without_the_command_leaves_every_search_checking():
    watch, _ = _router_watch(lambda cmd: "Unknown command")
    assert not watch.renew()
    assert not watch.fresh(watch.current()) and not watch.info()["lease"]


def test_a_failed_renewal_ends_the_lease():
    state = {"down": False}

    def answer(cmd):
        if state["down"]:
            raise _Down()
        return json.dumps({"epoch": "e", "version": 0})

    watch, _ = _router_watch(answer)
    assert watch.renew() and watch.fresh(watch.current())
    state["down"] = True
    assert not watch.renew() and not watch.fresh(watch.current())


def test_the_node_counts_changes_and_waits_out_a_silent_watcher(monkeypatch):
    w = node_watch.MetaWatchers(notify_timeout_s=0.05)
    calls = []

    def silent(addr):
        def call(request, timeout):
            calls.append((addr, pb.Command.FromString(request).cmd))
            raise _Down()
        return call

    monkeypatch.setattr(w, "_call", silent)
    w.changed()  # no watchers: nothing sent
    assert w.version == 1 and not calls
    got = w.register("127.0.0.1", 5555, lease_s=0.3)
    assert got == {"epoch": w.epoch, "version": 1}
    started = time.monotonic()
    w.changed()
    assert calls == [("127.0.0.1:5555", f"labkit_meta_changed {w.epoch}:2")]
    assert time.monotonic() - started >= 0.25  # returned only once the lease was over
    assert w.waited_out == 1 and w.watchers() == []
    with pytest.raises(ValueError):
        w.register("127.0.0.1", 5555, lease_s=0)
    w.register("127.0.0.1", 5555, lease_s=5)
    w.unregister("127.0.0.1", 5555)
    assert w.watchers() == []


@pytest.mark.parametrize("sql, changes", [
    ("INSERT INTO TableFiles (a) VALUES (%s)", True),
    ("UPDATE TableFiles SET file_type = CASE id WHEN 1 THEN 2 END", True),
    ("DELETE FROM Tables WHERE table_id IN (%s)", True),
    ("  update Tables SET state = 1", True),
    ("UPDATE Environment SET global_lsn = %s", False),
    ("SELECT * FROM TableFiles", False),
    ("CREATE TABLE IF NOT EXISTS TableFiles (id BIGINT)", False),
])
def test_which_statements_change_file_lists(sql, changes):
    assert bool(node_watch.CHANGES_FILE_LISTS.match(sql)) is changes


def test_peer_host():
    assert node_watch.peer_host("ipv4:127.0.0.1:50432") == "127.0.0.1"
    assert node_watch.peer_host("ipv6:[::1]:50432") == "[::1]"
    with pytest.raises(ValueError):
        node_watch.peer_host("unix:/tmp/sock")
