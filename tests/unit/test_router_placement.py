"""The router's placement messages: which nodes are told what, and when they are told again."""

from __future__ import annotations

import json

from labkit.milvus.proto import messages
from labkit.router.placement import PlacementSender, placement_command

pb, status_pb, _ = messages()


def _ok() -> bytes:
    return pb.StringReply(status=status_pb.Status(), string_reply="{}").SerializeToString()


def test_each_live_node_hears_the_ring_once_until_it_changes_or_ages():
    live = ["b:2", "a:1"]
    calls: list[tuple[str, dict]] = []

    def call(addr: str, request: bytes) -> bytes:
        cmd = pb.Command.FromString(request).cmd
        assert cmd.startswith("labkit_placement ")
        calls.append((addr, json.loads(cmd.partition(" ")[2])))
        if addr == "down:9":
            raise ConnectionError("unreachable")
        return _ok()

    sender = PlacementSender(lambda: list(live), call, ttl_s=0.3)
    assert sorted(sender.send_due()) == ["a:1", "b:2"]
    assert {a: c["me"] for a, c in calls} == {"a:1": "a:1", "b:2": "b:2"}
    assert all(c["nodes"] == ["a:1", "b:2"] and c["ttl_s"] == 0.3 for _, c in calls)
    assert sender.send_due() == []  # nothing changed, not yet due

    live.remove("b:2")  # suspended: the other node is told the smaller ring at once
    assert sender.send_due() == ["a:1"] and calls[-1][1]["nodes"] == ["a:1"]

    live.append("down:9")  # unreachable: retried on every round
    assert sender.send_due() == ["a:1"]
    assert sender.send_due() == [] and calls[-1][0] == "down:9"

    import time

    time.sleep(0.11)  # a third of the ttl: renewed before the node would give up on it
    assert sender.send_due() == ["a:1"]


def test_placement_command_is_a_cmd_request():
    cmd = pb.Command.FromString(placement_command("x:1", ["y:2", "x:1"], 5)).cmd
    assert json.loads(cmd.partition(" ")[2]) == {"me": "x:1", "nodes": ["x:1", "y:2"], "ttl_s": 5}
