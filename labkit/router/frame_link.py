"""The router's end of the framed calls to a lab node (``labkit.milvus.frames``).

``FrameLink`` keeps idle connections to one node and sends each call on one of them. It learns the
node's frame port from Cmd ``labkit_frames`` (over gRPC) and asks again when a connect is refused
(a restarted node listens on a new port). A node without the command is ``unsupported``: the
caller uses gRPC, and asks again after ``RECHECK_S``. Failures raise ``FrameError``, a
``grpc.RpcError`` with the code gRPC would give (UNAVAILABLE, DEADLINE_EXCEEDED, ...), so a failed
leg is handled exactly as a failed gRPC call.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable

import grpc

from labkit.milvus import frames

RECHECK_S = 30.0  # how long a node without frames is called over gRPC before asking it again
MAX_IDLE = 16  # idle connections kept per node
_DROPPED = (frames.Closed, ConnectionResetError, BrokenPipeError)


class FrameError(grpc.RpcError):
    """A framed call that failed; ``code()`` and ``details()`` as on a gRPC error."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class FrameLink:
    """Framed calls to the node at ``addr`` ("host:port" of its gRPC server).

    ``ask_port(timeout)`` runs Cmd ``labkit_frames`` on the node and returns its reply string
    (raising ``grpc.RpcError`` when the node does not answer).
    """

    def __init__(self, addr: str, ask_port: Callable[[float], str]) -> None:
        host, _, grpc_port = addr.rpartition(":")
        self.host, self._grpc_port = host.strip("[]"), grpc_port.encode()
        self._ask_port = ask_port
        self._port: int | None = None
        self._unsupported_until = 0.0
        self._idle: list[socket.socket] = []
        self._lock = threading.Lock()

    def usable(self) -> bool:
        """False while the node is known to lack frames (then the caller uses gRPC)."""
        return time.monotonic() >= self._unsupported_until

    def call(self, method: str, body: bytes, timeout: float) -> bytes:
        """The reply bytes of ``method`` (raises ``FrameError``, or grpc.RpcError from Cmd)."""
        deadline = time.monotonic() + timeout
        frame = frames.request(method, body)
        for attempt in (0, 1):
            sock, reused = self._take(deadline)
            try:
                sock.settimeout(_left(deadline))
                sock.sendall(frame)
                code, payload = frames.read_reply(sock)
            except TimeoutError:
                _close(sock)  # an answer may still come: the connection is out of step
                raise _late(self.host) from None
            except OSError as exc:
                _close(sock)
                self.drop_idle()  # connections opened before this one are likely dead too
                if reused and attempt == 0 and isinstance(exc, _DROPPED):
                    continue  # an idle connection the node closed (it restarted); both methods are reads
                raise _down(self.host, exc) from None
            except BaseException:
                _close(sock)
                raise
            self._give_back(sock)  # the answer was read whole: the connection is in step
            if code is not None:
                raise FrameError(code, payload.decode(errors="replace"))
            return payload
        raise AssertionError("unreachable: the second attempt returns or raises")

    @property
    def port(self) -> int | None:
        """The node's frame port once known (None before the first call, or without frames)."""
        return self._port

    def close(self) -> None:
        self.drop_idle()

    def drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for s in idle:
            _close(s)

    # -- connections -----------------------------------------------------------------------
    def _take(self, deadline: float) -> tuple[socket.socket, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._connect(deadline), False

    def _give_back(self, sock: socket.socket) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE:
                self._idle.append(sock)
                return
        _close(sock)

    def _connect(self, deadline: float) -> socket.socket:
        port = self._port if self._port is not None else self._resolve(deadline)
        try:
            return self._open(port, deadline)
        except ConnectionRefusedError:
            pass
        # the node restarted on a new frame port, or is down: ask it (over gRPC) again
        port = self._resolve(deadline)
        try:
            return self._open(port, deadline)
        except ConnectionRefusedError as exc:
            raise _down(f"{self.host}:{port}", exc) from None

    def _open(self, port: int, deadline: float) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, port), timeout=_left(deadline))
        except TimeoutError:
            raise _late(f"{self.host}:{port}") from None
        except ConnectionRefusedError:
            raise
        except OSError as exc:
            raise _down(f"{self.host}:{port}", exc) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # a port of a node that is gone may since belong to another node: it must name our node
        try:
            sock.sendall(frames.request(frames.HELLO, self._grpc_port))
            code, payload = frames.read_reply(sock)
        except TimeoutError:
            _close(sock)
            raise _late(f"{self.host}:{port}") from None
        except OSError as exc:  # closed at once: a node that is stopping; asked again by the caller
            _close(sock)
            raise ConnectionRefusedError(f"{self.host}:{port}: {exc}") from None
        if code is not None or payload != self._grpc_port:
            _close(sock)
            raise ConnectionRefusedError(f"{self.host}:{port} is not the frame port of this node")
        return sock

    def _resolve(self, deadline: float) -> int:
        """The node's frame port from Cmd ``labkit_frames`` (FrameError if it has none)."""
        self._port = None
        answer = self._ask_port(max(0.05, deadline - time.monotonic()))  # grpc.RpcError passes through
        try:
            port = json.loads(answer)["port"]
            if not isinstance(port, int) or port <= 0:
                raise ValueError(port)
        except (ValueError, KeyError, TypeError):
            self._unsupported_until = time.monotonic() + RECHECK_S
            raise FrameError(grpc.StatusCode.UNIMPLEMENTED, f"{self.host}: no {frames.FRAME_CMD}") from None
        self._port = port
        return port


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _left(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


def _late(where: str) -> FrameError:
    return FrameError(grpc.StatusCode.DEADLINE_EXCEEDED, f"{where}: no answer in time")


def _down(where: str, exc: OSError) -> FrameError:
    return FrameError(grpc.StatusCode.UNAVAILABLE, f"{where}: {exc}")
