"""`labkit run`: notebook discovery and its one-sentence errors (no kernel started)."""

from __future__ import annotations

import pytest

from labkit.cli.run import cli, notebooks
from labkit.errors import LabError


def test_notebooks_in_order_and_filtered(tmp_path) -> None:
    for name in ("10_b.ipynb", "02_a.ipynb", "99_z.ipynb", "notes.ipynb", "2_bad.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in notebooks(tmp_path)] == ["02_a.ipynb", "10_b.ipynb", "99_z.ipynb"]
    assert [p.name for p in notebooks(tmp_path, only="10")] == ["10_b.ipynb"]


def test_unknown_notebook_is_one_sentence(tmp_path) -> None:
    with pytest.raises(LabError, match="No notebooks matching 77"):
        cli(["--only", "77", "--out", str(tmp_path)])


def test_unknown_size_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli(["--size", "huge"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
