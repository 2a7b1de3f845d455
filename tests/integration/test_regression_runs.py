"""`labkit run` / `labkit compare` end to end: real notebooks, real kernels, real lab services, at SIZE=ci.

* two runs of 00 and 99 compare clean (exit 0), with the history, report and HTML renderings in place;
* a run of 06 with preload off (``-p 06:MODE lazy``) against a preload baseline is flagged worse on
  the first query, and the command exits 3.

Each test has its own LABKIT_HOME; whatever the outcome, that lab is brought down and purged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from labkit.lab.api import Lab
from labkit.nb.views import leftovers

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "lab"
    path.mkdir()
    try:
        yield path
    finally:
        Lab(path).down(purge=True)
        assert leftovers(path) == {"processes": [], "mounts": []}


def labkit(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LABKIT_HOME": str(home)}
    env.pop("LABKIT_ARTIFACTS", None)
    return subprocess.run([sys.executable, "-m", "labkit", *args], env=env, capture_output=True, text=True,
                          timeout=800)


def run(home: Path, out: Path, history: Path, *args: str) -> subprocess.CompletedProcess:
    return labkit(home, "run", "--size", "ci", "--no-log-output", "--out", str(out),
                  "--history", str(history), *args)


def test_two_runs_of_00_and_99_compare_clean(home: Path, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    first = run(home, tmp_path / "a", history, "--only", "00,99", "-p", "SEED", "3")
    assert first.returncode == 0, first.stderr[-2000:]
    second = run(home, tmp_path / "b", history, "--only", "00,99", "--baseline", "last")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
    assert "0 worse" in second.stdout

    records = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(records) == 2 and all(r["ok"] for r in records)
    a, b = records
    assert a["params"] == {"*": {"SEED": 3}} and b["params"] == {}
    assert set(a["metrics"]) == {"00", "99"} and a["metrics"]["00"]["size"] == "ci"
    assert [n["notebook"][:2] for n in a["notebooks"]] == ["00", "99"]
    assert set(a["versions"]) == {"labkit", "pymilvus", "juicefs", "mariadb", "redis", "faiss", "python"}
    assert a["versions"]["pymilvus"] == "1.1.2" and all(a["versions"].values())
    m = a["machine"]
    assert m["cores"] >= 1 and m["memory_gib"] > 0 and len(m["load_before"]) == len(m["load_after"]) == 3
    # the executed copy got the parameter
    assert "SEED = 3" in (tmp_path / "a" / "00_overview.ipynb").read_text()

    for folder in (tmp_path / "a", tmp_path / "b"):
        assert json.loads((folder / "run.json").read_text())["run_id"] in {a["run_id"], b["run_id"]}
        assert (folder / "report.md").is_file() and (folder / "report_trends.png").is_file()
        index = (folder / "html" / "index.html").read_text()
        for name in ("00_overview", "99_teardown"):
            page = folder / "html" / f"{name}.html"
            assert f'href="{name}.html"' in index and page.stat().st_size > 10_000
            assert "<html" in page.read_text()[:2000].lower()
    report = (tmp_path / "b" / "report.html").read_text()
    assert a["run_id"] in report and "data:image/png;base64," in report

    compare = labkit(home, "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--history", str(history),
                     "--json")
    assert compare.returncode == 0, compare.stdout[-3000:]
    result = json.loads(compare.stdout)
    assert result["summary"]["worse"] == 0 and result["summary"]["missing"] == 0
    assert {r["key"] for r in result["rows"]} >= {"00.fuse", "99.purged", "run.00.seconds", "run.seconds"}


def test_first_query_without_preload_is_flagged_worse(home: Path, tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    base = run(home, tmp_path / "preload", history, "--only", "06", "-p", "06:MODE", "preload")
    assert base.returncode == 0, base.stderr[-2000:]
    slow = run(home, tmp_path / "lazy", history, "--only", "06", "-p", "06:MODE=lazy",
               "--baseline", str(tmp_path / "preload"), "--rename", "lazy_=preload_")
    assert slow.returncode == 3, slow.stdout[-3000:] + slow.stderr[-2000:]
    assert "REGRESSION against" in slow.stdout
    # the first-query latency of the lazy run, compared with the preload baseline's
    worse = [x for x in slow.stdout.splitlines() if x.startswith("| 06.preload_first") and "| WORSE |" in x]
    assert worse, slow.stdout[-3000:]
    report = (tmp_path / "lazy" / "report.md").read_text()
    assert worse[0] in report and "params.06.MODE | preload | lazy" in report

    again = labkit(home, "compare", str(tmp_path / "preload"), str(tmp_path / "lazy"),
                   "--history", str(history), "--rename", "lazy_=preload_", "--json")
    assert again.returncode == 3
    rows = [r for r in json.loads(again.stdout)["rows"]
            if r["key"].startswith("06.preload_first") and r["kind"] == "latency"]
    assert [r for r in rows if r["verdict"] == "worse" and r["ratio"] > 1.5], rows
