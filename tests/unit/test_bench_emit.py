"""One output path for every benchmark CLI: --json, the summary, --out."""

from __future__ import annotations

import argparse
import json
import sys

from labkit.bench import add_output_args, emit, results_only_on_stdout, scalar_rows


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_output_args(p)
    return p.parse_args(list(argv))


RESULT = {"rows": 10, "node": {"p50_ms": 1.5, "samples": [1, 2]}, "ok": True}


def test_json_is_the_whole_document(capsys, tmp_path):
    out = tmp_path / "r.json"
    emit(RESULT, _args("--json", "--out", str(out)), ["ignored summary"])
    assert json.loads(capsys.readouterr().out) == RESULT
    assert json.loads(out.read_text()) == RESULT


def test_summary_rows_strings_and_mappings(capsys):
    emit(RESULT, _args(), ["a line", {"mode": "lazy", "p50": 0.2}])
    assert capsys.readouterr().out.splitlines() == ["a line", '{"mode": "lazy", "p50": 0.2}']


def test_default_summary_lists_scalars():
    assert scalar_rows(RESULT) == ["rows: 10", "node.p50_ms: 1.5", "ok: True"]


def test_progress_goes_to_stderr_results_to_stdout(capsys):
    with results_only_on_stdout():
        print("progress")
        with results_only_on_stdout():
            emit({"x": 1}, _args("--json"))
            print("more progress", file=sys.stdout)
    captured = capsys.readouterr()
    assert json.loads(captured.out) == {"x": 1}
    assert "progress" in captured.err and "more progress" in captured.err
