"""Micro-benchmark of the lab node's engine: build, search latency, recall and size per index type.

Runs in-process on random data (no server): `python -m labkit.bench.engine --rows 100000 --dim 128`.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

from labkit.bench import add_output_args, emit
from labkit.milvus.enums import IndexType, MetricType
from labkit.node.engine import SegmentIndex, brute_force

# Exact search latency expected of the engine: nq=1, topk=10 over 100k x 128 within a few ms.
FLAT_TARGET_MS = 5.0

DEFAULT_INDEXES: dict[str, tuple[int, dict, dict]] = {
    "FLAT": (IndexType.FLAT, {}, {}),
    "IVF_FLAT": (IndexType.IVF_FLAT, {"nlist": 1024}, {"nprobe": 16}),
    "IVF_SQ8": (IndexType.IVF_SQ8, {"nlist": 1024}, {"nprobe": 16}),
    "IVF_PQ": (IndexType.IVF_PQ, {"nlist": 1024, "m": 16, "nbits": 8}, {"nprobe": 16}),
    "HNSW": (IndexType.HNSW, {"M": 16, "efConstruction": 100}, {"ef": 64}),
}


def _data(rows: int, dim: int, nq: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian mixture: clustered like real embeddings, so recall figures mean something."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(1, rows // 100), dim)).astype(np.float32) * 3
    x = centers[rng.integers(0, len(centers), rows)] + rng.normal(size=(rows, dim)).astype(np.float32)
    q = centers[rng.integers(0, len(centers), nq)] + rng.normal(size=(nq, dim)).astype(np.float32)
    return np.ascontiguousarray(x, dtype=np.float32), np.ascontiguousarray(q, dtype=np.float32)


def _latency_ms(fn: Any, repeat: int) -> dict[str, float]:
    fn()  # warm up (page in, thread pool)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p95_ms": round(float(np.percentile(times, 95)), 3),
    }


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    return round(
        float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])), 4
    )


def run(
    rows: int = 100_000,
    dim: int = 128,
    topk: int = 10,
    nq_batch: int = 100,
    repeat: int = 30,
    metric: int = MetricType.L2,
    indexes: list[str] | None = None,
    seed: int = 0,
    binary_bits: int = 512,
) -> dict[str, Any]:
    """Build each index over one segment and time nq=1 and nq=``nq_batch`` searches."""
    x, q = _data(rows, dim, max(nq_batch, 1), seed)
    _, truth = brute_force(x, q, topk, metric)
    deleted = np.zeros(rows, dtype=bool)
    deleted[::10] = True
    result: dict[str, Any] = {
        "rows": rows,
        "dim": dim,
        "topk": topk,
        "metric": MetricType(metric).name,
        "raw_bytes": int(x.nbytes),
        "raw_segment": {
            "nq1": _latency_ms(lambda: brute_force(x, q[:1], topk, metric), repeat),
            "nq1_10pct_deleted": _latency_ms(lambda: brute_force(x, q[:1], topk, metric, deleted), repeat),
            f"nq{nq_batch}": _latency_ms(lambda: brute_force(x, q, topk, metric), max(3, repeat // 10)),
        },
        "indexes": {},
        "flat_target_ms": FLAT_TARGET_MS,
    }
    for name in indexes or list(DEFAULT_INDEXES):
        itype, build, search = DEFAULT_INDEXES[name]
        t = time.perf_counter()
        index = SegmentIndex.build(x, itype, metric, build)
        build_s = time.perf_counter() - t
        t = time.perf_counter()
        blob = index.to_bytes()
        ser_s = time.perf_counter() - t
        t = time.perf_counter()
        SegmentIndex.from_bytes(blob)
        load_s = time.perf_counter() - t
        _, found = index.search(q, topk, search)
        result["indexes"][name] = {
            "build_params": build,
            "search_params": search,
            "effective": index.effective,
            "build_s": round(build_s, 3),
            "nbytes": index.nbytes,
            "serialized_bytes": len(blob),
            "serialize_s": round(ser_s, 3),
            "load_s": round(load_s, 3),
            f"recall@{topk}": _recall(found, truth),
            "nq1": _latency_ms(lambda index=index, search=search: index.search(q[:1], topk, search), repeat),
            "nq1_10pct_deleted": _latency_ms(
                lambda index=index, search=search: index.search(q[:1], topk, search, deleted), repeat
            ),
            f"nq{nq_batch}": _latency_ms(
                lambda index=index, search=search: index.search(q, topk, search), max(3, repeat // 10)
            ),
        }
    if binary_bits:
        codes = np.random.default_rng(seed).integers(0, 256, (rows, binary_bits // 8), dtype=np.uint8)
        bq = codes[: max(nq_batch, 1)].copy()
        result["binary_raw_segment"] = {
            "bits": binary_bits,
            **{
                m.name: {
                    "nq1": _latency_ms(lambda m=m: brute_force(codes, bq[:1], topk, m), repeat),
                    f"nq{nq_batch}": _latency_ms(
                        lambda m=m: brute_force(codes, bq, topk, m), max(3, repeat // 10)
                    ),
                }
                for m in (
                    MetricType.HAMMING,
                    MetricType.JACCARD,
                    MetricType.TANIMOTO,
                    MetricType.SUBSTRUCTURE,
                )
            },
        }
    if "FLAT" in result["indexes"]:
        result["flat_nq1_meets_target"] = result["indexes"]["FLAT"]["nq1"]["p50_ms"] <= FLAT_TARGET_MS
    return result


def cli(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="labkit bench engine", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--nq-batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--metric", choices=["L2", "IP"], default="L2")
    ap.add_argument("--index", action="append", choices=list(DEFAULT_INDEXES), help="repeatable; default all")
    ap.add_argument("--binary-bits", type=int, default=512, help="binary brute-force section (0 = skip)")
    add_output_args(ap)
    args = ap.parse_args(argv)
    result = run(
        args.rows,
        args.dim,
        args.topk,
        args.nq_batch,
        args.repeat,
        MetricType[args.metric],
        args.index,
        binary_bits=args.binary_bits,
    )
    emit(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(cli(sys.argv[1:]))
