"""The storage benchmark on real mounts: JuiceFS (own Redis + moto), s3fs, a user path; all torn down."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from labkit.bench import storage
from labkit.bench.published import MD_OPS

pytestmark = pytest.mark.integration


def _mounts_under(path) -> list[str]:
    text = open("/proc/mounts").read()
    return [line for line in text.splitlines() if str(path) in line]


def test_run_storage_measures_or_skips_every_target(tmp_path):
    work = tmp_path / "bench"
    user = tmp_path / "my-nfs"
    user.mkdir()
    result = storage.run_storage("ci", targets=("local", "juicefs-s3", "s3fs-s3"), pause_s=0.3,
                                 paths={"nfs": str(user), "efs": str(tmp_path / "missing")}, workdir=work)
    rows = {t["name"]: t for t in result["targets"]}
    assert set(rows) == {"local", "juicefs-s3", "s3fs-s3", "nfs", "efs"}
    assert rows["efs"]["status"] == "skipped" and "not an existing directory" in rows["efs"]["reason"]
    for name in ("local", "nfs") + (("juicefs-s3", "s3fs-s3") if os.path.exists("/dev/fuse") else ()):
        row = rows[name]
        assert row["status"] == "measured", row
        assert all(row["throughput"][k] > 0 for k in storage.THROUGHPUT_KEYS), row
        assert set(row["metadata"]) == set(MD_OPS) and all(row["metadata"].values()), row
    if rows["juicefs-s3"]["status"] == "measured":
        assert rows["juicefs-s3"]["throughput"]["juicefs_cache_evicted"] is True
        assert "juicefs-s3/nfs" in result["ratios"]
    if rows["s3fs-s3"]["status"] == "measured":
        assert rows["s3fs-s3"]["md_items"] < rows["local"]["md_items"]
        # the large published gap reproduces: JuiceFS creates files far faster than s3fs on one S3
        assert result["ratios"]["juicefs-s3/s3fs-s3"]["file_create"] > 3
    assert result["cleanup_problems"] == []
    assert not work.exists() and not _mounts_under(work)
    assert list(user.iterdir()) == []  # our subdir on the user's path is gone
    json.dumps(result)  # JSON-ready


def test_cli_prints_json_only(tmp_path):
    env = {**os.environ, "LABKIT_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "labkit", "bench", "storage", "--size", "ci",
                           "--targets", "local", "--pause", "0", "--no-fio", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["targets"][0]["throughput"]["method"].startswith("python")
    assert "storage: local ready" in done.stderr


def test_cli_bad_target_is_one_sentence(tmp_path):
    done = subprocess.run([sys.executable, "-m", "labkit", "bench", "storage", "--targets", "nfs-kernel"],
                          capture_output=True, text=True, env={**os.environ, "LABKIT_HOME": str(tmp_path)})
    assert done.returncode == 1
    assert "Unknown storage target 'nfs-kernel'" in done.stderr and "Traceback" not in done.stderr
