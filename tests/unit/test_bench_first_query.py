"""Pure logic of the first-query benchmark: plan, ground-truth check, statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from labkit.bench import first_query as fq
from labkit.errors import LabError


def test_plan_full_is_the_articles_workload():
    plan = fq.make_plan("full")
    assert (plan.batches, plan.batch_rows, plan.dim) == (10, 100_000, 128)
    assert len(plan.intervals_s) == 10 and all(1.0 <= x <= 8.0 for x in plan.intervals_s)
    # every batch (51.2 MB) is larger than index_file_size, so each is sealed and indexed alone
    assert plan.index_file_size_mb * 2**20 < plan.batch_rows * plan.dim * 4
    assert plan.index_type == "IVF_FLAT" and plan.nlist == 1024 and 1 <= plan.nprobe <= plan.nlist
    assert plan.idle_s > 0 and plan.ro_omp_threads == 1


def test_plan_is_seeded():
    assert fq.make_plan("ci", seed=1).intervals_s == fq.make_plan("ci", seed=1).intervals_s
    assert fq.make_plan("ci", seed=1).intervals_s != fq.make_plan("ci", seed=2).intervals_s
    a, b = fq.batch_vectors(fq.make_plan("ci"), 0), fq.batch_vectors(fq.make_plan("ci"), 1)
    assert a.shape == (5000, 128) and a.dtype == np.float32 and not np.array_equal(a, b)
    assert np.array_equal(a, fq.batch_vectors(fq.make_plan("ci"), 0))


def test_nlist_leaves_enough_training_points():
    for rows in (5_000, 20_000, 100_000):
        n = fq.nlist_for(rows)
        assert n * 39 <= rows and n & (n - 1) == 0
    assert fq.nlist_for(10**7) == 1024 and fq.nlist_for(100) == 16


def test_covers_needs_own_id_at_distance_zero():
    ids = np.array([[7, 3], [9, 8]])
    d = np.array([[0.0, 2.0], [0.0, 1.0]])
    assert fq.covers(ids, d, [7, 9])
    assert not fq.covers(ids, d, [7, 8])  # 8 is found, but not at distance ~0
    assert not fq.covers(ids, d, [7, 5])  # a stale answer without the new row
    assert not fq.covers(ids[:1], d[:1], [7, 9])  # a row missing


def test_stats_and_empty():
    s = fq.stats([0.3, 0.1, 0.2])
    assert s == {"p50": 0.2, "mean": 0.2, "max": 0.3, "n": 3}
    assert math.isnan(fq.stats([])["p50"])


def test_unknown_mode_is_a_clear_error():
    with pytest.raises(LabError, match="Unknown mode"):
        fq.run_first_query("ci", mode="eager", lab=object())


def test_engine_after_pause_ratio_and_finding_come_from_the_batches():
    from labkit.nb.bench_summary import first_query_findings

    batches = [{"batch": i + 1, "first_s": 0.007, "warm_s": 0.005, "idle_warm_s": 0.0065, "overhead_s": 0.002,
                "faiss_all_s": w, "faiss_all_idle_s": i_, "freshness_s": 0.1}
               for i, (w, i_) in enumerate([(0.002, 0.003), (0.004, 0.0044), (0.003, 0.0042)])]
    assert fq._idle_ratio(batches) == round(0.001 / 0.003, 4)  # p50 of differences / p50 back to back
    assert fq._idle_ratio([{"faiss_all_s": 0.1}]) is None  # no pause control: no ratio
    run = {"batches": batches, "first_s": fq.stats([0.007] * 3), "warm_s": fq.stats([0.005] * 3),
           "overhead_s": fq.stats([0.002] * 3), "freshness_s": fq.stats([0.1] * 3),
           "faiss_idle_overhead_to_warm_p50": fq._idle_ratio(batches)}
    plan = {"batches": 3, "batch_rows": 100, "dim": 8, "intervals_s": [1.0, 2.0, 3.0], "size": "ci",
            "idle_s": 1.0}
    lines = first_query_findings({"plan": plan, "modes": {"preload": run}})
    engine = next(line for line in lines if "faiss alone" in line)
    assert "1.0 ms more after the same pause" in engine and "(p50, 33% of its 3.0 ms)" in engine, engine
