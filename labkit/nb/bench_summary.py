"""Tables and summary sentences for notebooks 05 and 06, computed from the measured results.

Nothing here is fixed prose about the outcome: every comparison word comes from a number of the
run being summarised, so a summary cannot contradict the table above it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from statistics import median
from typing import Any

from labkit.bench.first_query import engine_after_pause
from labkit.bench.published import MD_OPS

ARTICLE_FIRST_QUERY_S = 0.032  # the article's average first-query time
ARTICLE_INTERVALS_S = (1.0, 8.0)  # the article's pauses between batches
ARTICLE_ROWS, ARTICLE_BATCH_ROWS = 1_000_000, 100_000
TP_LABELS = {"write_1": "write, 1 job", "read_1": "read, 1 job", "write_multi": "write, {n} jobs",
             "read_multi": "read, {n} jobs"}
EFS_THROUGHPUT_SOURCE = "https://repost.aws/knowledge-center/efs-choosing-correct-throughput-mode"


def times(ratio: float) -> str:
    """``3.2x`` (or ``0.45x``): a ratio written as a number, never as an adjective."""
    return f"{ratio:.2g}x" if ratio < 10 else f"{ratio:.0f}x"


def _measured(result: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [t for t in result["targets"] if t["status"] == "measured"]


def throughput_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per measured target, MiB/s per fio job set (units in the headers)."""
    n = result["config"]["fio_jobs"]
    rows = []
    for t in _measured(result):
        row: dict[str, Any] = {"target": t["name"]}
        row.update({f"{TP_LABELS[k].format(n=n)} (MiB/s)": round(t["throughput"][k], 1) for k in TP_LABELS})
        rows.append(row)
    return rows


def metadata_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per metadata operation, one column per measured target, in operations per second."""
    targets = _measured(result)
    return [{"operation": op.replace("_", " "),
             **{f"{t['name']} (ops/s)": round(t["metadata"][op], 1) for t in targets}} for op in MD_OPS]


def skipped_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [{"target": t["name"], "skipped because": t["reason"]} for t in result["targets"]
            if t["status"] != "measured"]


def ratio_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per metric; one column per measured pair (first / second) and the published JuiceFS/EFS."""
    cols = {f"{pair} (x)": vals for pair, vals in result["ratios"].items()}
    pub = result["published_ratios"]
    cols["JuiceFS/EFS published (x)"] = {**pub.get("fio", {}), **pub.get("mdtest", {})}
    return [{"metric": k, **{c: vals.get(k) for c, vals in cols.items()}} for k in [*TP_LABELS, *MD_OPS]]


def _range(values: list[float]) -> str:
    return f"{times(min(values))} to {times(max(values))} (median {times(median(values))})"


def storage_findings(result: Mapping[str, Any]) -> list[str]:
    """The summary of notebook 05, each sentence built from this run's numbers."""
    out = []
    ratios = result["ratios"]
    pair = ratios.get("juicefs-s3/s3fs-s3")
    if pair:
        md = [pair[k] for k in MD_OPS if pair.get(k)]
        tp = [pair[k] for k in TP_LABELS if pair.get(k)]
        best = max(MD_OPS, key=lambda k: pair.get(k) or 0)
        out.append(f"On the same S3 emulator, JuiceFS did metadata operations {_range(md)} as fast as s3fs "
                   f"(largest: {best.replace('_', ' ')}, {times(pair[best])}) and moved data {_range(tp)} as "
                   "fast. JuiceFS keeps metadata in Redis; s3fs turns every create, stat and remove into "
                   "object requests.")
    local = ratios.get("juicefs-file/local")
    if local:
        ahead = [k for k in [*TP_LABELS, *MD_OPS] if (local.get(k) or 0) > 1]
        values = [local[k] for k in [*TP_LABELS, *MD_OPS] if local.get(k)]
        if ahead:
            listed = ", ".join(f"{k.replace('_', ' ')} {times(local[k])}" for k in ahead)
            out.append(f"JuiceFS on the file store beat the local disk it is stored on in: {listed}. It can, "
                       "because a JuiceFS metadata operation is a few Redis commands in memory (a local file "
                       "system journals creates and removals on disk), a removed file's blocks are deleted "
                       "in the background, and file data moves as 4 MiB blocks that the client writes and "
                       "reads ahead in parallel.")
        out.append(f"Against the local disk under it, JuiceFS on the file store ran at {_range(values)} "
                   "of the local figures: FUSE, Redis and the block layer cost something on one machine; "
                   "bindfs (FUSE alone) separates the FUSE part.")
    pub = result["published"]["fio"]["systems"]["EFS"]
    lo, hi = round(min(pub.values())), round(max(pub.values()))
    flat = f"~{lo}" if lo == hi else f"~{lo}-{hi}"
    out.append(f"EFS is quoted, not measured: its published throughput is {flat} MiB/s in every fio column, "
               "1 job or 16, read or write. That flat line is EFS's throughput mode, not NFS: in the default "
               "Bursting mode every EFS file system can burst to 100 MiB/s (more only above 1 TiB stored), "
               f"as AWS publishes ({EFS_THROUGHPUT_SOURCE}).")
    md_pub = result["published_ratios"]["mdtest"]
    top = max(md_pub, key=lambda k: md_pub[k])
    out.append(f"Published JuiceFS/EFS metadata ratios run from {times(min(md_pub.values()))} to "
               f"{times(md_pub[top])} ({top.replace('_', ' ')}): the article's \"up to 10 times\".")
    return out


def first_query_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per mode: first query beside freshness lag (p50 and mean, seconds), and the warm query."""
    rows = []
    for mode, r in result["modes"].items():
        rows.append({"mode": mode, "first query p50 (s)": r["first_s"]["p50"],
                     "first query mean (s)": r["first_s"]["mean"],
                     "freshness lag p50 (s)": r["freshness_s"]["p50"],
                     "freshness lag mean (s)": r["freshness_s"]["mean"],
                     "warm query p50 (s)": r["warm_s"]["p50"]})
    return rows


def batch_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every batch of every mode: first query beside freshness lag and the controls (seconds)."""
    rows = []
    for mode, r in result["modes"].items():
        for b in r["batches"]:
            rows.append({"mode": mode, "batch": b["batch"], "first query (s)": b["first_s"],
                         "freshness lag (s)": b["freshness_s"], "warm (s)": b["warm_s"],
                         "never-asked query (s)": b.get("unseen_query_s"),
                         "warm after a pause (s)": b.get("idle_warm_s"),
                         "faiss alone (s)": b.get("faiss_all_s"),
                         "faiss alone after the pause (s)": b.get("faiss_all_idle_s"),
                         "index build (s)": b["index_s"],
                         "cold read (MiB/s)": (b.get("cold_read") or {}).get("mib_s")})
    return rows


def workload_sentence(plan: Mapping[str, Any]) -> str:
    """How this run's workload compares with the article's (rows, batch size, pauses)."""
    lo, hi = min(plan["intervals_s"]), max(plan["intervals_s"])
    rows = plan["batches"] * plan["batch_rows"]
    same_pause = ARTICLE_INTERVALS_S[0] <= lo and hi <= ARTICLE_INTERVALS_S[1]
    pause = ("within the article's 1-8 s" if same_pause else
             f"NOT the article's 1-8 s: SIZE={plan['size']} keeps the run short")
    return (f"This run: {rows:,} rows in {plan['batches']} batches of {plan['batch_rows']:,} x {plan['dim']} "
            f"(the article: {ARTICLE_ROWS:,} rows in batches of {ARTICLE_BATCH_ROWS:,} x 128); pauses of "
            f"{lo:.2f}-{hi:.2f} s between batches, {pause}.")


def first_query_findings(result: Mapping[str, Any]) -> list[str]:
    """The summary of notebook 06, each comparison taken from this run's numbers."""
    modes = result["modes"]
    out = [workload_sentence(result["plan"])]
    for mode, r in modes.items():
        mean = r["first_s"]["mean"]
        rel = mean / ARTICLE_FIRST_QUERY_S
        where = "on every ro node" if mode != "preload" else "in memory on the ro node they are routed to"
        out.append(f"{mode}: first query {mean:.3f} s on average ({times(rel)} the article's "
                   f"{ARTICLE_FIRST_QUERY_S} s, measured on other hardware), warm {r['warm_s']['p50']:.3f} s "
                   f"(p50); new rows searchable {where} after {r['freshness_s']['mean']:.3f} s on "
                   "average (freshness lag).")
        pauses = [b["idle_warm_s"] - b["warm_s"] for b in r.get("batches", []) if "idle_warm_s" in b]
        if mode == "preload" and pauses:
            over, warm = r["overhead_s"]["p50"], r["warm_s"]["p50"]
            pause_s = result["plan"].get("idle_s", 1.0)
            line = (f"preload: the first query took {over * 1000:.1f} ms more than the same query warm "
                    f"(p50, {over / warm:.0%} of warm); the warm query asked once more after a "
                    f"{pause_s:g} s pause took {median(pauses) * 1000:.1f} ms more than warm (p50), "
                    "what any request after a pause costs on this machine.")
            engine = engine_after_pause(r["batches"])
            if engine:
                extra, back = engine
                line += (f" faiss alone, in this process over the same index files (no server, no RPC, no "
                         f"new data), took {extra * 1000:.1f} ms more after the same pause than back to back "
                         f"(p50, {extra / back:.0%} of its {back * 1000:.1f} ms).")
            out.append(line)
    if {"lazy", "preload"} <= set(modes):
        lazy, pre = modes["lazy"], modes["preload"]
        fq = lazy["first_s"]["p50"] / pre["first_s"]["p50"]
        fr = pre["freshness_s"]["p50"] / max(lazy["freshness_s"]["p50"], 1e-9)
        faster = "faster" if fq > 1 else "not faster"
        lag = (f"its freshness lag was longer, {times(fr)} lazy's (p50): the load it took off the query path "
               "is now waited for by whoever wants the new rows visible" if fr > 1 else
               f"its freshness lag was {times(fr)} lazy's (p50), because lazy's lag is itself each node's "
               "first, loading query; preload's price here is background work: the ro node each new "
               "segment is routed to loads it whether or not anyone searches it")
        out.append(f"preload's first query was {faster} than lazy's here (lazy/preload p50: {times(fq)}); "
                   f"{lag}.")
    cold = modes.get("lazy", {}).get("cold_read_mib_s", {})
    if cold.get("n") and not math.isnan(cold.get("p50", math.nan)):
        out.append("lazy's first query has to read the new segment through JuiceFS: a cold read of it ran "
                   f"at {cold['p50']:.0f} MiB/s (p50) through a second client with its cache evicted.")
    return out
