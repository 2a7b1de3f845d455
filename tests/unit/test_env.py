"""check_env on this machine: the report is complete and its verdicts match what is installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labkit.errors import LabError
from labkit.lab.doctor import check_env, fuse_available

NAMES = {"python", "pymilvus", "FUSE", "juicefs", "mariadbd/mysqld", "redis-server", "fio", "s3fs",
         "S3 emulator (moto)", "Docker engine", "memory"}


def test_report_lists_every_capability() -> None:
    report = check_env()
    assert {c.name for c in report.checks} == NAMES
    assert report["pymilvus"].ok and "upb" in report["pymilvus"].detail
    for check in report.missing():
        if check.name not in {"Docker engine", "FUSE", "memory"}:
            assert check.fix, f"{check.name} is missing but no install command is given"


def test_binary_verdicts_match_the_filesystem() -> None:
    report = check_env()
    assert report["fio"].ok == bool(shutil.which("fio"))
    assert report["redis-server"].ok == bool(shutil.which("redis-server") or Path("/usr/bin/redis-server").exists())


def test_no_fuse_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_NO_FUSE", "1")
    ok, detail = fuse_available()
    assert not ok and "share a plain local directory" in detail
    assert not check_env().fuse


def test_strict_raises_one_sentence_when_required_piece_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("labkit.lab.doctor.which", lambda names: None)
    with pytest.raises(LabError, match="missing what the lab needs: .*redis-server"):
        check_env(strict=True)


def test_doctor_cli_prints_a_table() -> None:
    out = subprocess.run([sys.executable, "-m", "labkit", "doctor"], capture_output=True, text=True, timeout=60)
    assert "pymilvus" in out.stdout and "how to fix" in out.stdout
    assert out.returncode == (0 if check_env().ok else 1)
