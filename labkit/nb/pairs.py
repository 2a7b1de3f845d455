"""The notebooks' text sources: ``notebooks/NN_slug.py`` (jupytext py:percent) paired with the .ipynb.

The .py is what people edit and review; the .ipynb is what JupyterLab, papermill and Binder open.
``write_ipynb`` turns a source into its stripped notebook (no outputs, kernelspec python3, cell ids
0, 1, ... so diffs stay small); ``differences`` says how a committed pair disagrees.

    python -m labkit.nb.pairs            # rewrite every .ipynb from its .py
    python -m labkit.nb.pairs --check    # exit 1 and name the pairs that differ
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import jupytext
import nbformat

from labkit.lab.state import REPO_ROOT

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
CELL_KEYS = ("tags", "jupyter")  # cell metadata kept in both files (tags, collapsed solutions)


def sources(folder: Path | str = REPO_ROOT / "notebooks") -> list[Path]:
    """The ``NN_slug.py`` sources in order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.py"))


def notebook_from_source(py: Path | str) -> nbformat.NotebookNode:
    """The stripped notebook a source stands for."""
    nb = jupytext.read(py, fmt="py:percent")
    nb.metadata = nbformat.NotebookNode(kernelspec=dict(KERNELSPEC), language_info={"name": "python"})
    for i, cell in enumerate(nb.cells):
        cell["id"] = str(i)
        cell.metadata = nbformat.NotebookNode({k: cell.metadata[k] for k in CELL_KEYS if k in cell.metadata})
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.validate(nb)
    return nb


def _shape(nb: Any) -> list[tuple[str, str, dict]]:
    return [(c.cell_type, c.source, {k: c.metadata[k] for k in CELL_KEYS if k in c.metadata})
            for c in nb.cells]


def differences(py: Path | str) -> list[str]:
    """Empty when ``NN.ipynb`` holds the same cells (type, source, tags, hidden state) as ``NN.py``."""
    py = Path(py)
    ipynb = py.with_suffix(".ipynb")
    if not ipynb.is_file():
        return [f"{ipynb.name} is missing"]
    want, have = _shape(notebook_from_source(py)), _shape(nbformat.read(ipynb, as_version=4))
    if len(want) != len(have):
        return [f"{ipynb.name} has {len(have)} cells, {py.name} has {len(want)}"]
    return [f"{ipynb.name} cell {i} differs from {py.name}"
            for i, (w, h) in enumerate(zip(want, have, strict=True)) if w != h]


def write_ipynb(py: Path | str) -> Path:
    """Write the stripped ``.ipynb`` beside ``py``; returns its path."""
    out = Path(py).with_suffix(".ipynb")
    out.write_text(nbformat.writes(notebook_from_source(py)) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write or check the .ipynb paired with notebooks/NN_*.py")
    parser.add_argument("--check", action="store_true", help="only report pairs that differ")
    args = parser.parse_args(argv)
    bad = []
    for py in sources():
        if args.check:
            bad += differences(py)
        else:
            print("wrote", write_ipynb(py))
    for line in bad:
        print(line)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
