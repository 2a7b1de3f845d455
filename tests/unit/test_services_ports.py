"""Port choice: explicit ports are honoured or refused, recorded ports reused, races retried."""

from __future__ import annotations

import socket

import pytest

from labkit.errors import LabError
from labkit.lab.services.ports import choose_port, start_on_free_port, start_retrying


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def test_explicit_occupied_port_is_refused(busy_port: int) -> None:
    with pytest.raises(LabError, match=f"Port {busy_port} for MySQL is already in use"):
        choose_port("MySQL", busy_port, None, 3306)


def test_invalid_port_is_refused() -> None:
    with pytest.raises(LabError, match="not a valid TCP port"):
        choose_port("Redis", 70000, None, None)


def test_recorded_port_reused_when_free_else_default_or_any(busy_port: int) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = s.getsockname()[1]
    assert choose_port("Redis", None, free, None) == free
    got = choose_port("Redis", None, busy_port, busy_port)
    assert got != busy_port and 0 < got < 65536


def test_start_retries_on_a_new_port_when_the_bind_race_is_lost() -> None:
    tried: list[int] = []

    def start(port: int) -> int:
        tried.append(port)
        if len(tried) == 1:
            raise LabError("MariaDB exited. ... Got error: 98: Address already in use")
        return port

    assert start_on_free_port("MySQL", None, None, None, start) == tried[-1]
    assert len(tried) == 2


def test_explicit_port_is_never_swapped() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def start(p: int) -> int:
        raise LabError("Address already in use")

    with pytest.raises(LabError, match="already in use"):
        start_on_free_port("Redis", port, None, None, start)


def test_other_start_errors_are_not_retried() -> None:
    calls = []

    def start(p: int) -> int:
        calls.append(p)
        raise LabError("Redis exited.")

    with pytest.raises(LabError, match="exited"):
        start_on_free_port("Redis", None, None, None, start)
    assert len(calls) == 1


def test_start_retrying_asks_for_a_port_again_and_gives_up_after_the_attempts() -> None:
    picks: list[int] = []

    def pick(attempt: int) -> int:
        picks.append(attempt)
        return 40000 + attempt

    def start(port: int) -> str:
        if port < 40002:
            raise LabError(f"Milvus node exited: failed to bind 127.0.0.1:{port}")
        return "up"

    assert start_retrying(pick, start, explicit=False) == (40002, "up")
    assert picks == [0, 1, 2]
    with pytest.raises(LabError, match="bind"):
        start_retrying(pick, start, explicit=False, attempts=2)
