"""Search latency through the router, next to one node searched directly and in-process faiss.

``labkit bench search [--via router|node] [--node-link frames|grpc] --rows N --dim 128 --nq 10
--topk 10 --json``

One run builds its own small cluster on the running lab's storage (a fresh metadata database,
an rw node, ``--ro`` read nodes, a router on a free port), inserts the same vectors everywhere
once (segments just over index_file_size, so the router has files to split), and measures:
routed Search, Search on one read node directly (it scans every file itself), and faiss
IndexFlat on the same array, interleaved. Per target: latency percentiles and the CPU
milliseconds each process (client, read nodes, router) spent per search. With every core busy the
routed/direct latency ratio follows the CPU spent more than the critical path, and the routed
path runs one more hop and one more node request (``servers_cpu_router_to_node``). The router
calls the read nodes over the lab's framed TCP link (``--node-link frames``, ``router_links``) or
over gRPC as Mishards does (``--node-link grpc``).
``breakdown_ms``: where each millisecond of a search goes (means per call over the timed searches):
the stages each server timed itself (router: file list check, fan-out, merge, reply; node: meta,
decode, search, reply; read from their ``labkit_topology`` / ``labkit_stats``), and what is left of the
client's latency for the client and the wire. Also the direct node's RSS next to the raw vector
bytes, and the machine's load. Everything it starts is stopped (by PID) and its database dropped,
even on failure.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from typing import Any

import numpy as np

from labkit.bench import add_output_args, emit
from labkit.bench.ephemeral import EphemeralCluster
from labkit.errors import LabError
from labkit.milvus.timing import per_call

# routed p50 / direct p50 at nq=10, topk=10: at most 1.10 on small collections, 1.05 from 100,000 rows
TARGET_RATIO_SMALL, TARGET_RATIO_LARGE, LARGE_ROWS = 1.10, 1.05, 100_000


def target_ratio(rows: int) -> float:
    return TARGET_RATIO_LARGE if rows >= LARGE_ROWS else TARGET_RATIO_SMALL


def _stats(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1000.0
    return {"p50_ms": round(float(np.percentile(a, 50)), 3), "p99_ms": round(float(np.percentile(a, 99)), 3),
            "mean_ms": round(float(a.mean()), 3), "n": int(a.size)}


def _timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def _cpu(proc: Any) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def _short(name: str) -> str:
    """``bs-ro1`` -> ``ro1`` (JSON keys that do not change from run to run)."""
    return name.removeprefix("bs-")


def _search_fn(client, name: str, q: list, topk: int):
    def run():
        st, res = client.search(name, topk, q)
        if not st.OK():
            raise LabError(f"Search failed during the benchmark: {st.message}")
        return res
    return run


def _timings(client: Any, cmd: str) -> dict:
    import json

    status, text = client._cmd(cmd)
    return json.loads(text).get("timings", {}) if status.OK() else {}


def _server_timings(ec: EphemeralCluster, via: str) -> dict[str, dict]:
    out = {n: _timings(ec.node_clients[n], "labkit_stats") for n in ec.ro_names}
    if via == "router":
        out["router"] = _timings(ec.client, "labkit_topology")
    return out


def breakdown(before: dict[str, dict], after: dict[str, dict], latency: dict[str, dict], direct: str) -> dict:
    """Per target: its p50 latency, the stages its servers timed (ms per call) and the rest."""
    out: dict[str, Any] = {}
    node = per_call(before[direct], after[direct], "Search")
    out["node"] = {"latency_p50": latency["node"]["p50_ms"], "server": node}
    if node:
        out["node"]["client_and_wire"] = round(latency["node"]["mean_ms"] - node.get("total", 0.0), 3)
    if "router" in after:
        router = per_call(before["router"], after["router"], "Search")
        legs = {_short(n): per_call(before[n], after[n], "SearchInFiles") for n in after if n != "router"}
        out["router"] = {"latency_p50": latency["router"]["p50_ms"], "router": router,
                         # each SearchInFiles as the router saw it: pool hand-off, the RPC's wall time
                         "node_calls": per_call(before["router"], after["router"], "SearchInFiles call"),
                         "nodes": {n: v for n, v in legs.items() if v}}
        if router:
            out["router"]["client_and_wire"] = round(
                latency["router"]["mean_ms"] - router.get("total", 0.0), 3)
    out["faiss"] = {"latency_p50": latency["faiss"]["p50_ms"]}
    return out


def run(rows: int = 20_000, dim: int = 128, nq: int = 10, topk: int = 10, ro: int = 2, repeat: int = 200,
        via: str = "router", seed: int = 0, lab: Any = None, node_link: str = "frames") -> dict[str, Any]:
    """Build, measure, tear down; returns plain data (see module doc).

    ``node_link``: how the router calls the read nodes, ``frames`` (the lab's framed TCP link) or
    ``grpc`` (as Mishards does), to compare the two.
    """
    import faiss

    # faiss in this process on one OpenMP thread, as each node searches (labkit.node.engine.SEARCH_THREADS):
    # a wider team would also keep spinning after each search and slow the node or router timed next
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return _measure(rows, dim, nq, topk, ro, repeat, via, seed, lab, node_link)
    finally:
        faiss.omp_set_num_threads(threads)


def _measure(rows: int, dim: int, nq: int, topk: int, ro: int, repeat: int, via: str, seed: int,
             lab: Any, node_link: str) -> dict[str, Any]:
    import faiss
    import psutil

    from labkit.lab.api import Lab

    if via not in {"router", "node"}:
        raise LabError(f"--via must be router or node, not {via!r}.")
    if node_link not in {"frames", "grpc"}:
        raise LabError(f"--node-link must be frames or grpc, not {node_link!r}.")
    if rows < 1 or dim < 1 or nq < 1 or topk < 1 or ro < 1:
        raise LabError("rows, dim, nq, topk and ro must all be at least 1.")
    lab = lab or Lab()
    rng = np.random.default_rng(seed)
    data = rng.random((rows, dim), dtype=np.float32)
    queries = rng.random((nq, dim), dtype=np.float32)
    q = queries.tolist()
    out: dict[str, Any] = {"rows": rows, "dim": dim, "nq": nq, "topk": topk, "read_nodes": ro, "via": via,
                           "repeat": repeat}
    if via == "router":
        out["node_link"] = node_link
    with EphemeralCluster(lab, "bs", ro=ro, router=via == "router",
                          router_options={"node_frames": node_link == "frames"}) as ec:
        out["fuse"] = bool(getattr(lab, "fuse", False))
        name = ec.db
        writer = ec.node_clients[ec.rw_name]
        st = writer.create_collection({"collection_name": name, "dimension": dim, "index_file_size": 1,
                                       "metric_type": 1})
        if not st.OK():
            raise LabError(f"Could not create the benchmark collection: {st.message}")
        seg_rows = max(1, math.ceil((1 << 20) / (dim * 4)) + 1)  # each flush one file above 1 MB
        ids = []
        t0 = time.perf_counter()
        for lo in range(0, rows, seg_rows):
            st, part = writer.insert(name, data[lo:lo + seg_rows])
            if not st.OK():
                raise LabError(f"Insert failed during the benchmark: {st.message}")
            ids.extend(part)
            writer.flush([name])
        out["insert_s"] = round(time.perf_counter() - t0, 3)
        ids_arr = np.asarray(ids, dtype=np.int64)

        first_ro = ec.ro_names[0]
        direct = ec.node_clients[first_ro]
        direct_fn = _search_fn(direct, name, q, topk)
        direct_fn()  # first query loads the segments from the shared storage
        index = faiss.IndexFlatL2(dim)
        index.add(data)
        _, fi = index.search(queries, topk)
        truth = ids_arr[fi]
        targets = {"node": direct_fn, "faiss": lambda: index.search(queries, topk)}

        res = direct_fn()
        out["node_recall_vs_faiss"] = round(float(np.isin(np.array(res.id_array), truth).mean()), 4)
        rss = psutil.Process(ec.records[first_ro]["pid"]).memory_info().rss
        out["node_rss_mb"] = round(rss / 2**20, 1)
        out["raw_data_mb"] = round(data.nbytes / 2**20, 1)
        out["node_rss_to_raw"] = round(rss / data.nbytes, 2)

        if via == "router":
            routed = ec.client
            routed_fn = _search_fn(routed, name, q, topk)
            routed_fn()
            targets["router"] = routed_fn
        # interleaved, so a busy neighbour on the machine slows every target alike
        samples: dict[str, list[float]] = {k: [] for k in targets}
        for fn in targets.values():
            _timed(fn, 3)  # warm-up
        # CPU seconds each of our processes spends per search of each target: on a machine whose
        # cores are all busy, latency ratios follow these rather than the critical path
        watched = {"client": psutil.Process()}
        watched.update({n: psutil.Process(ec.records[n]["pid"]) for n in ec.ro_names})
        if via == "router":
            watched["router"] = psutil.Process(ec.router["pid"])
        cpu: dict[str, dict[str, float]] = {k: dict.fromkeys(watched, 0.0) for k in targets}
        # node and router alternate which goes first, faiss always last: each of the two follows
        # the other, and in-process faiss, equally often
        pair = [k for k in targets if k != "faiss"]
        load_before = os.getloadavg()[0]
        timings_before = _server_timings(ec, via)
        for n in range(repeat):
            for k in (pair if n % 2 == 0 else pair[::-1]) + ["faiss"]:
                before = {w: _cpu(p) for w, p in watched.items()}
                samples[k] += _timed(targets[k], 1)
                for w, p in watched.items():
                    cpu[k][w] += _cpu(p) - before[w]
        timings_after = _server_timings(ec, via)
        for k, v in samples.items():
            out[k] = _stats(v)
            out[k]["cpu_ms_per_search"] = {_short(w): round(c / repeat * 1000, 2) for w, c in cpu[k].items()}
        out["breakdown_ms"] = breakdown(timings_before, timings_after, out, first_ro)
        out["machine"] = {"cpus": os.cpu_count(), "load_1min_before": round(load_before, 2),
                          "load_1min_after": round(os.getloadavg()[0], 2)}
        if via == "router":
            res = routed_fn()
            out["router_recall_vs_faiss"] = round(float(np.isin(np.array(res.id_array), truth).mean()), 4)
            from labkit.router import introspect

            info = introspect(routed, name)
            out["files_per_node"] = {k: len(v) for k, v in info["routing"]["by_node"].items()}
            out["router_stats"] = info["topology"]["stats"]
            out["router_read_nodes"] = info["topology"]["read_nodes"]
            out["router_suspended"] = info["topology"]["suspended"]
            # how SearchInFiles reached each read node: frames (lab nodes) or grpc
            out["router_links"] = {k: v["link"] for k, v in info["topology"]["links"].items()}
            ratio = out["router"]["p50_ms"] / max(out["node"]["p50_ms"], 1e-9)
            out["router_to_node_p50"] = round(ratio, 3)
            out["router_overhead_p50_ms"] = round(out["router"]["p50_ms"] - out["node"]["p50_ms"], 3)
            # CPU of the cluster's processes (the client's includes faiss's spinning threads)
            servers = {k: sum(v for w, v in out[k]["cpu_ms_per_search"].items() if w != "client")
                       for k in ("router", "node")}
            out["servers_cpu_router_to_node"] = round(servers["router"] / max(servers["node"], 1e-9), 3)
            out["target_ratio"] = target_ratio(rows)
            out["meets_target"] = bool(ratio <= out["target_ratio"])
    return out


def cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="labkit bench search", description=__doc__.splitlines()[0])
    ap.add_argument("--via", choices=["router", "node"], default="router")
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--nq", type=int, default=10)
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--ro", type=int, default=2, help="read nodes behind the router")
    ap.add_argument("--repeat", type=int, default=200, help="timed searches per target")
    ap.add_argument("--node-link", choices=["frames", "grpc"], default="frames",
                    help="router -> read node calls: the lab's framed TCP link, or gRPC as Mishards")
    add_output_args(ap)
    args = ap.parse_args(argv)
    result = run(rows=args.rows, dim=args.dim, nq=args.nq, topk=args.topk, ro=args.ro, repeat=args.repeat,
                 via=args.via, node_link=args.node_link)
    emit(result, args)
    return 0
