"""Verdicts from synthetic run histories: directions, noise bands from repeats, defaults, exact kinds."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from labkit.runs import metrics as mx
from labkit.runs.compare import compare, noise_band, rel_spread, verdict

_ids = itertools.count()


def run(metrics: dict[str, dict[str, Any]], seconds: float = 10.0, **extra: Any) -> dict[str, Any]:
    """A history record as `labkit run` writes it (only the fields comparisons read)."""
    names = [f"{n}_nb.ipynb" for n in metrics]
    return {"run_id": f"r{next(_ids)}", "ok": True, "size": "ci", "seconds": seconds, "metrics": metrics,
            "notebooks": [{"notebook": n, "seconds": 5.0, "ok": True, "error": ""} for n in names], **extra}


def verdicts(base: list[dict], cand: list[dict], **kw: Any) -> dict[str, str]:
    return {r.key: r.verdict for r in compare(base, cand, **kw).rows}


def test_latency_up_is_worse_throughput_up_is_better() -> None:
    a = run({"06": {"preload_first_s": {"p50": 0.010, "n": 3}}, "05": {"read_mib_s": 100.0}})
    b = run({"06": {"preload_first_s": {"p50": 0.040, "n": 3}}, "05": {"read_mib_s": 200.0}})
    v = verdicts([a], [b])
    assert v["06.preload_first_s.p50"] == "worse"
    assert v["05.read_mib_s"] == "better"
    assert v["06.preload_first_s.n"] == "same"  # a count: informational
    v = verdicts([b], [a])
    assert v["06.preload_first_s.p50"] == "better" and v["05.read_mib_s"] == "worse"


def test_default_band_gives_same_within_noise() -> None:
    a = run({"06": {"lazy_first_s": {"p50": 0.100}}})
    b = run({"06": {"lazy_first_s": {"p50": 0.140}}})  # +40 % < the latency default band (50 %)
    cmp = compare([a], [b])
    row = next(r for r in cmp.rows if r.key == "06.lazy_first_s.p50")
    assert row.verdict == "same" and row.noise.startswith("default") and row.band == pytest.approx(0.50)
    assert row.ratio == pytest.approx(1.4)
    c = run({"06": {"lazy_first_s": {"p50": 0.160}}})  # +60 %
    assert verdicts([a], [c])["06.lazy_first_s.p50"] == "worse"
    assert not cmp.regressions


def test_absolute_floor_hides_tiny_latency_changes() -> None:
    a = run({"02": {"open_read_s": 0.0010}})
    b = run({"02": {"open_read_s": 0.0045}})  # x4.5, but 3.5 ms < the 5 ms floor
    assert verdicts([a], [b])["02.open_read_s"] == "same"


def test_repeats_set_the_band_not_the_default() -> None:
    # baseline: 5 runs with ~1 % spread; a 10 % slower candidate is beyond that noise
    base = [run({"06": {"x_first_s": v}}) for v in (1.00, 1.01, 0.99, 1.00, 1.02)]
    cand = [run({"06": {"x_first_s": v}}) for v in (1.10, 1.11, 1.09)]
    row = next(r for r in compare(base, cand).rows if r.key == "06.x_first_s")
    assert row.noise == "repeats n=5/3" and row.band < 0.10
    assert row.verdict == "worse"
    # the same 10 % change inside a noisy baseline (±40 %) is noise
    noisy = [run({"06": {"x_first_s": v}}) for v in (0.6, 1.0, 1.4, 0.7, 1.3)]
    row = next(r for r in compare(noisy, cand).rows if r.key == "06.x_first_s")
    assert row.verdict == "same" and row.band > 0.10


def test_samples_inside_one_run_are_repeats() -> None:
    a = run({"06": {"first_s": [0.050, 0.051, 0.049, 0.050]}})
    b = run({"06": {"first_s": [0.060, 0.061, 0.059, 0.060]}})  # +20 %, below the 50 % default
    row = next(r for r in compare([a], [b]).rows if r.key == "06.first_s")
    assert row.base == pytest.approx(0.050) and row.cand == pytest.approx(0.060)
    assert row.noise == "repeats n=4/4" and row.verdict == "worse"


def test_medians_not_means() -> None:
    base = [run({"06": {"q_s": v}}) for v in (1.0, 1.0, 50.0)]  # one outlier run
    cand = [run({"06": {"q_s": 1.0}})]
    row = next(r for r in compare(base, cand).rows if r.key == "06.q_s")
    assert row.base == 1.0 and row.verdict == "same"


def test_recall_is_exact() -> None:
    a = run({"04": {"recall_after": 1.0}})
    b = run({"04": {"recall_after": 0.999}})
    assert verdicts([a], [b])["04.recall_after"] == "worse"
    assert verdicts([a], [a])["04.recall_after"] == "same"


def test_unknown_keys_are_informational_and_never_fail() -> None:
    a = run({"07": {"widgets": 3, "fuse": True, "label": "x"}})
    b = run({"07": {"widgets": 9, "fuse": False, "label": "y"}})
    cmp = compare([a], [b])
    assert {r.key: r.verdict for r in cmp.rows} == {
        "07.widgets": "changed", "07.fuse": "changed", "07.label": "changed",
        "run.07.seconds": "same", "run.seconds": "same"}
    assert not cmp.regressions and {r.kind for r in cmp.rows} == {"unknown", "flag", "text", "duration"}


def test_new_and_missing_keys() -> None:
    a = run({"06": {"preload_first_s": {"p50": 0.01}}})
    b = run({"06": {"lazy_first_s": {"p50": 0.03}}})
    v = verdicts([a], [b])
    assert v["06.preload_first_s.p50"] == "missing" and v["06.lazy_first_s.p50"] == "new"


def test_rename_compares_lazy_against_preload() -> None:
    a = run({"06": {"preload_first_s": {"p50": 0.006}}})
    b = run({"06": {"lazy_first_s": {"p50": 0.021}}})
    cmp = compare([a], [b], rename={"lazy_": "preload_"})
    assert [r.key for r in cmp.regressions] == ["06.preload_first_s.p50"]
    assert cmp.rename == {"lazy_": "preload_"}


def test_notebook_wall_time_is_a_duration_with_a_floor() -> None:
    a, b = run({"00": {}}, seconds=10.0), run({"00": {}}, seconds=14.0)
    assert verdicts([a], [b])["run.seconds"] == "same"  # 4 s < 5 s floor
    a, b = run({"00": {}}, seconds=100.0), run({"00": {}}, seconds=200.0)
    assert verdicts([a], [b])["run.seconds"] == "worse"


def test_context_lists_settings_that_differ() -> None:
    a = run({"00": {}}, params={"*": {"SIZE": "ci"}}, lab={"object_store": "file"},
            versions={"juicefs": "1.2"})
    b = run({"00": {}}, params={"*": {"SIZE": "ci"}, "06": {"MODE": "lazy"}}, lab={"object_store": "s3"},
            versions={"juicefs": "1.2"})
    ctx = {k: (x, y) for k, x, y in compare([a], [b]).context}
    assert ctx == {"params.06.MODE": (None, "lazy"), "lab.object_store": ("file", "s3")}


def test_helpers() -> None:
    assert rel_spread([1.0]) is None and rel_spread([0.0, 0.0]) is None
    assert rel_spread([1.0, 1.0, 1.0]) == 0.0
    band, src = noise_band([1.0, 1.0], [1.0], mx.KINDS["latency"])
    assert band == pytest.approx(0.02) and src == "repeats n=2/1"  # zero spread: the minimum band
    assert noise_band([1.0], [1.0], mx.KINDS["recall"]) == (0.0, "exact")
    lat = mx.KINDS["latency"]
    assert verdict(1.0, 1.29, lat, 0.3) == "same" and verdict(1.0, 1.31, lat, 0.3) == "worse"
    assert verdict(0.010, 0.014, lat, 0.3) == "same"  # x1.4 but within the 5 ms floor
    assert verdict(1.0, 1 / 1.31, lat, 0.3) == "better" and verdict(0.0, 0.5, lat, 0.3) == "worse"
