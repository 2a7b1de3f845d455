"""Pure logic of the storage benchmark: fio parsing, metadata phases, ratios, published data."""

from __future__ import annotations

import json

import pytest

from labkit.bench import published as pub
from labkit.bench import storage, storage_fio, storage_meta
from labkit.errors import LabError


def test_published_data_is_labelled_and_complete():
    data = pub.published()
    assert data["label"] == "published, not measured here"
    assert "juicedata/juicefs" in data["source"]
    for system in ("JuiceFS", "EFS", "S3FS"):
        assert set(data["mdtest"]["systems"][system]) == set(pub.MD_OPS)
        assert set(data["fio"]["systems"][system]) == set(storage.THROUGHPUT_KEYS)
    # the largest published metadata ratio JuiceFS/EFS is the 9.4x of "File read" (open/close)
    ratios = pub.published_ratios("mdtest")
    assert max(ratios, key=ratios.get) == "file_open_close"
    assert ratios["file_open_close"] == pytest.approx(9.4, abs=0.05)


def test_fio_command_follows_the_published_job():
    write = storage_fio.fio_command(storage_fio.Path("/x"), "write", 4, 64)
    assert {"--rw=write", "--bs=4M", "--size=64M", "--numjobs=4", "--refill_buffers",
            "--end_fsync=1"} <= set(write)
    read = storage_fio.fio_command(storage_fio.Path("/x"), "read", 1, 64)
    assert "--end_fsync=1" not in read and "--rw=read" in read


def test_parse_fio_skips_warnings_and_sums_jobs():
    report = {"jobs": [{"write": {"bw_bytes": 100 << 20}, "read": {"bw_bytes": 0}},
                       {"write": {"bw_bytes": 50 << 20}, "read": {"bw_bytes": 0}}]}
    out = "fio: some warning\n" + json.dumps(report)
    assert storage_fio.parse_fio(out, "write") == pytest.approx(150.0)
    with pytest.raises(LabError):
        storage_fio.parse_fio("no json here", "write")


def test_python_fallback_writes_and_reads(tmp_path):
    res = storage_fio.throughput(tmp_path, jobs_multi=2, size_mb=4, juicefs=False, use_fio=False)
    assert res["method"].startswith("python")
    assert all(res[k] > 0 for k in storage.THROUGHPUT_KEYS)
    assert list(tmp_path.iterdir()) == []  # the data files are removed


def test_tree_depth_covers_items():
    assert storage_meta.tree_depth(100) == 3  # 4 + 16 + 64 = 84 >= 80
    dirs = storage_meta.tree_dirs(storage_meta.Path("/r"), 2)
    assert len(dirs) == 4 + 16
    assert dirs.index(storage_meta.Path("/r/t0")) < dirs.index(storage_meta.Path("/r/t0/t3"))


def test_metadata_phases_round_robin(tmp_path):
    runs = {"a": storage_meta.MetaRun(tmp_path / "a", 12), "b": storage_meta.MetaRun(tmp_path / "b", 12)}
    res = storage_meta.run_metadata(runs, pause_s=0.0)
    for name in ("a", "b"):
        assert set(res[name]) == set(pub.MD_OPS)
        assert all(v > 0 for v in res[name].values())
    assert not (tmp_path / "a").exists()  # cleaned up


def test_metadata_phase_failure_is_recorded(tmp_path):
    run = storage_meta.MetaRun(tmp_path / "a", 5)
    run.dirs[2].mkdir()  # dir_create will collide
    res = storage_meta.run_metadata({"a": run}, pause_s=0.0)["a"]
    assert res["dir_create"] is None and "dir_create" in res["error"]
    assert "file_create" not in res


def test_ratios_pairs_and_user_paths():
    def t(name, kind, create, write):
        return {"name": name, "kind": kind, "status": "measured",
                "metadata": {"file_create": create}, "throughput": {"write_1": write}}

    rows = [t("juicefs-s3", "juicefs", 1000, 200), t("s3fs-s3", "s3fs", 50, 100),
            t("efs", "user", 200, 100),
            {"name": "bindfs", "kind": "bindfs", "status": "skipped", "reason": "x"}]
    r = storage.ratios(rows)
    assert r["juicefs-s3/s3fs-s3"] == {"write_1": 2.0, "file_create": 20.0}
    assert r["juicefs-s3/efs"]["file_create"] == 5.0
    assert not any("bindfs" in k for k in r)


def test_parse_paths():
    assert storage.parse_paths(["efs=/mnt/efs", "/mnt/nfs"]) == {"efs": "/mnt/efs", "user2": "/mnt/nfs"}
    assert storage.parse_paths({"efs": "/e"}) == {"efs": "/e"}
    assert storage.parse_paths(None) == {}


def test_unknown_target_is_a_clear_error():
    with pytest.raises(LabError, match="Unknown storage target"):
        storage.run_storage("ci", targets=["nfs-kernel"])
