"""The router's framed calls to lab nodes: frame format, the node's server and the router's link,
over real sockets on 127.0.0.1 (the node's gRPC Cmd that names the frame port is a function here)."""

from __future__ import annotations

import json
import socket
import threading
import time

import grpc
import pytest

from labkit.milvus import frames
from labkit.node import frame_server
from labkit.node.frame_server import FrameServer
from labkit.router.frame_link import FrameError, FrameLink
from labkit.router.server import _Framed

GRPC_PORT = "19530"


def _server(port: str = GRPC_PORT, **extra) -> FrameServer:
    handlers = {"SearchInFiles": lambda body: b"answer:" + body, frames.HELLO: lambda body: port.encode()}
    handlers.update(extra)
    return FrameServer(handlers, "127.0.0.1").start()


def _link(ask) -> FrameLink:
    return FrameLink(f"127.0.0.1:{GRPC_PORT}", ask)


def _port_of(srv: FrameServer):
    return lambda timeout: json.dumps({"port": srv.port})


def test_frames_round_trip_over_a_socket_pair() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(frames.request("SearchInFiles", b"\x01\x02") + frames.request("ReloadSegments", b""))
        assert frames.read_request_head(b) == ("SearchInFiles", 2)
        assert frames.recv_exact(b, 2) == b"\x01\x02"
        assert frames.read_request_head(b) == ("ReloadSegments", 0)
        b.sendall(frames.reply(b"ok") + frames.reply(b"why", grpc.StatusCode.INTERNAL))
        assert frames.read_reply(a) == (None, b"ok")
        assert frames.read_reply(a) == (grpc.StatusCode.INTERNAL, b"why")


def test_a_peer_closing_between_frames_is_clean_and_inside_one_is_not() -> None:
    a, b = socket.socketpair()
    a.close()
    with pytest.raises(frames.Closed) as between:
        frames.read_request_head(b)
    assert between.value.clean
    b.close()
    a, b = socket.socketpair()
    a.sendall(frames.request("SearchInFiles", b"12345")[:-2])
    a.close()
    frames.read_request_head(b)
    with pytest.raises(frames.Closed) as inside:
        frames.recv_exact(b, 5)
    assert not inside.value.clean
    b.close()


def test_calls_reuse_one_connection() -> None:
    srv = _server()
    link = _link(_port_of(srv))
    try:
        for i in range(5):
            assert link.call("SearchInFiles", str(i).encode(), 2.0) == f"answer:{i}".encode()
        assert len(srv._conns) == 1 and link.port == srv.port
    finally:
        link.close()
        srv.stop()


def test_refusals_keep_the_connection_usable() -> None:
    def broken(body: bytes) -> bytes:
        raise RuntimeError("bug")

    srv = _server(ReloadSegments=broken)
    link = _link(_port_of(srv))
    try:
        with pytest.raises(FrameError) as unknown:
            link.call("Insert", b"x", 2.0)
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED
        with pytest.raises(FrameError) as bug:
            link.call("ReloadSegments", b"x", 2.0)
        assert bug.value.code() == grpc.StatusCode.INTERNAL and "bug" in bug.value.details()
        assert link.call("SearchInFiles", b"y", 2.0) == b"answer:y"
        assert len(srv._conns) == 1
    finally:
        link.close()
        srv.stop()


def test_an_oversized_request_is_refused_unread(monkeypatch) -> None:
    monkeypatch.setattr(frame_server, "MAX_MESSAGE", 8)
    srv = _server()
    link = _link(_port_of(srv))
    try:
        with pytest.raises(FrameError) as big:
            link.call("SearchInFiles", b"x" * 9, 2.0)
        assert big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert link.call("SearchInFiles", b"x" * 8, 2.0) == b"answer:" + b"x" * 8
    finally:
        link.close()
        srv.stop()


def test_a_late_answer_is_never_taken_for_the_next_call() -> None:
    def slow(body: bytes) -> bytes:
        time.sleep(0.5)
        return b"late:" + body

    srv = _server(ReloadSegments=slow)
    link = _link(_port_of(srv))
    try:
        t0 = time.monotonic()
        with pytest.raises(FrameError) as late:
            link.call("ReloadSegments", b"a", 0.1)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - t0 < 0.4
        assert link.call("SearchInFiles", b"b", 2.0) == b"answer:b"  # on a new connection
    finally:
        link.close()
        srv.stop()


def test_a_restarted_node_is_found_on_its_new_port() -> None:
    first = _server()
    current = [first]
    link = _link(lambda timeout: json.dumps({"port": current[0].port}))
    try:
        assert link.call("SearchInFiles", b"1", 2.0) == b"answer:1"
        first.stop()
        current[0] = _server()
        # the idle connection is dead and the old port refuses: asked again, on the new port
        assert link.call("SearchInFiles", b"2", 2.0) == b"answer:2"
        assert link.port == current[0].port
    finally:
        link.close()
        current[0].stop()


def test_a_port_that_now_belongs_to_another_node_is_not_used() -> None:
    other = _server(port="19999")  # names another node in its hello
    mine = _server()
    answers = [other.port]
    link = _link(lambda timeout: json.dumps({"port": answers[0]}))
    try:
        with pytest.raises(FrameError) as wrong:
            link.call("SearchInFiles", b"1", 2.0)
        assert wrong.value.code() == grpc.StatusCode.UNAVAILABLE
        answers[0] = mine.port
        assert link.call("SearchInFiles", b"2", 2.0) == b"answer:2"
    finally:
        link.close()
        other.stop()
        mine.stop()


def test_a_node_without_frames_is_called_over_grpc() -> None:
    asked = []

    def ask(timeout: float) -> str:
        asked.append(timeout)
        return "Unknown command"  # what a lab node without frames, or any other Cmd reply, gives

    link = _link(ask)
    sent = []
    call = _Framed("SearchInFiles", link, lambda req, timeout=None: sent.append(req) or b"grpc:" + req)
    assert call(b"q", timeout=1.0) == b"grpc:q"
    assert not link.usable() and len(asked) == 1
    assert call(b"r", timeout=1.0) == b"grpc:r"
    assert len(asked) == 1 and sent == [b"q", b"r"]  # not asked again on every call


def test_a_node_that_does_not_answer_fails_the_call_as_grpc_would() -> None:
    class Down(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.UNAVAILABLE

    def ask(timeout: float) -> str:
        raise Down()

    link = _link(ask)
    call = _Framed("SearchInFiles", link, lambda req, timeout=None: pytest.fail("no gRPC after a failure"))
    with pytest.raises(grpc.RpcError) as down:
        call(b"q", timeout=1.0)
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    assert link.usable()  # a node that is down is not taken for one without frames


def test_stop_closes_open_connections() -> None:
    srv = _server()
    link = _link(_port_of(srv))
    try:
        assert link.call("SearchInFiles", b"1", 2.0) == b"answer:1"
        srv.stop()
        with pytest.raises(FrameError) as gone:
            link.call("SearchInFiles", b"2", 2.0)
        assert gone.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        link.close()


def test_concurrent_calls_each_get_their_own_answer() -> None:
    srv = _server()
    link = _link(_port_of(srv))
    bad: list[str] = []

    def worker(n: int) -> None:
        for i in range(50):
            body = f"{n}-{i}".encode()
            if link.call("SearchInFiles", body, 5.0) != b"answer:" + body:
                bad.append(body.decode())

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not bad
    finally:
        link.close()
        srv.stop()
