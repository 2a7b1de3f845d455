"""Client-side cost of one pymilvus 1.1.2 insert: validate, build InsertParam, serialize.

This is the part the protobuf runtime decides: pure-Python protobuf 3.20 needs ~16 s
for 100,000 x 128 on this class of machine; the upb runtime (through labkit.milvus.proto)
should be a few seconds at most. No server is needed: we time exactly what
``Milvus.insert`` does before the bytes go on the wire.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import numpy as np

from labkit.bench import add_output_args, emit


def run(rows: int = 100_000, dim: int = 128, repeat: int = 3, seed: int = 0) -> dict[str, Any]:
    """Time pymilvus's own insert preparation; returns medians in seconds and the payload size."""
    from labkit.milvus import proto

    proto.install()
    from milvus.client.check import check_pass_param
    from milvus.client.prepare import Prepare

    vectors = np.random.default_rng(seed).random((rows, dim), dtype=np.float32).tolist()
    check_s, build_s, serialize_s, total_s = [], [], [], []
    nbytes = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        check_pass_param(collection_name="bench", records=vectors)
        t1 = time.perf_counter()
        param = Prepare.insert_param("bench", vectors, None)
        t2 = time.perf_counter()
        nbytes = len(param.SerializeToString())
        t3 = time.perf_counter()
        check_s.append(t1 - t0)
        build_s.append(t2 - t1)
        serialize_s.append(t3 - t2)
        total_s.append(t3 - t0)
    return {
        "benchmark": "client_insert_prepare",
        "rows": rows,
        "dim": dim,
        "repeat": repeat,
        "protobuf_backend": proto.protobuf_backend(),
        "check_s_median": statistics.median(check_s),
        "build_s_median": statistics.median(build_s),
        "serialize_s_median": statistics.median(serialize_s),
        "total_s_median": statistics.median(total_s),
        "total_s_all": total_s,
        "payload_bytes": nbytes,
        "target_s": 4.0,
    }


def run_pure_python(rows: int, dim: int, repeat: int = 1) -> dict[str, Any]:
    """The same measurement in a child interpreter forced onto pure-Python protobuf, for comparison."""
    import os
    import subprocess
    import sys

    code = ("import json; from labkit.bench.client import run; "
            f"print(json.dumps(run({rows}, {dim}, {repeat})))")
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="labkit bench client",
                                     description="Time pymilvus 1.1.2 building and serializing one insert.")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare-python", action="store_true",
                        help="also time pure-Python protobuf in a child process (slow: ~16 s per 100k rows)")
    add_output_args(parser)
    args = parser.parse_args(argv)
    result = run(args.rows, args.dim, args.repeat)
    if args.compare_python:
        slow = run_pure_python(args.rows, args.dim)
        result["pure_python_total_s"] = slow["total_s_median"]
        result["speedup_vs_pure_python"] = slow["total_s_median"] / result["total_s_median"]
    emit(result, args, [f"{args.rows} x {args.dim} on protobuf {result['protobuf_backend']}: "
                        f"{result['total_s_median']:.2f} s median (target <= {result['target_s']} s)"])
    return 0
