"""Stage timings shared by node and router: totals per stage, per-call milliseconds between two reads."""

from __future__ import annotations

import threading

from labkit.milvus.timing import Clock, StageTimes, per_call


def test_clock_laps_and_per_call_milliseconds():
    times = StageTimes()
    before = times.snapshot()
    times.record("Search", {"meta": 0.001, "search": 0.004})
    times.record("Search", {"meta": 0.003, "search": 0.002})
    times.record("Other", {"x": 1.0})
    got = per_call(before, times.snapshot(), "Search")
    assert got == {"meta": 2.0, "search": 3.0, "total": 5.0, "calls": 2}
    assert per_call(times.snapshot(), times.snapshot(), "Search") is None  # no calls in between
    assert per_call(before, times.snapshot(), "Missing") is None

    clock = Clock()
    clock.lap("a")
    clock.lap("b")
    clock.lap("a")
    assert set(clock.stages) == {"a", "b"} and all(v >= 0 for v in clock.stages.values())


def test_stage_times_are_exact_under_threads():
    times = StageTimes()

    def work():
        for _ in range(1000):
            times.record("S", {"x": 0.001})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = times.snapshot()["S"]
    assert snap["calls"] == 4000 and abs(snap["seconds"]["x"] - 4.0) < 1e-6
