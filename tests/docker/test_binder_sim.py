"""Binder, simulated: the repository in a container from labkit's Debian base, as user jovyan
(uid 1000, no root), without /dev/fuse, with a 2 GB memory limit (no swap beyond it):
``binder/postBuild``, then every notebook at SIZE=ci through ``binder/start labkit run``.

The peak memory of the container (cgroup v1 ``memory.max_usage_in_bytes``) and the run's
timings are printed as JSON and written to ``artifacts/binder_simulation.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from dockerhelp import REPO

from labkit.lab import images
from labkit.lab.services import containers
from labkit.nb.artifacts import artifacts_dir

pytestmark = [pytest.mark.docker, pytest.mark.binder]

IMAGE = "labkit/binder-sim:latest"
MEMORY = 2 * 1024**3
JOVYAN = 1000
SCRIPT = """set -u
cd /home/jovyan/repo
[ ! -e /dev/fuse ] || { echo "/dev/fuse exists"; exit 90; }
[ "$(id -u)" != 0 ] || { echo "running as root"; exit 91; }
bash binder/postBuild > /home/jovyan/repo/.sim/postBuild.log 2>&1 || { tail -20 .sim/postBuild.log; exit 92; }
start=$(date +%s)
binder/start labkit run --size ci --no-log-output --out /home/jovyan/repo/.sim/artifacts > .sim/run.log 2>&1
rc=$?
echo "{\\"run_seconds\\": $(( $(date +%s) - start )), \\"rc\\": $rc}" > .sim/run.json
cat /sys/fs/cgroup/memory/memory.max_usage_in_bytes > .sim/peak_bytes
binder/start labkit down --purge >> .sim/run.log 2>&1
exit $rc
"""


def _requirements() -> str:
    env = yaml.safe_load((REPO / "binder" / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return "\n".join(pip) + "\n"


def _copy_repo(dest: Path) -> None:
    """The repository as Binder clones it: tracked files (and new ones not ignored)."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        src = REPO / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    (dest / ".sim").mkdir()
    subprocess.run(["chown", "-R", f"{JOVYAN}:{JOVYAN}", str(dest)], check=True)


def test_binder_postbuild_and_notebooks_in_2gb_without_fuse(engine, local_images, tmp_path: Path) -> None:
    t0 = time.monotonic()
    built = images.build_custom(IMAGE, Path(__file__).parent / "binder" / "Dockerfile",
                                {"apt.txt": (REPO / "binder" / "apt.txt").read_bytes(),
                                 "requirements.txt": _requirements().encode()},
                                say=lambda m: print(f"[binder-sim] {m}", file=sys.stderr, flush=True))
    repo = tmp_path / "repo"
    _copy_repo(repo)
    client = engine.client(timeout=3600)
    name = containers.container_name(tmp_path, "binder-sim")
    box = client.containers.run(IMAGE, ["bash", "-c", SCRIPT], name=name, detach=True, network_mode="host",
                                mem_limit=MEMORY, memswap_limit=MEMORY, user=f"{JOVYAN}:{JOVYAN}",
                                volumes={str(repo): {"bind": "/home/jovyan/repo", "mode": "rw"}},
                                labels={containers.LABEL_HOME: str(tmp_path)})
    try:
        exit_code = box.wait(timeout=3000)["StatusCode"]
        box.reload()
        oom = box.attrs["State"].get("OOMKilled")
        log = containers.logs(box, 40)
    finally:
        containers.remove(client, name)
    sim = repo / ".sim"
    run_log = (sim / "run.log").read_text(errors="replace") if (sim / "run.log").exists() else ""
    run_record = sim / "artifacts" / "run.json"  # `labkit run`'s record of this run
    summary = json.loads(run_record.read_text()).get("notebooks", []) if run_record.exists() else []
    peak = int((sim / "peak_bytes").read_text()) if (sim / "peak_bytes").exists() else None
    result = {"image_build_seconds": built, "peak_memory_mib": round(peak / 2**20) if peak else None,
              "memory_limit_mib": MEMORY // 2**20, "oom_killed": oom, "exit_code": exit_code,
              **(json.loads((sim / "run.json").read_text()) if (sim / "run.json").exists() else {}),
              "notebooks": [{k: r[k] for k in ("notebook", "seconds", "ok")} for r in summary],
              "total_seconds": round(time.monotonic() - t0, 1)}
    print("[binder-sim] " + json.dumps(result), file=sys.stderr)
    (artifacts_dir() / "binder_simulation.json").write_text(json.dumps(result, indent=2))
    assert exit_code == 0, f"{log}\n--- run.log tail ---\n{run_log[-3000:]}"
    assert not oom and peak is not None and peak < MEMORY
    assert summary and all(r["ok"] for r in summary), summary
    assert {r["notebook"][:2] for r in summary} >= {"00", "01", "02", "03", "04", "05", "06"}
