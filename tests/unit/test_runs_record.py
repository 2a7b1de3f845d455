"""Run records, the history file, naming runs, metric kinds, `-p` parsing and the report (no kernel)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from labkit.cli.run import notebook_params, parse_params, parse_rename, parse_value, previous_comparable
from labkit.errors import LabError
from labkit.runs import metrics as mx
from labkit.runs import record, report
from labkit.runs.compare import compare


def rec(run_id: str, first: float, size: str = "ci", ok: bool = True) -> dict:
    return {"run_id": run_id, "ok": ok, "size": size, "seconds": 30.0, "params": {"*": {"SIZE": size}},
            "notebooks": [{"notebook": "06_fq.ipynb", "seconds": 25.0, "ok": ok, "error": ""}],
            "metrics": {"06": {"preload_first_s": {"p50": first, "n": 3}, "plan": {"batches": 3}}}}


# ------------------------------------------------------------------------------------ metrics
@pytest.mark.parametrize(("key", "kind"), [
    ("06.lazy_first_s.p50", "latency"), ("06.lazy_first_s.n", "count"), ("06.plan.nprobe", "setting"),
    ("05.ratios.juicefs-s3/s3fs-s3.read_1", "speed_ratio"), ("05.seconds", "duration"),
    ("run.06.seconds", "duration"), ("04.recall_after", "recall"), ("03.ro_recall", "recall"),
    ("05.cold_read_mib_s.p50", "throughput"), ("02.write_close_s", "latency"), ("02.bytes", "count"),
    ("04.router_port", "setting"), ("03.refused_code", "setting"), ("08.search_ms", "latency_ms"),
    ("07.something_new", "unknown"),
])
def test_kinds_by_pattern(key: str, kind: str) -> None:
    assert mx.kind_of(key, 1.0).name == kind


def test_bools_and_text_are_informational_whatever_the_name() -> None:
    assert mx.kind_of("06.first_s", True).name == "flag"
    assert mx.kind_of("06.first_s", "fast").name == "text"
    assert not mx.kind_of("07.anything", 1).gating


def test_flatten_and_of_record() -> None:
    r = {"ok": True, "seconds": 12.5, "notebooks": [{"notebook": "06_a.ipynb", "seconds": 9.0, "ok": True}],
         "metrics": {"06": {"a_s": {"p50": 1.0, "samples": [1.0, 2.0]}, "tags": ["x"], "note": "t",
                            "notebook": "06_a", "recorded_at": "t", "plan": {"notebook": 1}}}}
    assert mx.of_record(r) == {"06.a_s.p50": 1.0, "06.a_s.samples": [1.0, 2.0], "06.note": "t",
                               "06.plan.notebook": 1, "run.06.seconds": 9.0, "run.seconds": 12.5}


def test_key_metrics_prefer_declared_and_fall_back_to_wall_times() -> None:
    keys = ["06.preload_first_s.p50", "06.preload_first_s.n", "06.plan.batches", "run.seconds"]
    assert mx.key_metrics(keys) == ["06.preload_first_s.p50", "run.seconds"]
    assert mx.key_metrics(["00.fuse", "run.00.seconds", "run.seconds"]) == ["run.seconds"]
    assert mx.key_metrics(["00.fuse", "run.00.seconds"]) == ["run.00.seconds"]


# ------------------------------------------------------------------------------------ parameters
def test_values_typed_like_papermill() -> None:
    assert [parse_value(v) for v in ("3", "0.5", "True", "False", "None", "full", "1e3")] == \
        [3, 0.5, True, False, None, "full", 1000.0]


def test_params_for_all_and_per_notebook() -> None:
    params = parse_params([["SIZE", "full"], ["SEED=3"], ["06:MODE", "lazy"], ["06:SIZE=ci"]], ["05", "06"])
    assert params == {"*": {"SIZE": "full", "SEED": 3}, "06": {"MODE": "lazy", "SIZE": "ci"}}
    assert notebook_params(params, "06") == {"SIZE": "ci", "SEED": 3, "MODE": "lazy"}
    assert notebook_params(params, "05") == {"SIZE": "full", "SEED": 3}


@pytest.mark.parametrize(("item", "message"), [
    (["SIZE"], "NAME VALUE or NAME=VALUE"),
    (["07:MODE", "lazy"], "notebook 07 is not part of this run"),
    (["x6:MODE", "lazy"], "not a notebook number"),
    (["OUT_DIR", "/tmp"], "use --out"),
    (["SIZE", "huge"], "Unknown SIZE 'huge'"),
    (["my-param", "1"], "not a parameter name"),
])
def test_bad_params_are_one_sentence(item: list[str], message: str) -> None:
    with pytest.raises(LabError, match=message):
        parse_params([item], ["05", "06"])


def test_rename() -> None:
    assert parse_rename(["lazy_=preload_"]) == {"lazy_": "preload_"}
    with pytest.raises(LabError, match="OLD=NEW"):
        parse_rename(["lazy_"])


# ------------------------------------------------------------------------------------ history
def test_history_append_read_and_resolve(tmp_path: Path) -> None:
    hist = tmp_path / "history.jsonl"
    for i, first in enumerate((0.010, 0.011, 0.030)):
        record.append(hist, rec(f"2026113{i}T000000Z-ab{i}0", first))
    assert [r["run_id"][-4:] for r in record.read_history(hist)] == ["ab00", "ab10", "ab20"]
    assert [r["run_id"][-4:] for r in record.resolve("last", hist)] == ["ab20"]
    assert [r["run_id"][-4:] for r in record.resolve("last:2", hist)] == ["ab10", "ab20"]
    assert [r["run_id"][-4:] for r in record.resolve("20261130", hist)] == ["ab00"]  # unique prefix
    assert len(record.resolve(f"{hist}:3", tmp_path / "other.jsonl")) == 3
    run_dir = tmp_path / "run-a"
    run_dir.mkdir()
    (run_dir / "run.json").write_text(json.dumps(rec("x", 0.02)))
    assert [r["run_id"] for r in record.resolve(f"{run_dir},{run_dir / 'run.json'}", hist)] == ["x", "x"]


@pytest.mark.parametrize(("spec", "message"), [
    ("last:9", "holds 3 runs, fewer than the 9"),
    ("last:zero", "not a number of runs"),
    ("2026113", "has 3 runs with that id"),
    ("nosuchrun", "has no run with that id"),
    (",", "Name a run"),
])
def test_resolve_errors(tmp_path: Path, spec: str, message: str) -> None:
    hist = tmp_path / "history.jsonl"
    for i in range(3):
        record.append(hist, rec(f"2026113{i}T000000Z-0000", 0.01))
    with pytest.raises(LabError, match=message):
        record.resolve(spec, hist)


def test_damaged_history_line_is_named(tmp_path: Path) -> None:
    hist = tmp_path / "h.jsonl"
    hist.write_text(json.dumps(rec("a", 0.01)) + "\n{not json\n")
    with pytest.raises(LabError, match="Line 2 of"):
        record.read_history(hist)


def test_collect_metrics_only_from_this_run(tmp_path: Path) -> None:
    (tmp_path / "05_metrics.json").write_text(json.dumps({"notebook": "05_x", "seconds": 3}))
    old = time.time() - 3600
    os.utime(tmp_path / "05_metrics.json", (old, old))  # left over from an earlier run
    (tmp_path / "06_metrics.json").write_text(json.dumps({"notebook": "06_x", "recorded_at": "t", "a_s": 1}))
    results = [{"notebook": "05_x.ipynb", "started": time.time() - 60},
               {"notebook": "06_x.ipynb", "started": time.time() - 60},
               {"notebook": "07_x.ipynb", "started": time.time() - 60}]
    assert record.collect_metrics(tmp_path, results) == {"06": {"a_s": 1}}


def test_facts_have_every_version_and_machine_field() -> None:
    v = record.versions()
    assert set(v) == {"labkit", "pymilvus", "juicefs", "mariadb", "redis", "faiss", "python"}
    assert v["python"].count(".") == 2 and v["pymilvus"] == "1.1.2" and v["faiss"]
    m = record.machine()
    assert m["cores"] >= 1 and m["memory_gib"] > 0
    assert len(record.load()) == 3
    assert record.new_run_id() != record.new_run_id()


def test_lab_env_keeps_labkit_variables_and_masks_secrets() -> None:
    env = {"LABKIT_HOME": "/x", "LABKIT_S3_SECRET_KEY": "abc", "HOME": "/root", "LABKIT_SIZE": "ci"}
    assert record.lab_env(env) == {"LABKIT_HOME": "/x", "LABKIT_S3_SECRET_KEY": "****", "LABKIT_SIZE": "ci"}


def test_previous_comparable_skips_other_sizes_and_failures() -> None:
    history = [rec("a", 0.01), rec("b", 0.01, size="full"), rec("c", 0.01, ok=False), rec("d", 0.01)]
    assert previous_comparable(history, history[-1]) == [history[0]]


# ------------------------------------------------------------------------------------ report
def test_report_files_hold_table_verdicts_and_trends(tmp_path: Path) -> None:
    history = [rec("a", 0.010), rec("b", 0.011), rec("c", 0.040)]
    history[-1].update(versions={"juicefs": "1.2"}, machine={"cores": 2, "memory_gib": 4.0},
                       started="2026-11-30T00:00:00Z")
    cmp = compare(history[:2], history[2:])
    md, page = report.write(tmp_path, history[-1], history, cmp)
    text = md.read_text()
    assert "| 06.preload_first_s.p50 | latency |" in text and "WORSE" in text
    assert "1 worse" in text and "juicefs 1.2" in text
    html = page.read_text()
    assert "data:image/png;base64," in html and "06.preload_first_s.p50" in html
    assert (tmp_path / "report_trends.png").stat().st_size > 1000
    series = report.trend_series(history, ["06.preload_first_s.p50"])
    assert [p[1] for p in series["06.preload_first_s.p50"]] == [0.010, 0.011, 0.040]


def test_report_without_baseline_lists_metrics(tmp_path: Path) -> None:
    r = rec("solo", 0.02)
    md, _ = report.write(tmp_path, r, [r], None)
    assert "no baseline" in md.read_text() and "| 06.preload_first_s.p50 | latency | 0.02 |" in md.read_text()
