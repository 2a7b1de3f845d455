"""The router's counters: additions from many threads are all kept."""

import threading

from labkit.router.counters import Counters


def test_concurrent_additions_are_not_lost():
    c = Counters(["searches", "reloads"])

    def work():
        for _ in range(20_000):
            c.add("searches")
            c.add_all({"reloads": 2, "routed": 1})

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.snapshot() == {"searches": 80_000, "reloads": 160_000, "routed": 80_000}
    assert c["missing"] == 0
