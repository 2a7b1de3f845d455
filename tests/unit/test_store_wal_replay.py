"""Acknowledged inserts survive kill -9 of the rw process: the WAL is replayed on restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

from labkit.node.settings import StoreSettings
from labkit.node.store import Store

CHILD = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from labkit.node.settings import StoreSettings
    from labkit.node.store import Store

    root = sys.argv[1]
    st = Store(StoreSettings(storage_path=root + "/data", wal_path=root + "/wal", auto_flush_interval=0))
    st.maintenance_interval = 3600
    st.start()
    st.create_collection("c", 4, 1, 1)
    st.create_partition("c", "p")
    rng = np.random.default_rng(0)
    for b in range(6):
        tag = "p" if b % 2 else ""
        ids = np.arange(b * 100, b * 100 + 100)
        st.insert("c", tag, rng.random((100, 4), dtype=np.float32), ids)
        if b == 2:
            st.flush()
    st.delete("c", np.array([0, 1, 450, 451]))  # two flushed rows, two buffered rows
    print(json.dumps({"done": True}), flush=True)
    time.sleep(600)
    """
)


def test_acknowledged_inserts_survive_sigkill(tmp_path):
    root = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-c", CHILD, root], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert json.loads(line) == {"done": True}
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()

    st = Store(StoreSettings(storage_path=root + "/data", wal_path=root + "/wal", auto_flush_interval=0))
    st.maintenance_interval = 3600
    st.start()
    try:
        assert st.count("c") == 298  # batches 0-2 flushed before the kill, minus 2 deleted
        st.flush()
        assert st.count("c") == 596
        present = st.get_vectors("c", np.array([0, 450, 452, 599, 301]))
        assert present[0] is None and present[1] is None
        assert all(v is not None for v in present[2:])
        default, part = st.stats("c")["partitions"]
        assert (default["row_count"], part["row_count"]) == (296, 300)  # odd batches went to p
        assert list((tmp_path / "wal").glob("*.wal")) == []  # everything flushed: WAL truncated
    finally:
        st.close()

    st = Store(StoreSettings(storage_path=root + "/data", wal_path=root + "/wal", auto_flush_interval=0))
    st.start()
    try:
        st.flush()
        assert st.count("c") == 596  # a second restart replays nothing twice
    finally:
        st.close()


def test_crash_in_the_middle_of_a_flush_replays_without_duplicates(tmp_path):
    root = str(tmp_path)
    settings = StoreSettings(storage_path=root + "/data", wal_path=root + "/wal", auto_flush_interval=0)
    st = Store(settings)
    st.maintenance_interval = 3600
    st.start()
    try:
        st.create_collection("c", 4, 1, 1)
        st.create_partition("c", "p")
        rng = np.random.default_rng(0)
        st.insert("c", "", rng.random((10, 4), dtype=np.float32), np.arange(10))
        st.insert("c", "p", rng.random((10, 4), dtype=np.float32), np.arange(10, 20))
        real = st._write_segment
        calls = []

        def crash_on_second(*a, **kw):
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("power cut")
            return real(*a, **kw)

        st._write_segment = crash_on_second
        try:
            st.flush()
        except RuntimeError:
            pass
        assert st.count("c") == 10  # one partition reached a segment, the other did not
    finally:
        st.close()  # close flushes nothing: like the crash, the buffer is gone

    st = Store(settings)
    st.start()
    try:
        st.flush()
        assert st.count("c") == 20
        assert [p["row_count"] for p in st.stats("c")["partitions"]] == [10, 10]
    finally:
        st.close()


def test_failed_flush_keeps_the_unwritten_rows(tmp_path):
    settings = StoreSettings(storage_path=str(tmp_path / "data"), wal_path=str(tmp_path / "wal"),
                             auto_flush_interval=0)
    st = Store(settings)
    st.start()
    try:
        st.create_collection("c", 4, 1, 1)
        st.insert("c", "", np.ones((5, 4), np.float32), np.arange(5))
        real = st._write_segment

        def disk_full(*a, **kw):
            raise OSError(28, "No space left on device")

        st._write_segment = disk_full
        try:
            st.flush()
        except OSError:
            pass
        st._write_segment = real
        st.flush()
        assert st.count("c") == 5
    finally:
        st.close()
    st = Store(settings)
    st.start()
    try:
        st.flush()
        assert st.count("c") == 5
    finally:
        st.close()
