"""`labkit run`: notebook discovery, its one-sentence errors, and a failing run of two tiny notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from labkit.cli import run as run_module
from labkit.cli.run import cli, notebooks
from labkit.errors import LabError


def test_notebooks_in_order_and_filtered(tmp_path) -> None:
    for name in ("10_b.ipynb", "02_a.ipynb", "99_z.ipynb", "notes.ipynb", "2_bad.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in notebooks(tmp_path)] == ["02_a.ipynb", "10_b.ipynb", "99_z.ipynb"]
    assert [p.name for p in notebooks(tmp_path, only="10")] == ["10_b.ipynb"]
    assert [p.name for p in notebooks(tmp_path, only="99, 02")] == ["02_a.ipynb", "99_z.ipynb"]


def test_unknown_notebook_is_one_sentence(tmp_path) -> None:
    with pytest.raises(LabError, match="No notebooks matching 77"):
        cli(["--only", "77", "--out", str(tmp_path)])


def test_one_unknown_prefix_among_several_is_named(tmp_path) -> None:
    with pytest.raises(LabError, match="No notebooks matching 77 in"):
        cli(["--only", "00,77", "--out", str(tmp_path)])


def test_unknown_size_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(["--size", "huge"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err


def _notebook(path: Path, *sources: str) -> None:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    params = nbformat.v4.new_code_cell('SIZE = ""\nOUT_DIR = ""\nX = 1')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    nbformat.write(nb, path)


def test_failed_run_is_recorded_rendered_and_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real kernel: per-notebook -p reaches only its notebook, metrics are read generically (lists are
    samples), and a failing notebook still leaves the record, the report and the HTML index."""
    folder = tmp_path / "nbs"
    folder.mkdir()
    _notebook(folder / "01_ok.ipynb", 'import labkit\nlabkit.record_metrics("01_ok", '
              '{"x": X, "q_s": [0.1, 0.2, 0.1], "new_thing": {"count": 2}}, OUT_DIR)')
    _notebook(folder / "02_fail.ipynb", "assert X == 1, 'X is the default here'\nraise ValueError('boom')")
    monkeypatch.setattr(run_module, "NOTEBOOKS_DIR", folder)
    out, history = tmp_path / "out", tmp_path / "h.jsonl"
    with pytest.raises(LabError, match=r"Notebook 02_fail.ipynb failed at cell \d+: ValueError: boom"):
        cli(["--size", "ci", "--out", str(out), "--history", str(history), "--no-log-output",
             "-p", "01:X", "5"])
    (rec,) = [json.loads(line) for line in history.read_text().splitlines()]
    assert rec["ok"] is False and rec["params"] == {"01": {"X": 5}}
    assert rec["metrics"] == {"01": {"x": 5, "q_s": [0.1, 0.2, 0.1], "new_thing": {"count": 2}}}
    assert [n["ok"] for n in rec["notebooks"]] == [True, False]
    index = (out / "html" / "index.html").read_text()
    assert 'href="01_ok.html"' in index and "FAILED: cell" in index
    assert (out / "html" / "02_fail.html").is_file()
    assert "FAILED at 02_fail.ipynb" in (out / "report.md").read_text()
    assert "| 01.q_s | latency | 0.1 |" in (out / "report.md").read_text()  # median of the samples
