"""Committed notebooks: no outputs, kernelspec python3, the skeleton's tagged cells, ruff clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from labkit.cli.run import notebooks
from labkit.lab.state import REPO_ROOT
from labkit.nb import pairs

NOTEBOOKS = notebooks(REPO_ROOT / "notebooks")
BIN = Path(sys.executable).parent


def test_there_are_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS][:5] == ["00", "01", "02", "03", "04"]
    assert NOTEBOOKS[-1].name.startswith("99_")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stripped_with_kernelspec(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    assert "papermill" not in nb.metadata
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: a cell has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_skeleton(path: Path) -> None:
    """Title first, a `parameters` cell with SIZE, a final `check` cell that records metrics."""
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    tagged = {t: c for c in nb.cells for t in c.metadata.get("tags", [])}
    assert "SIZE: str" in tagged["parameters"].source
    assert nb.cells[-1] is tagged["check"] and "record_metrics" in tagged["check"].source
    assert "check_env(" in next(c for c in nb.cells if c.cell_type == "code").source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_nbstripout_verify(path: Path) -> None:
    """No outputs or run metadata; cell ids are kept (Jupyter's random ids are not outputs)."""
    out = subprocess.run([str(BIN / "nbstripout"), "--verify", "--keep-id", "--extra-keys",
                          "metadata.papermill cell.metadata.papermill", str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_on_notebooks() -> None:
    out = subprocess.run([str(BIN / "ruff"), "check", *map(str, NOTEBOOKS)], capture_output=True, text=True,
                         cwd=REPO_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_notebook_has_its_text_source() -> None:
    assert [p.stem for p in pairs.sources()] == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("path", pairs.sources(), ids=[p.stem for p in pairs.sources()])
def test_pair_in_sync(path: Path) -> None:
    """The .ipynb holds exactly the cells of its jupytext source (edit the .py, then `make notebooks`)."""
    assert pairs.differences(path) == []


def test_jupytext_pairs_by_config() -> None:
    """JupyterLab's jupytext reads notebooks/jupytext.toml and keeps the .py in step on save."""
    from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

    cfg = load_jupytext_configuration_file(find_jupytext_configuration_file(str(REPO_ROOT / "notebooks")))
    assert "py:percent" in str(cfg.formats) and "ipynb" in str(cfg.formats)


def test_difference_is_reported(tmp_path) -> None:
    src = tmp_path / "01_x.py"
    src.write_text("# %% [markdown]\n# # 01 x\n\n# %%\nprint(1)\n")
    pairs.write_ipynb(src)
    assert pairs.differences(src) == []
    src.write_text(src.read_text().replace("print(1)", "print(2)"))
    assert pairs.differences(src) == ["01_x.ipynb cell 1 differs from 01_x.py"]


EXERCISES_MIN = {"01": 2, "02": 2, "03": 2, "04": 2, "05": 1, "06": 1}


def _exercises(path: Path) -> list[tuple[str, nbformat.NotebookNode]]:
    """(exercise text, the cell right after it) for every markdown cell that starts an exercise."""
    cells = nbformat.read(path, as_version=4).cells
    return [(c.source, cells[i + 1]) for i, c in enumerate(cells[:-1])
            if c.cell_type == "markdown" and "### Exercise" in c.source]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_exercises_have_expectations_and_hidden_solutions(path: Path) -> None:
    """Each exercise says what you should see; its solution is the next cell, collapsed and tagged."""
    found = _exercises(path)
    assert len(found) >= EXERCISES_MIN.get(path.name[:2], 0), f"{path.name}: too few exercises"
    for text, solution in found:
        assert "What you should see" in text, text[:80]
        assert solution.cell_type == "code" and "solution" in solution.metadata.get("tags", [])
        assert solution.metadata.get("jupyter", {}).get("source_hidden") is True, "a solution starts hidden"


def test_at_least_nine_exercises() -> None:
    assert sum(len(_exercises(p)) for p in NOTEBOOKS) >= 9


def test_table_of_contents_minutes_match_overview() -> None:
    """00's table of contents states each notebook's minutes and the total from overview.WORKSHOP_MIN."""
    import re

    from labkit.nb.overview import WORKSHOP_MIN

    text = nbformat.read(NOTEBOOKS[0], as_version=4).cells[0].source
    rows = re.findall(r"^\| \[(\d\d) [^|]*\]\([^)]*\) \|.*\| (\d+) min \|$", text, flags=re.M)
    assert {n: int(m) for n, m in rows} == WORKSHOP_MIN
    assert f"Total: about {sum(WORKSHOP_MIN.values())} minutes" in text


@pytest.mark.parametrize("path", pairs.sources(), ids=[p.stem for p in pairs.sources()])
def test_no_fixed_claims_about_measured_results(path: Path) -> None:
    """Summaries of measurements come from the data; an unsourced figure or a fixed comparison word
    next to numbers that may say otherwise is not allowed in the notebook's text."""
    text = path.read_text().lower()
    for phrase in ("0.016-0.032", "0.016 s", "order of magnitude", "orders of magnitude"):
        assert phrase not in text, f"{path.name}: {phrase!r}"
