"""The node's end of the router's framed calls (``labkit.milvus.frames``): one thread per connection.

The router keeps a few connections per node and sends one request at a time on each, so a
connection's thread reads a request, runs the handler and writes the answer, with no hand-off to
another thread. Handlers are the servicer's own methods (the same checks, replies and metrics as
over gRPC).
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

import grpc

from labkit.milvus import frames
from labkit.milvus.defaults import MAX_MESSAGE

log = logging.getLogger("labkit.node")

Handler = Callable[[bytes], bytes]


class FrameServer:
    """Serves ``handlers`` (method name -> request bytes -> reply bytes) on ``address``, any free port."""

    def __init__(self, handlers: dict[str, Handler], address: str) -> None:
        self.handlers = handlers
        self._listener = socket.create_server((address, 0))
        self.port: int = self._listener.getsockname()[1]
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> FrameServer:
        threading.Thread(target=self._accept, name="frames-accept", daemon=True).start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._closed = True
            conns = list(self._conns)
        _shut(self._listener)  # shutdown wakes the accept() blocked in the other thread
        for conn in conns:
            _shut(conn)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                if self._closed:
                    _shut(conn)
                    return
                self._conns.add(conn)
            threading.Thread(target=self._serve, args=(conn,), name="frames-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while True:
                method, size = frames.read_request_head(conn)
                if size > MAX_MESSAGE:  # refused unread, as gRPC refuses an oversized message
                    conn.sendall(frames.reply(f"request of {size} bytes is over {MAX_MESSAGE}".encode(),
                                              grpc.StatusCode.RESOURCE_EXHAUSTED))
                    return
                body = frames.recv_exact(conn, size)
                conn.sendall(self._answer(method, body))
        except OSError:
            pass  # the router closed it (or gave up waiting), or the node is stopping
        finally:
            with self._lock:
                self._conns.discard(conn)
            _shut(conn)

    def _answer(self, method: str, body: bytes) -> bytes:
        handler = self.handlers.get(method)
        if handler is None:
            return frames.reply(f"{method} is not served over frames".encode(), grpc.StatusCode.UNIMPLEMENTED)
        try:
            return frames.reply(handler(body))
        except Exception as exc:  # noqa: BLE001 - the servicer answers errors itself; this is a bug
            log.exception("framed %s failed", method)
            return frames.reply(f"{type(exc).__name__}: {exc}".encode(), grpc.StatusCode.INTERNAL)


def _shut(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    conn.close()
