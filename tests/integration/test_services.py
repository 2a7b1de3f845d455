"""The storage services as real processes: MariaDB, Redis, JuiceFS mounts, and the CLI around them."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest

from labkit.lab import procs
from labkit.lab.api import Lab
from labkit.lab.services import juicefs as jfs
from labkit.lab.services.base import get_service
from labkit.lab.state import LabState

pytestmark = pytest.mark.integration

STORAGE_KINDS = {"mysql", "redis", "objectstore", "juicefs"}
needs_fuse = pytest.mark.skipif(not jfs.fuse_available()[0], reason="no FUSE here")


def labkit_cli(*args: str, home: str | Path | None = None, env: dict[str, str] | None = None,
               timeout: float = 180) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    if home is not None:
        full_env["LABKIT_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "labkit", *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)


def lab_pids(home: Path) -> list[int]:
    """Processes whose command line mentions the lab home or one of its recorded services."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(home) in line and "pytest" not in line:
                found.append(int(entry.name))
    return found


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@needs_fuse
def test_two_clients_share_data_across_service_restarts(lab: Lab) -> None:
    a, b = lab.mount("svc-a"), lab.mount("svc-b")
    assert a != b and jfs.mount_fstype(a) == jfs.mount_fstype(b) == "fuse.juicefs"
    payload = os.urandom(3 * 2**20 + 17)
    (a / "shared").mkdir(exist_ok=True)
    (a / "shared" / "blob.bin").write_bytes(payload)
    assert sha(b / "shared" / "blob.bin") == hashlib.sha256(payload).hexdigest()

    with pymysql.connect(**lab.mysql_params(), autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS svc_probe (id INT PRIMARY KEY, note VARCHAR(32))")
        cur.execute("REPLACE INTO svc_probe VALUES (1, 'before restart')")

    before = {k: lab.state.get(k)["pid"] for k in ("redis", "mysql")}
    get_service("redis", "local", lab.state, "redis").stop()
    get_service("mysql", "local", lab.state, "mysql").stop()
    assert not any(procs.alive(pid) for pid in before.values())
    lab.up()
    lab.restart("redis")  # the notebook form of the same thing
    after = {k: lab.state.get(k)["pid"] for k in ("redis", "mysql")}
    assert all(after[k] != before[k] for k in after)

    with pymysql.connect(**lab.mysql_params()) as conn, conn.cursor() as cur:
        cur.execute("SELECT note FROM svc_probe WHERE id = 1")
        assert cur.fetchone() == ("before restart",)
    (a / "shared" / "after.txt").write_text("written after the restart")
    assert sha(b / "shared" / "blob.bin") == hashlib.sha256(payload).hexdigest()
    assert (b / "shared" / "after.txt").read_text() == "written after the restart"
    clean, out = lab.fsck()
    assert clean, out
    st = lab.juicefs_status()
    assert st["Setting"]["Name"] == jfs.VOLUME and st["Stat"]["UsedInodes"] >= 3
    lab.umount("svc-a")
    lab.umount("svc-b")
    assert jfs.mount_fstype(a) is None and not jfs.client_pids(a)


@needs_fuse
def test_stale_mount_is_detected_and_remounted(lab: Lab) -> None:
    mnt = lab.mount("svc-stale")
    (mnt / "keep.txt").write_text("survives a crashed client")
    pids = jfs.client_pids(mnt)
    assert pids
    # a crash: freeze supervisor and client first so neither can unmount or restart the other
    for sig in (signal.SIGSTOP, signal.SIGKILL):
        for pid in pids:
            os.kill(pid, sig)
    procs.wait_until(lambda: not jfs.client_pids(mnt), 10, "killed juicefs client")
    # the kernel may answer from its caches for a moment after the client's death
    procs.wait_until(lambda: jfs.is_stale(mnt), 5, "detection of the stale mount")
    row = next(r for r in lab.status() if r.name == "mount-svc-stale")
    assert not row.healthy and "STALE" in row.detail
    again = lab.mount("svc-stale")
    assert again == mnt and not jfs.is_stale(mnt)
    assert (mnt / "keep.txt").read_text() == "survives a crashed client"
    lab.umount("svc-stale")


def test_state_file_is_private_and_cli_never_prints_secrets(lab: Lab) -> None:
    assert stat.S_IMODE(lab.state.path.stat().st_mode) == 0o600
    secrets = lab.state.secret_values()
    assert len(secrets) >= 3
    outputs = [labkit_cli(*args, home=lab.home) for args in (["up"], ["status"], ["status", "--json"],
                                                              ["up", "--dry-run"])]
    for proc in outputs:
        assert proc.returncode == 0, proc.stderr
        for value in secrets:
            assert value not in proc.stdout + proc.stderr
    assert "****" in outputs[0].stdout  # the URIs are shown, masked
    rows = json.loads(outputs[2].stdout)["services"]
    assert {r["kind"] for r in rows} >= {"mysql", "redis", "objectstore", "juicefs"}
    assert all(r["healthy"] for r in rows if r["kind"] in STORAGE_KINDS)


def test_up_twice_reuses_and_repairs_only_the_broken_service(lab: Lab) -> None:
    first = labkit_cli("up", home=lab.home)
    assert first.returncode == 0, first.stderr
    pids = {k: lab.state.get(k)["pid"] for k in ("redis", "mysql")}
    second = labkit_cli("up", home=lab.home)
    assert second.returncode == 0, second.stderr
    assert {k: lab.state.get(k)["pid"] for k in pids} == pids

    os.kill(pids["redis"], signal.SIGKILL)
    procs.wait_until(lambda: not procs.alive(pids["redis"]), 10, "killed redis")
    down_row = next(r for r in lab.status() if r.name == "redis")
    assert not down_row.healthy
    third = labkit_cli("up", home=lab.home)
    assert third.returncode == 0, third.stderr
    assert lab.state.get("mysql")["pid"] == pids["mysql"]
    assert lab.state.get("redis")["pid"] != pids["redis"]
    assert all(r.healthy for r in lab.status() if r.kind in {"redis", "mysql", "juicefs"})


def test_fresh_database_is_empty_and_usable(lab: Lab, fresh_database) -> None:
    params = fresh_database("svc_scratch")
    with pymysql.connect(**params) as conn, conn.cursor() as cur:
        cur.execute("SHOW TABLES")
        assert cur.fetchall() == ()
        cur.execute("CREATE TABLE t (x INT)")
    assert lab.meta_uri("svc_scratch").endswith(f":{params['port']}/svc_scratch")


def test_no_fuse_fallback_shares_one_plain_directory(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABKIT_NO_FUSE", "1")
    a, b = lab.mount("svc-nofuse-a"), lab.mount("svc-nofuse-b")
    assert a == b == lab.home / "shared" and not lab.fuse
    assert jfs.mount_fstype(a) is None
    rows = {r.name: r for r in lab.status()}
    assert "NO FUSE" in rows["mount-svc-nofuse-a"].detail
    out = labkit_cli("status", home=lab.home, env={"LABKIT_NO_FUSE": "1"})
    assert "WARNING: NO FUSE" in out.stdout
    lab.umount("svc-nofuse-a")
    lab.umount("svc-nofuse-b")
    assert a.is_dir()  # umount never deletes the shared data


def test_s3_object_store_receives_the_chunks(tmp_path: Path) -> None:
    """moto's S3 server as the object store (no MySQL needed for this path)."""
    boto3 = pytest.importorskip("boto3")
    s3lab = Lab(tmp_path / "s3lab", object_store="s3")
    try:
        for kind in ("objectstore", "redis", "juicefs"):
            s3lab.service(kind).ensure()
        rec = s3lab.state.get("objectstore")
        assert rec["storage"] == "s3" and rec["bucket"].startswith("http://127.0.0.1:")
        if jfs.fuse_available()[0]:
            mnt = s3lab.mount("s3-node")
            (mnt / "chunk.bin").write_bytes(os.urandom(2**20 + 5))
        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{rec['port']}", region_name="us-west-2",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket="milvus-jfs").get("Contents", [])]
        assert any(k.startswith("milvus-jfs/") for k in keys)  # at least the volume's format marker
        if jfs.fuse_available()[0]:
            assert any("/chunks/" in k for k in keys)
        assert s3lab.volume().status().healthy
    finally:
        s3lab.down(purge=True)
    assert not lab_pids(tmp_path / "s3lab")


def test_docker_backend_renders_commands_and_refuses_without_engine(tmp_path: Path) -> None:
    from labkit.lab.services.docker_backend import engine_available

    dry = labkit_cli("up", "--backend", "docker", "--dry-run", home=tmp_path / "dock", env={"LABKIT_IMAGES": "real"})
    assert dry.returncode == 0, dry.stderr
    assert "docker run -d" in dry.stdout and "mysql:5.7" in dry.stdout and "redis-server" in dry.stdout
    assert "--storage wasb" in dry.stdout  # the article's Azure form, shown for comparison
    if not engine_available()[0]:  # here labkit could start its own engine: tests/docker covers that path
        proc = labkit_cli("up", "--backend", "docker", home=tmp_path / "dock")
        _assert_one_sentence_error(proc, "Docker engine", "--dry-run")
        assert LabState(tmp_path / "dock").services() == {}


# -- bad input: one sentence, non-zero exit, nothing deleted ---------------------------------


def _snapshot(home: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for p in home.rglob("*") if p.is_file() and "mounts" not in p.parts}


def _assert_one_sentence_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for word in words:
        assert word in err, err


def test_unknown_backend_and_store_are_refused(lab: Lab) -> None:
    before = _snapshot(lab.home)
    proc = labkit_cli("up", "--backend", "kubernetes", home=lab.home)
    _assert_one_sentence_error(proc, "kubernetes", "local")
    proc = labkit_cli("up", "--object-store", "ftp", home=lab.home)
    _assert_one_sentence_error(proc, "ftp", "s3")
    proc = labkit_cli("up", "--backend", "docker", home=lab.home)  # switching needs a purge first
    _assert_one_sentence_error(proc, "local backend", "down --purge")
    assert set(_snapshot(lab.home)) >= set(before)
    assert all(r.healthy for r in lab.status() if r.kind in {"redis", "mysql"})


def test_occupied_explicit_port_is_refused(lab: Lab, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = labkit_cli("up", "--redis-port", str(port), home=tmp_path / "other")
        _assert_one_sentence_error(proc, str(port), "in use")
        proc = labkit_cli("up", "--mysql-port", str(port), home=lab.home)
        _assert_one_sentence_error(proc, str(port), "in use")
    assert not lab_pids(tmp_path / "other")
    assert lab.state.get("mysql")["port"] != port


def test_unwritable_home_and_missing_binary(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("precious")
    proc = labkit_cli("up", home=blocker / "lab")
    _assert_one_sentence_error(proc, "not writable")
    assert blocker.read_text() == "precious"

    home = tmp_path / "nobin"
    proc = labkit_cli("up", home=home, env={"PATH": str(tmp_path / "empty-bin")})
    _assert_one_sentence_error(proc, "apt-get install")
    assert not lab_pids(home) and not (home / "mysql").exists()


def test_down_leaves_no_processes_or_mounts_then_up_again(lab: Lab) -> None:
    """Runs last in this module: down on the session lab, checks, then brings it back."""
    if jfs.fuse_available()[0]:
        lab.mount("svc-down")
    recorded = [rec["pid"] for rec in lab.state.services().values() if rec.get("pid")]
    assert recorded
    lab.down()
    assert not jfs.mounts_under(lab.home)
    assert str(lab.home) not in Path("/proc/mounts").read_text()
    assert not any(procs.alive(pid) for pid in recorded)
    assert not lab_pids(lab.home)
    left = lab.state.services()
    assert not any(rec.get("kind") == "mount" for rec in left.values())
    assert all(rec.get("stopped") for rec in left.values() if rec["kind"] in STORAGE_KINDS)
    assert not any(procs.alive(rec.get("pid")) for rec in left.values())
    assert not any(r.healthy for r in lab.status())
    lab.up()  # data kept: the next tests (and the fixture teardown) find a healthy lab
    assert all(r.healthy for r in lab.status() if r.kind in STORAGE_KINDS)
