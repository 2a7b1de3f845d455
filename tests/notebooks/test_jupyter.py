"""`make lab`: JupyterLab on 127.0.0.1 with a fresh token, as root too, and the README's Binder badge."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request

from labkit.lab.procs import free_port, stop
from labkit.lab.state import REPO_ROOT
from labkit.nb.jupyter import lab_command


def test_allow_root_exactly_when_root() -> None:
    cmd = lab_command(8888, "t0ken")
    assert ("--allow-root" in cmd) == (os.geteuid() == 0)
    assert "--ip=127.0.0.1" in cmd and "--IdentityProvider.token=t0ken" in cmd and "--no-browser" in cmd


def test_make_lab_prints_its_url_and_serves(tmp_path) -> None:
    """What `make lab` runs: the first line is the URL with the token, and that token opens the server."""
    port = free_port()
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    with open(tmp_path / "lab.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "labkit.nb.jupyter", "--port", str(port)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "PYTHONPATH": path}, start_new_session=True)
    url = re.compile(rf"JupyterLab: http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]{{48}})$")
    try:
        deadline = time.monotonic() + 60
        while True:
            first = (tmp_path / "lab.log").read_text().splitlines()[:1]
            match = url.match(first[0]) if first else None
            if match:
                try:
                    api = f"http://127.0.0.1:{port}/api/status?token={match[1]}"
                    status = urllib.request.urlopen(api, timeout=2).status
                    break
                except OSError:
                    pass
            log_tail = (tmp_path / "lab.log").read_text()[-2000:]
            assert time.monotonic() < deadline and proc.poll() is None, log_tail
            time.sleep(0.5)
        assert status == 200
    finally:
        stop(proc.pid)


def test_readme_binder_badge_opens_notebook_00() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    badge = re.search(r"\[!\[Binder\]\(https://mybinder\.org/badge_logo\.svg\)\]"
                      r"\((https://mybinder\.org/v2/gh/[^)]+)\)", readme)
    assert badge and badge[1].endswith("?urlpath=lab/tree/notebooks/00_overview.ipynb")
