"""Run every notebook in order with papermill at SIZE=ci, each reported as its own test.

Two lab variants, each in its own temporary LABKIT_HOME:
- ``fuse``: the real thing (JuiceFS mounts per node) when this machine has FUSE; 03 and 04
  run twice in a row there (idempotency);
- ``nofuse``: ``LABKIT_NO_FUSE=1`` (as on Binder): nodes share one local directory. Every
  notebook runs; ``LABKIT_NB_NOFUSE=core`` keeps only the walk-through (00-04, 99) when time is short.

Executed copies, figures and metrics go to ``artifacts/ci/`` and ``artifacts/ci-nofuse/``.
Whatever happens, the lab of each variant is brought down (by PID) and purged at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from labkit.cli.run import notebooks, run_notebook
from labkit.lab.api import Lab
from labkit.lab.state import REPO_ROOT
from labkit.nb.views import leftovers

pytestmark = [pytest.mark.notebooks, pytest.mark.timeout(900)]

NOTEBOOKS = notebooks(REPO_ROOT / "notebooks")
CELL_TIMEOUT = 300  # seconds per cell
WALKTHROUGH = ("00", "01", "02", "03", "04", "99")


def _variant_notebooks(variant: str) -> list[Path]:
    if variant == "nofuse" and os.environ.get("LABKIT_NB_NOFUSE", "all") == "core":
        return [p for p in NOTEBOOKS if p.name[:2] in WALKTHROUGH]
    return NOTEBOOKS


def _cases(variant: str) -> list[tuple[str, Path, str]]:
    """The variant's notebooks in order; in the fuse run 03 and 04 run a second time right after 04
    (a notebook run twice in a row must work: lab, nodes and router are reused, collections recreated)."""
    out = []
    for p in _variant_notebooks(variant):
        out.append((variant, p, ""))
        if variant == "fuse" and p.name.startswith("04_"):
            out += [(variant, q, "again") for q in NOTEBOOKS if q.name[:2] in {"03", "04"}]
    return out


CASES = _cases("fuse") + _cases("nofuse")


class _Variants:
    """One lab home per variant; switching variant tears the previous lab down first."""

    def __init__(self) -> None:
        self.homes: dict[str, Path] = {}
        self.current: str | None = None
        self.failed: dict[str, str] = {}
        self.teardown_errors: list[str] = []

    def enter(self, variant: str) -> Path:
        if self.current and self.current != variant:
            try:  # a failed teardown is reported at the end, not blamed on the next notebook
                self.teardown(self.current)
            except Exception as exc:  # noqa: BLE001
                self.teardown_errors.append(f"{self.current}: {type(exc).__name__}: {exc}")
        self.current = variant
        if variant not in self.homes:
            self.homes[variant] = Path(tempfile.mkdtemp(prefix=f"lab-nb-{variant}-"))
        return self.homes[variant]

    def teardown(self, variant: str) -> None:
        home = self.homes.get(variant)
        if home is None or not home.exists():
            return
        try:
            Lab(home).down(purge=True)
        finally:
            shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def variants() -> Iterator[_Variants]:
    v = _Variants()
    try:
        yield v
    finally:
        for name in list(v.homes):
            try:
                v.teardown(name)
            except Exception as exc:  # noqa: BLE001
                v.teardown_errors.append(f"{name}: {type(exc).__name__}: {exc}")
        left = {name: leftovers(home) for name, home in v.homes.items()}
        assert not v.teardown_errors, f"tearing a lab down failed: {v.teardown_errors}"
        assert all(x == {"processes": [], "mounts": []} for x in left.values()), left


def _check_cells_ran(executed: Path) -> None:
    """Guard against a silent pass: every `check` and exercise `solution` cell executed without an error."""
    nb = nbformat.read(executed, as_version=4)
    checks = [c for c in nb.cells if "check" in c.get("metadata", {}).get("tags", [])]
    assert checks, f"{executed.name} has no cell tagged `check`"
    for cell in checks + [c for c in nb.cells if "solution" in c.get("metadata", {}).get("tags", [])]:
        assert cell.get("execution_count"), f"{executed.name}: a check cell did not run"
        assert not [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize(("variant", "path", "again"), CASES,
                         ids=[f"{v}-{p.stem}" + (f"-{a}" if a else "") for v, p, a in CASES])
def test_notebook(variant: str, path: Path, again: str, variants: _Variants) -> None:
    home = variants.enter(variant)
    if variants.failed.get(variant) and path.name[:2] != "99":
        pytest.skip(f"an earlier notebook of this run failed ({variants.failed[variant]})")
    out_dir = REPO_ROOT / "artifacts" / ("ci" if variant == "fuse" else "ci-nofuse")
    env = {"LABKIT_HOME": str(home), "LABKIT_ARTIFACTS": str(out_dir), "LABKIT_CI": "1", "LABKIT_SIZE": "ci",
           "LABKIT_NO_FUSE": "1" if variant == "nofuse" else os.environ.get("LABKIT_NO_FUSE", "")}
    started = time.time()
    result = run_notebook(path, "ci", out_dir, timeout=CELL_TIMEOUT, log_output=True, env=env)
    if not result["ok"]:
        variants.failed[variant] = path.name
        pytest.fail(f"{path.name} ({variant}) failed after {result['seconds']} s: {result['error']}; "
                    f"executed copy: {out_dir / path.name}", pytrace=False)
    _check_cells_ran(out_dir / path.name)
    metrics = out_dir / f"{path.name[:2]}_metrics.json"
    assert metrics.is_file() and metrics.stat().st_mtime >= started, f"{path.name} wrote no {metrics.name}"
    assert json.loads(metrics.read_text())["notebook"].startswith(path.name[:2])
    if path.name[:2] == "99":
        assert leftovers(home) == {"processes": [], "mounts": []}
    if variant == "nofuse" and path.name[:2] in {"00", "02", "03", "04"}:
        text = (out_dir / path.name).read_text()
        assert "nodes share one local directory" in text, "the notebook must say the nodes share a directory"
