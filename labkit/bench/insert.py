"""``labkit bench insert``: insert throughput through pymilvus 1.1.2, server decode time, node RSS.

Without ``--host/--port`` it starts its own single node (sqlite metadata, storage in a
temporary directory), so it measures the node and the client, not JuiceFS. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from labkit.bench import add_output_args, emit
from labkit.lab import procs


def _start(conf: Path, log: Path, port: int) -> int:
    from labkit.lab.services.node import answers_as

    pid = procs.spawn([sys.executable, "-m", "labkit.node", "--config", str(conf)], log=log)
    try:
        procs.wait_until(lambda: answers_as("127.0.0.1", port, pid), 60, "bench node", pid=pid, log=log,
                         interval=0.1)
    except Exception:
        procs.stop(pid, expect="labkit.node")
        raise
    return pid


@contextmanager
def temporary_node(auto_flush_interval: float = 1.0):
    """A standalone rw node on a free port; stopped by PID and its directory removed afterwards.

    Yields a dict (host, port, pid, conf, log); ``restart(node)`` starts it again on the same files.
    """
    from labkit.node.config import render_server_config

    root = Path(tempfile.mkdtemp(prefix="labkit-bench-node-"))
    port = procs.free_port(None)
    conf = root / "server_config.yaml"
    conf.write_text(render_server_config(
        role="rw", cluster=False, meta_uri="sqlite://:@:/", storage_path=str(root / "milvus"),
        wal_path=str(root / "wal"), port=port, logs_path=str(root / "logs"),
        auto_flush_interval=auto_flush_interval))
    node: dict[str, Any] = {"host": "127.0.0.1", "port": port, "conf": conf, "log": root / "node.log",
                            "pid": None}
    try:
        node["pid"] = _start(conf, node["log"], port)
        yield node
    finally:
        procs.stop(node["pid"], expect="labkit.node")
        shutil.rmtree(root, ignore_errors=True)


def crash_recovery(rounds: int = 10, rows: int = 1000, dim: int = 16, seed: int = 0) -> dict[str, Any]:
    """kill -9 the node right after acknowledged inserts, ``rounds`` times; count what survives.

    Auto flush is off, so every acknowledged row exists only in the WAL when the node dies.
    """
    import os
    import signal

    from milvus import Milvus

    rng = np.random.default_rng(seed)
    acked: list[tuple[np.ndarray, list[int]]] = []
    restarts = []
    with temporary_node(auto_flush_interval=0) as node:
        c = Milvus(node["host"], node["port"])
        c.create_collection({"collection_name": "crash", "dimension": dim})
        c.close()
        for _ in range(rounds):
            c = Milvus(node["host"], node["port"])
            x = rng.random((rows, dim), dtype=np.float32)
            status, ids = c.insert("crash", x.tolist())
            c.close()
            if status.OK():
                acked.append((x, ids))
            pid = node["pid"]
            os.kill(pid, signal.SIGKILL)
            procs.wait_until(lambda p=pid: not procs.alive(p), 10, "killed node")
            t0 = time.perf_counter()
            node["pid"] = _start(node["conf"], node["log"], node["port"])
            restarts.append(time.perf_counter() - t0)
        c = Milvus(node["host"], node["port"])
        c.flush(["crash"])
        _, count = c.count_entities("crash")
        found = 0
        for x, ids in acked:
            _, res = c.search("crash", 1, x[:10].tolist())
            found += sum(r[0].id == i for r, i in zip(res, ids[:10], strict=True))
        c.close()
    total = sum(len(ids) for _, ids in acked)
    return {"bench": "insert-crash", "rounds": rounds, "rows_per_round": rows, "dim": dim,
            "acknowledged_rows": total, "rows_after_recovery": count, "lost_rows": total - count,
            "probe_hits": found, "probes": 10 * len(acked),
            "restart_seconds_mean": round(float(np.mean(restarts)), 3) if restarts else None}


def _server_stats(client) -> dict[str, Any]:
    status, reply = client._cmd("labkit_stats")  # labkit extension of Cmd
    return json.loads(reply) if status.OK() and reply else {}


def _rss(pid: int | None) -> int | None:
    if not pid:
        return None
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except Exception:  # another host, or gone
        return None


def run(host: str, port: int, rows: int = 100_000, dim: int = 128, batch: int = 100_000,
        seed: int = 0, pid: int | None = None) -> dict[str, Any]:
    """Insert ``rows`` random vectors in batches into a fresh collection; return the figures."""
    from milvus import Milvus

    client = Milvus(host, port)
    name = f"bench_insert_{int(time.time() * 1000)}"
    status = client.create_collection({"collection_name": name, "dimension": dim, "index_file_size": 1024,
                                       "metric_type": 1})
    if not status.OK():
        raise RuntimeError(f"create_collection failed: {status.message}")
    rng = np.random.default_rng(seed)
    before = _server_stats(client)
    pid = pid or before.get("pid")
    rss_before = _rss(pid)
    prep_s = insert_s = 0.0
    try:
        for start in range(0, rows, batch):
            x = rng.random((min(batch, rows - start), dim), dtype=np.float32)
            t0 = time.perf_counter()
            records = x.tolist()
            t1 = time.perf_counter()
            status, ids = client.insert(name, records)
            t2 = time.perf_counter()
            if not status.OK() or len(ids) != len(records):
                raise RuntimeError(f"insert failed: {status.message}")
            prep_s += t1 - t0
            insert_s += t2 - t1
        after = _server_stats(client)
        rss_after = _rss(pid)
        t0 = time.perf_counter()
        client.flush([name])
        flush_s = time.perf_counter() - t0
        _, count = client.count_entities(name)
    finally:
        client.drop_collection(name)
        client.close()
    decode = after.get("insert_decode_seconds", 0.0) - before.get("insert_decode_seconds", 0.0)
    calls = after.get("insert_calls", 0) - before.get("insert_calls", 0)
    raw = rows * dim * 4
    return {
        "bench": "insert", "rows": rows, "dim": dim, "batch": batch,
        "insert_seconds": round(insert_s, 4),
        "rows_per_s": round(rows / insert_s, 1) if insert_s else None,
        "client_tolist_seconds": round(prep_s, 4),
        "rows_per_s_incl_tolist": round(rows / (insert_s + prep_s), 1) if insert_s else None,
        "server_decode_seconds": round(decode, 5),
        "server_decode_ms_per_100k_rows": round(decode / rows * 1e5 * 1e3, 3) if rows else None,
        "server_fast_path_calls": after.get("insert_fast_path", 0) - before.get("insert_fast_path", 0),
        "insert_calls": calls,
        "wire_bytes": after.get("insert_bytes", 0) - before.get("insert_bytes", 0),
        "flush_seconds": round(flush_s, 4),
        "count_after_flush": count,
        "raw_data_mb": round(raw / 2**20, 2),
        "server_rss_before_mb": round(rss_before / 2**20, 1) if rss_before else None,
        "server_rss_after_mb": round(rss_after / 2**20, 1) if rss_after else None,
    }


def cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="labkit bench insert", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--batch", type=int, default=100_000, help="rows per insert call")
    ap.add_argument("--host", default=None,
                    help="an existing node or router (default: start a temporary node)")
    ap.add_argument("--port", type=int, default=None)
    ap.add_argument("--crash-rounds", type=int, default=0,
                    help="instead: kill -9 a node after acknowledged inserts this many times "
                    "and count survivors")
    add_output_args(ap)
    args = ap.parse_args(argv)
    if args.crash_rounds > 0:
        emit(crash_recovery(args.crash_rounds, min(args.rows, 10_000), args.dim), args)
        return 0
    if args.rows <= 0 or args.dim <= 0 or args.batch <= 0:
        print("labkit bench insert: --rows, --dim and --batch must be positive.", file=sys.stderr)
        return 2
    if args.host or args.port:
        result = run(args.host or "127.0.0.1", args.port or 19530, args.rows, args.dim, args.batch)
    else:
        with temporary_node() as node:
            result = run(node["host"], node["port"], args.rows, args.dim, args.batch, pid=node["pid"])
    emit(result, args)
    return 0
