"""Suspension of failing read nodes: back-off while they stay unresponsive, a probe before they return."""

from __future__ import annotations

import threading
import time

from labkit.router import config
from labkit.router.discovery import Discovery

URI = "mysql+pymysql://root:pw@127.0.0.1:3307/milvus"
A, B = "127.0.0.1:5", "127.0.0.1:6"


def _discovery(suspend_s: float) -> Discovery:
    return Discovery(config.load({"WOSERVER": "tcp://127.0.0.1:9", "SQLALCHEMY_DATABASE_URI": URI,
                                  "DISCOVERY_STATIC_HOSTS": f"{A},{B}", "SUSPEND_SECONDS": str(suspend_s)}))


def _wait(cond, timeout: float = 3.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return False


def test_a_node_returns_only_after_its_probe_answers_and_suspension_backs_off() -> None:
    d = _discovery(0.1)
    answering = threading.Event()
    probes: list[str] = []

    def prober(node: str) -> bool:
        probes.append(node)
        return answering.is_set()

    d.set_prober(prober)
    d.suspend(A, unreachable=True)
    d.suspend(A, unreachable=True)  # a second failure of the same outage does not lengthen it
    assert d.live_nodes() == [B]
    time.sleep(0.15)
    assert d.live_nodes() == [B]  # expired, but the probe has not answered
    assert _wait(lambda: probes and A not in d._probing)
    until_1 = d._suspended[A] - time.monotonic()
    assert 0.1 < until_1 <= 0.2 + 0.05  # second strike: twice SUSPEND_SECONDS
    answering.set()
    assert _wait(lambda: d.live_nodes() == [A, B])
    d.answered({A})
    d.suspend(A, unreachable=True)
    assert d._suspended[A] - time.monotonic() <= 0.1 + 0.01  # back to the first step


def test_a_node_that_answered_with_an_error_is_out_for_the_base_time_only() -> None:
    d = _discovery(0.1)
    d.set_prober(lambda node: True)
    for _ in range(3):
        d.suspend(A)
        assert d._suspended[A] - time.monotonic() <= 0.1 + 0.01
        assert _wait(lambda: d.live_nodes() == [A, B])


def test_without_a_prober_a_suspension_simply_ends() -> None:
    d = _discovery(0.05)
    d.suspend(B)
    assert d.live_nodes() == [A]
    time.sleep(0.08)
    assert d.live_nodes() == [A, B]
