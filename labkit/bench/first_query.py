"""First-query benchmark of the article (notebook 06): how long the first search covering a new batch takes.

The article's workload, through the router: N batches of B vectors (dim 128) arrive at 1-8 s
intervals (fixed seed); each batch is inserted, flushed (or left to auto-flush) and sealed into an
IVF_FLAT segment (``index_file_size`` below the batch size, so each batch is its own indexed file;
``create_index`` waits for the build). Then, per batch:

* ``first_s``: the first search through the router whose results must include the new rows: the
  queries are vectors of the new batch, and each must find its own id at distance ~0. A stale
  answer is retried and the time keeps running, so a fast-but-stale answer never counts;
* ``warm_s``: the same query again (median of 3); ``idle_warm_s``: once more after ``idle_s`` of
  idle, a control for what any request after a pause costs on data that is already loaded;
  ``unseen_query_s``: a query of other new rows, never asked before, on the loaded data (a control:
  it reads other inverted lists from RAM, while the repeated query finds them in the CPU cache);
* ``freshness_s``: from the seal acknowledged to the new rows being searchable on every ro node,
  checked by asking each ro node directly (``search_in_segment`` on the new file ids).

Modes: ``lazy`` (Milvus 1.1: a ro node loads a segment when a query first needs it; the first query
is issued right after the seal, and the freshness lag is the on-demand load on the slowest ro node)
and ``preload`` (ro nodes poll the metadata and load new segments before they are asked; the
freshness lag is measured passively from the nodes' cache, then the first query is issued).
Also measured per batch (lazy mode): the cold read throughput of the new segment's files through a
separate JuiceFS client, which is what limits ``lazy``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labkit.bench import add_output_args, emit, results_only_on_stdout
from labkit.bench.ephemeral import EphemeralCluster
from labkit.errors import LabError
from labkit.nb.progress import milestone
from labkit.nb.sizes import config

MODES = ("lazy", "preload")
IVF_FLAT = 2  # milvus.IndexType.IVF_FLAT
L2 = 1
ZERO = 1e-3  # a vector's squared L2 distance to itself, with float error


# ----------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Plan:
    """Everything the run is parameterised by; stated in the result."""

    size: str
    batches: int
    batch_rows: int
    dim: int
    intervals_s: tuple[float, ...]  # pause after each batch (the article: uniform 1-8 s)
    nq: int
    topk: int
    index_type: str
    nlist: int
    nprobe: int
    index_file_size_mb: int  # below one batch's size: every batch becomes its own sealed file
    seed: int
    auto_flush: bool
    ro_nodes: int
    preload_poll_s: float
    ro_omp_threads: int  # OpenMP threads per ro node (0 = faiss default: one per core)
    idle_s: float  # control: the same query once more after this idle pause (0 = skip)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_plan(size: str | None = None, seed: int = 0, auto_flush: bool = False, batches: int | None = None,
              batch_rows: int | None = None, intervals: tuple[float, float] | None = None,
              nprobe: int = 8, preload_poll_s: float = 0.01, ro_omp_threads: int = 1,
              idle_s: float = 1.0) -> Plan:
    """The plan for ``size`` (``config(size)``), with optional overrides."""
    cfg = config(size)
    n = batches or cfg.batches
    rows = batch_rows or cfg.batch_rows
    lo, hi = intervals or cfg.interval_s
    rng = np.random.default_rng(seed)
    batch_mb = rows * cfg.dim * 4 / 2**20
    return Plan(size=cfg.size, batches=n, batch_rows=rows, dim=cfg.dim,
                intervals_s=tuple(round(float(x), 2) for x in rng.uniform(lo, hi, n)),
                nq=cfg.nq, topk=cfg.topk, index_type="IVF_FLAT", nlist=nlist_for(rows), nprobe=nprobe,
                index_file_size_mb=max(1, int(batch_mb // 2)), seed=seed, auto_flush=auto_flush,
                ro_nodes=cfg.ro_nodes, preload_poll_s=preload_poll_s, ro_omp_threads=ro_omp_threads,
                idle_s=idle_s)


def nlist_for(rows: int) -> int:
    """A power of two near rows/39 (faiss wants >= 39 training points per list), 16..1024."""
    n = 16
    while n * 2 * 39 <= rows and n < 1024:
        n *= 2
    return n


def batch_vectors(plan: Plan, batch: int) -> np.ndarray:
    """Batch ``batch``'s vectors, the same for every mode (seeded by plan.seed and the batch number)."""
    rng = np.random.default_rng([plan.seed, batch])
    return rng.random((plan.batch_rows, plan.dim), dtype=np.float32)


def query_rows(plan: Plan, batch: int) -> np.ndarray:
    """Which rows of the batch are used as queries (spread over the batch)."""
    return np.linspace(0, plan.batch_rows - 1, plan.nq).astype(int)


# ---------------------------------------------------------------------------------- checks
def covers(ids: np.ndarray, distances: np.ndarray, expected: Sequence[int], zero: float = ZERO) -> bool:
    """True if row i of the result holds ``expected[i]`` at distance <= ``zero`` (its own vector)."""
    ids, distances = np.asarray(ids), np.asarray(distances)
    if ids.ndim != 2 or ids.shape[0] != len(expected):
        return False
    for row_ids, row_d, want in zip(ids, distances, expected, strict=True):
        hit = np.nonzero(row_ids == want)[0]
        if hit.size == 0 or row_d[hit[0]] > zero:
            return False
    return True


def stats(values: Sequence[float]) -> dict[str, float]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"p50": float("nan"), "mean": float("nan"), "max": float("nan"), "n": 0}
    return {"p50": round(statistics.median(vals), 5), "mean": round(statistics.fmean(vals), 5),
            "max": round(max(vals), 5), "n": len(vals)}


def _result_arrays(results: Any, nq: int) -> tuple[np.ndarray, np.ndarray]:
    ids = results.id_array if results is not None else []
    dist = results.distance_array if results is not None else []
    if len(ids) != nq:
        return np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0))
    width = min(len(r) for r in ids) if ids else 0
    return (np.array([r[:width] for r in ids], dtype=np.int64), np.array([r[:width] for r in dist]))


# --------------------------------------------------------------------------------- cluster
class ModeCluster(EphemeralCluster):
    """rw + ro nodes + a router for one mode, on a fresh metadata database and storage directory."""

    def __init__(self, lab: Any, mode: str, plan: Plan) -> None:
        super().__init__(lab, f"fq-{mode}", ro=plan.ro_nodes, node_options=self._options,
                         node_env=self._env)
        self.mode, self.plan = mode, plan
        self.collection = self.db

    def _options(self, role: str) -> dict[str, Any]:
        extra: dict[str, Any] = {"auto_flush_interval": 1 if self.plan.auto_flush else 0,
                                 "preload": role == "ro" and self.mode == "preload"}
        if extra["preload"]:
            extra["preload_poll_interval"] = self.plan.preload_poll_s
        return extra

    def _env(self, role: str) -> dict[str, str]:
        # the node process inherits it (Milvus: engine_config.omp_thread_num)
        if role == "ro" and self.plan.ro_omp_threads:
            return {"OMP_NUM_THREADS": str(self.plan.ro_omp_threads)}
        return {}

    @property
    def ro_clients(self) -> dict[str, Any]:
        return {n: self.node_clients[n] for n in self.ro_names}

    # -- metadata -----------------------------------------------------------------------------
    def searchable_files(self) -> list[dict[str, Any]]:
        """TableFiles rows of the collection that are searched (RAW, TO_INDEX, INDEX)."""
        import pymysql

        conn = pymysql.connect(**{**self.lab.mysql_params(), "database": self.db})
        try:
            with conn.cursor(pymysql.cursors.DictCursor) as cur:
                cur.execute("SELECT id, table_id, segment_id, file_id, file_type, file_size, row_count "
                            "FROM TableFiles WHERE table_id=%s AND file_type IN (1,2,3)", (self.collection,))
                return list(cur.fetchall())
        finally:
            conn.close()

    def loaded(self, name: str) -> set[int]:
        """TableFiles ids in ro node ``name``'s cache (labkit's ``cache_info`` command; passive)."""
        status, text = self.ro_clients[name]._cmd("cache_info")
        if not status.OK():
            return set()
        return {int(s["file_row_id"]) for s in json.loads(text).get("segments", [])}

    def segment_dir(self, mount: Path, f: dict[str, Any]) -> Path:
        return mount / self.storage_dir / "db" / "tables" / str(f["table_id"]) / str(f["segment_id"])


# ---------------------------------------------------------------------------------- a batch
def _search(client: Any, coll: str, q: list, plan: Plan) -> tuple[float, Any]:
    t0 = time.perf_counter()
    status, res = client.search(coll, plan.topk, q, params={"nprobe": plan.nprobe})
    dt = time.perf_counter() - t0
    if not status.OK():
        raise LabError(f"Search through the router failed: {status.message}")
    return dt, res


def _verified_search(client: Any, coll: str, q: list, want: list[int], plan: Plan,
                     timeout: float = 60.0) -> tuple[float, int, float]:
    """(seconds until a verified answer, attempts, latency of the first call)."""
    t0 = time.perf_counter()
    attempts = 0
    first_call = None
    while True:
        attempts += 1
        dt, res = _search(client, coll, q, plan)
        first_call = dt if first_call is None else first_call
        if covers(*_result_arrays(res, plan.nq), want):
            return time.perf_counter() - t0, attempts, first_call
        if time.perf_counter() - t0 > timeout:
            raise LabError(f"The new rows were not searchable through the router after {timeout:.0f} s.")
        time.sleep(0.01)


def _probe_node(mc: ModeCluster, name: str, file_ids: list[str], q: list, want: list[int]) -> float:
    """Latency of a direct search_in_segment on ro node ``name`` that returns the new rows."""
    client = mc.ro_clients[name]
    t0 = time.perf_counter()
    status, res = client.search_in_segment(mc.collection, file_ids, q, mc.plan.topk,
                                           params={"nprobe": mc.plan.nprobe})
    dt = time.perf_counter() - t0
    if not status.OK() or not covers(*_result_arrays(res, mc.plan.nq), want):
        raise LabError(f"ro node {name} did not return the new rows from files {file_ids}: {status.message}")
    return dt


def _wait_preloaded(mc: ModeCluster, new_ids: set[int], t_ack: float, timeout: float = 120.0) -> dict[str, float]:
    """Per ro node: seconds from ``t_ack`` until the new files are in its cache (polled passively)."""
    pending = set(mc.names[1:])
    lag: dict[str, float] = {}
    while pending:
        for name in sorted(pending):
            if new_ids <= mc.loaded(name):
                lag[name] = time.perf_counter() - t_ack
                pending.discard(name)
        if pending and time.perf_counter() - t_ack > timeout:
            raise LabError(f"ro nodes {sorted(pending)} did not preload the new segment within {timeout:.0f} s.")
        if pending:
            time.sleep(0.005)
    return lag


def _seal(mc: ModeCluster, data: np.ndarray, known: set[int]) -> tuple[dict[str, float], list[dict], list[int]]:
    """Insert, flush (or wait for auto-flush), wait for the index; returns timings, new files, ids."""
    c, coll, plan = mc.client, mc.collection, mc.plan
    t0 = time.perf_counter()
    ids: list[int] = []
    step = 50_000  # keep each gRPC message well below 32 MB
    for start in range(0, len(data), step):
        status, got = c.insert(coll, data[start:start + step].tolist())
        if not status.OK():
            raise LabError(f"Insert failed: {status.message}")
        ids += list(got)
    t_insert = time.perf_counter()
    if plan.auto_flush:
        deadline = t_insert + 60
        while not (set(f["id"] for f in mc.searchable_files()) - known):
            if time.perf_counter() > deadline:
                raise LabError("Auto-flush did not write the batch within 60 s.")
            time.sleep(0.05)
    else:
        status = c.flush([coll])
        if not status.OK():
            raise LabError(f"Flush failed: {status.message}")
    t_flush = time.perf_counter()
    status = c.create_index(coll, IVF_FLAT, {"nlist": plan.nlist})  # blocks until the batch is indexed
    if not status.OK():
        raise LabError(f"create_index failed: {status.message}")
    t_index = time.perf_counter()
    files = [f for f in mc.searchable_files() if f["id"] not in known]
    timing = {"insert_s": round(t_insert - t0, 4), "flush_s": round(t_flush - t_insert, 4),
              "index_s": round(t_index - t_flush, 4)}
    return timing, files, ids


def _files_a_node_reads(d: Path, f: dict[str, Any]) -> list[Path]:
    """What a ro node reads to load file ``f``: the index (INDEX) or the raw vectors, plus the ids."""
    main = d / str(f["file_id"]) if int(f["file_type"]) == 3 else d / f"{f['segment_id']}.rv"
    wanted = [main, d / f"{f['segment_id']}.uid"]
    if all(p.is_file() for p in wanted):
        return wanted
    return sorted(p for p in d.glob("*") if p.is_file())  # another layout: read the whole segment


def cold_read(mc: ModeCluster, files: list[dict[str, Any]], reader: Path) -> dict[str, float]:
    """Read the new segment's files through a separate JuiceFS client, cold (cache evicted)."""
    from labkit.bench.storage_fio import drop_page_cache, evict_juicefs

    paths = [p for f in files for p in _files_a_node_reads(mc.segment_dir(reader, f), f)]
    if not paths:
        return {}
    for p in paths:
        evict_juicefs(p) if mc.lab.fuse else None
    dropped = drop_page_cache()
    t0 = time.perf_counter()
    nbytes = 0
    for p in paths:
        with open(p, "rb") as fh:
            while chunk := fh.read(4 << 20):
                nbytes += len(chunk)
    dt = time.perf_counter() - t0
    return {"bytes": nbytes, "seconds": round(dt, 4), "mib_s": round(nbytes / 2**20 / dt, 1),
            "page_cache_dropped": dropped}


def run_batch(mc: ModeCluster, b: int, known: set[int], reader: Path | None) -> dict[str, Any]:
    plan = mc.plan
    data = batch_vectors(plan, b)
    timing, files, ids = _seal(mc, data, known)
    t_ack = time.perf_counter()
    if not files:
        raise LabError(f"Batch {b}: no new searchable file after the flush.")
    rows = query_rows(plan, b)
    q = data[rows].tolist()
    want = [ids[i] for i in rows]
    new_ids = {int(f["id"]) for f in files}
    file_ids = [str(i) for i in sorted(new_ids)]
    out: dict[str, Any] = {"batch": b + 1, **timing, "files": len(files),
                           "file_types": sorted({int(f["file_type"]) for f in files}),
                           "segment_bytes": int(sum(int(f["file_size"]) for f in files))}
    node_lag: dict[str, float] = {}
    if mc.mode == "preload":
        node_lag = _wait_preloaded(mc, new_ids, t_ack)
        for name in mc.names[1:]:  # confirm with a real search on each node (cheap: already loaded)
            _probe_node(mc, name, file_ids, q, want)
        out["freshness_s"] = round(max(node_lag.values()), 5)
    first_s, attempts, first_call = _verified_search(mc.client, mc.collection, q, want, plan)
    warm = [_verified_search(mc.client, mc.collection, q, want, plan)[0] for _ in range(3)]
    out.update(first_s=round(first_s, 5), first_attempts=attempts, first_call_s=round(first_call, 5),
               warm_s=round(statistics.median(warm), 5), verified=True)
    # control: a query never asked before (other rows of the same batch) on data already loaded; it
    # reads other inverted lists, from RAM rather than the CPU cache the repeated query enjoys
    rows2 = np.minimum(rows + 1, plan.batch_rows - 1)
    out["unseen_query_s"] = round(_verified_search(mc.client, mc.collection, data[rows2].tolist(),
                                                   [ids[i] for i in rows2], plan)[0], 5)
    if plan.idle_s > 0:  # control: what "first request after a pause" costs on data already loaded
        time.sleep(plan.idle_s)
        out["idle_warm_s"] = round(_verified_search(mc.client, mc.collection, q, want, plan)[0], 5)
    if mc.mode == "lazy":
        # searchable as soon as the seal returns; what lags is the on-demand load on each ro node
        for name in mc.names[1:]:
            node_lag[name] = _probe_node(mc, name, file_ids, q, want)
        out["freshness_s"] = round(max(first_s, *node_lag.values()), 5)
        if reader is not None:
            out["cold_read"] = cold_read(mc, files, reader)
    out["node_lag_s"] = {k: round(v, 5) for k, v in node_lag.items()}
    out["overhead_s"] = round(out["first_s"] - out["warm_s"], 5)
    known |= new_ids
    return out


def run_mode(lab: Any, mode: str, plan: Plan, reader: Path | None = None) -> dict[str, Any]:
    """Set up the mode's cluster, run every batch, tear it down; per-batch rows and a summary."""
    if mode not in MODES:
        raise LabError(f"Unknown mode {mode!r}; choose lazy, preload or both.")
    t0 = time.perf_counter()
    batches: list[dict[str, Any]] = []
    with ModeCluster(lab, mode, plan) as mc:
        status = mc.client.create_collection({"collection_name": mc.collection, "dimension": plan.dim,
                                              "index_file_size": plan.index_file_size_mb, "metric_type": L2})
        if not status.OK():
            raise LabError(f"create_collection failed: {status.message}")
        status = mc.client.create_index(mc.collection, IVF_FLAT, {"nlist": plan.nlist})
        if not status.OK():
            raise LabError(f"create_index failed: {status.message}")
        known: set[int] = set()
        for b in range(plan.batches):
            row = run_batch(mc, b, known, reader)
            batches.append(row)
            milestone(f"first-query {mode}: batch {b + 1}/{plan.batches} first {row['first_s']:.4f} s, "
                      f"warm {row['warm_s']:.4f} s, freshness {row['freshness_s']:.3f} s")
            if b + 1 < plan.batches:
                time.sleep(plan.intervals_s[b])
        status, total = mc.client.count_entities(mc.collection)
        rows_total = int(total) if status.OK() else None
    return {
        "mode": mode, "batches": batches, "rows_total": rows_total,
        "first_s": stats([b["first_s"] for b in batches]),
        "warm_s": stats([b["warm_s"] for b in batches]),
        "overhead_s": stats([b["overhead_s"] for b in batches]),
        "idle_warm_s": stats([b["idle_warm_s"] for b in batches if "idle_warm_s" in b]),
        "unseen_query_s": stats([b["unseen_query_s"] for b in batches]),
        "freshness_s": stats([b["freshness_s"] for b in batches]),
        "cold_read_mib_s": stats([b["cold_read"]["mib_s"] for b in batches if b.get("cold_read")]),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def run_first_query(size: str | None = None, mode: str = "both", lab: Any = None, seed: int = 0,
                    auto_flush: bool = False, **plan_overrides: Any) -> dict[str, Any]:
    """Both modes (or one) on the running lab; returns the plan, per-mode results and the verdicts."""
    from labkit.nb.bench_figures import ARTICLE_FIRST_QUERY_S

    modes = MODES if mode == "both" else (mode,)
    for m in modes:
        if m not in MODES:
            raise LabError(f"Unknown mode {m!r}; choose lazy, preload or both.")
    plan = make_plan(size, seed=seed, auto_flush=auto_flush, **plan_overrides)
    if lab is None:
        from labkit.lab.api import Lab

        lab = Lab()
        lab.up()
    reader_name = "fq-reader"
    reader = Path(lab.mount(reader_name)) if lab.fuse else None
    t0 = time.perf_counter()
    results: dict[str, Any] = {}
    try:
        for m in modes:
            milestone(f"first-query: mode {m}, {plan.batches} x {plan.batch_rows} x {plan.dim}")
            results[m] = run_mode(lab, m, plan, reader)
    finally:
        if reader is not None:
            lab.umount(reader_name)
    return {
        "benchmark": "first_query", "plan": plan.as_dict(), "modes": results,
        "article_first_query_s": ARTICLE_FIRST_QUERY_S,
        "index_note": (f"{plan.index_type}, nlist {plan.nlist}, nprobe {plan.nprobe}, index_file_size "
                       f"{plan.index_file_size_mb} MB (< one batch of {plan.batch_rows * plan.dim * 4 / 2**20:.1f} MB, "
                       "so every batch is sealed and indexed on its own); FLAT over 1,000,000 x 128 "
                       "cannot answer in 0.016 s on 2 cores. ro nodes run with OMP_NUM_THREADS="
                       f"{plan.ro_omp_threads or 'default'} (Milvus: engine_config.omp_thread_num): on 2 "
                       "shared cores, OpenMP threads spinning for small nq=10 searches cost ~3x latency."),
        "fuse": bool(lab.fuse),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def summary_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    """p50/mean/max per mode and metric, for a table."""
    rows = []
    for mode, r in result["modes"].items():
        for metric in ("first_s", "warm_s", "unseen_query_s", "idle_warm_s", "overhead_s", "freshness_s"):
            rows.append({"mode": mode, "metric": metric, **{k: r[metric][k] for k in ("p50", "mean", "max")}})
    return rows


def save_json(result: dict[str, Any], name: str = "06_first_query", out_dir: str | None = None) -> Path:
    from labkit.nb.artifacts import save_json as save

    return save(result, name, out_dir)


def cli(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="labkit bench first-query",
        description=__doc__.splitlines()[0] + " Uses the running lab (starting its storage services if "
        "needed, like `labkit up`); each mode's nodes and router are started and removed.")
    p.add_argument("--size", default=None, help="ci, small or full (default $LABKIT_SIZE, then small)")
    p.add_argument("--mode", default="both", choices=["lazy", "preload", "both"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--auto-flush", action="store_true", help="leave flushing to the rw node (1 s interval)")
    p.add_argument("--batches", type=int, default=None, help="override the size's batch count")
    add_output_args(p)
    args = p.parse_args(argv)
    with results_only_on_stdout():  # progress lines never mix with the JSON
        result = run_first_query(args.size, args.mode, seed=args.seed, auto_flush=args.auto_flush,
                                 batches=args.batches)
    emit(result, args, summary_rows(result))
    return 0
