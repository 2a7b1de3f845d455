"""Length-prefixed frames of the router's per-search calls to lab nodes (a labkit extension).

A Python gRPC unary call costs ~0.5 ms of CPU on each side; a routed search makes one per read
node on top of the client's own call, which is most of the routed overhead on small collections.
Lab nodes therefore also serve ``SearchInFiles`` and ``ReloadSegments`` over a plain TCP
connection the router keeps open, carrying the same protobuf bytes as gRPC would. A node that does
not answer Cmd ``labkit_frames`` with its port (a real Milvus 1.1 image) is called over gRPC.

Request: ``!HI`` (method name length, body length), method name, body; a new connection starts
with ``HELLO``. Reply: ``!BI`` (status, payload length), payload: the serialized reply message
when status is 0, otherwise the UTF-8 detail of a gRPC status code (``STATUS_CODES[status]``).
"""

from __future__ import annotations

import socket
import struct

import grpc

FRAME_CMD = "labkit_frames"
METHODS = frozenset({"SearchInFiles", "ReloadSegments"})
# first frame on a new connection: body and answer are the node's gRPC port (a port of a node that
# is gone may since belong to another node)
HELLO = "labkit_hello"
_REQ = struct.Struct("!HI")
_REP = struct.Struct("!BI")
OK = 0
# reply status byte -> the gRPC status code it stands for
STATUS_CODES = {1: grpc.StatusCode.UNIMPLEMENTED, 2: grpc.StatusCode.INTERNAL,
                3: grpc.StatusCode.RESOURCE_EXHAUSTED}
STATUS_BYTES = {code: b for b, code in STATUS_CODES.items()}


class Closed(ConnectionError):
    """The peer closed the connection (at a frame boundary when ``clean``)."""

    def __init__(self, clean: bool) -> None:
        super().__init__("connection closed" + ("" if clean else " inside a frame"))
        self.clean = clean


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes from ``sock`` (``Closed`` if the peer closes first)."""
    if n == 0:
        return b""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:], n - got)
        if k == 0:
            raise Closed(clean=False)
        got += k
    return bytes(buf)


def request(method: str, body: bytes) -> bytes:
    name = method.encode()
    return _REQ.pack(len(name), len(body)) + name + body


def reply(payload: bytes, code: grpc.StatusCode | None = None) -> bytes:
    """An answer frame: ``payload`` is the reply message, or a detail text when ``code`` is set."""
    return _REP.pack(OK if code is None else STATUS_BYTES[code], len(payload)) + payload


def read_request_head(sock: socket.socket) -> tuple[str, int]:
    """The method name and body length of the next request (``Closed(clean=True)`` between frames)."""
    first = sock.recv(_REQ.size)
    if not first:
        raise Closed(clean=True)
    head = first if len(first) == _REQ.size else first + recv_exact(sock, _REQ.size - len(first))
    name_len, body_len = _REQ.unpack(head)
    return recv_exact(sock, name_len).decode(), body_len


def read_reply(sock: socket.socket) -> tuple[grpc.StatusCode | None, bytes]:
    """(None, reply bytes) for an answer, (status code, detail bytes) for a refusal."""
    status, n = _REP.unpack(recv_exact(sock, _REP.size))
    payload = recv_exact(sock, n)
    if status == OK:
        return None, payload
    return STATUS_CODES.get(status, grpc.StatusCode.UNKNOWN), payload
