"""A real browser: headless Chromium opens JupyterLab, runs notebook 03, and uses its cluster panel.

JupyterLab is started the way ``make lab`` starts it (``labkit.nb.jupyter.lab_command``, so
``--allow-root`` when root) on a copy of the notebooks (nothing is saved into the repository),
against a lab of its own in a temporary LABKIT_HOME at SIZE=ci. The test asserts that every cell
ran without an error output, that the panel rendered as a widget, and that pressing its Refresh
button shows a change made behind its back (a read node stopped). A screenshot of the page goes
to ``artifacts/browser/``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from labkit.lab import cluster
from labkit.lab.api import Lab
from labkit.lab.procs import free_port, stop
from labkit.lab.state import REPO_ROOT
from labkit.nb.jupyter import lab_command, lab_url
from labkit.nb.views import leftovers

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
selenium = pytest.importorskip("selenium", reason="selenium is a dev dependency (pip install -e .[dev])")
pytestmark = [pytest.mark.notebooks, pytest.mark.timeout(600),
              pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                 reason="Debian packages chromium and chromium-driver are not installed")]
SHOTS = REPO_ROOT / "artifacts" / "browser"
NOTEBOOK = "03_milvus_rw_ro.ipynb"


@pytest.fixture(scope="module")
def jupyterlab() -> Iterator[dict]:
    """A lab (storage up) and JupyterLab serving a copy of the notebooks; both gone afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="lab-browser-"))
    home, served = tmp / "home", tmp / "notebooks"
    shutil.copytree(REPO_ROOT / "notebooks", served, ignore=shutil.ignore_patterns("*.py"))
    env = {**os.environ, "LABKIT_HOME": str(home), "LABKIT_SIZE": "ci", "LABKIT_ARTIFACTS": str(tmp / "out"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("LABKIT_CI", None)  # progress as in a participant's browser
    lab = Lab(home)
    port, token = free_port(), secrets.token_hex(16)
    server = None
    try:
        lab.up()
        with open(tmp / "jupyter.log", "wb") as log:
            server = subprocess.Popen(lab_command(port, token, served, extra=["--expose-app-in-browser"]),
                                      env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                      start_new_session=True)
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(lab_url(port, token, "api/status"), timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    log = (tmp / "jupyter.log").read_text()[-2000:]
                    raise AssertionError(f"JupyterLab did not start: {log}") from None
                time.sleep(0.5)
        yield {"url": lab_url(port, token, f"lab/tree/{NOTEBOOK}"), "lab": lab, "tmp": tmp}
    finally:
        try:
            if server is not None:
                _stop_jupyterlab(server.pid)
        finally:  # the lab goes down whatever happened above, then nothing of it may remain
            lab.down(purge=True)
            left = leftovers(home)
            if not left["mounts"]:
                shutil.rmtree(tmp, ignore_errors=True)
            assert left == {"processes": [], "mounts": []}, left


def _stop_jupyterlab(pid: int) -> None:
    """SIGTERM the server (it asks its kernels to shut down); a kernel left after 10 s is stopped by PID."""
    try:
        kernels = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        kernels = []
    stop(pid)
    psutil.wait_procs(kernels, timeout=10)
    for kernel in kernels:
        stop(kernel.pid)


def _browser(tmp: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={tmp / 'chromium'}", "--window-size=1400,1800"):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def _wait(driver, script: str, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / "03_timeout.png"))
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


PANEL_TEXT = "const b = document.querySelector('.labkit-panel-body'); return b ? b.innerText : '';"
STAMP_TEXT = "const s = document.querySelector('.labkit-panel-stamp'); return s ? s.innerText : '';"


def test_notebook_03_runs_in_jupyterlab_and_its_panel_refreshes(jupyterlab: dict) -> None:
    driver = _browser(jupyterlab["tmp"])
    try:
        driver.get(jupyterlab["url"])
        _wait(driver, "return window.jupyterapp && document.querySelector('.jp-Notebook .jp-Cell') !== null",
              90, "JupyterLab to open the notebook")
        _wait(driver, "const s = window.jupyterapp.shell.currentWidget;"
                      "const k = s && s.sessionContext && s.sessionContext.session"
                      " && s.sessionContext.session.kernel;"
                      "return k && k.status === 'idle';", 90, "the kernel")
        driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # run-all stops at the first error; done when no cell waits ([*]) and the last one has a number
        _wait(driver, "const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
                      ".map(e => e.innerText);"
                      "return p.length && !p.some(t => t.includes('*')) && /\\d/.test(p[p.length - 1]);",
              300, "every cell of notebook 03 to run")
        errors = driver.execute_script(
            "return [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText)"
            ".filter(t => /Traceback|Error\\b.*\\n/.test(t) && /---->|Traceback/.test(t));")
        assert not errors, errors[0][:2000]
        before = _wait(driver, f"{PANEL_TEXT}", 30, "the cluster panel widget to render")
        stamp = driver.execute_script(STAMP_TEXT)
        ro1_service = [line for line in before.splitlines() if line.startswith("ro1\tnode")]
        assert "role rw" in before and ro1_service and "role ro" in ro1_service[0], before
        SHOTS.mkdir(parents=True, exist_ok=True)
        driver.execute_script("document.querySelector('.labkit-panel-body').scrollIntoView()")
        driver.save_screenshot(str(SHOTS / "03_panel.png"))

        cluster.stop_node(jupyterlab["lab"], "ro1")  # a change behind the panel's back
        driver.execute_script("document.querySelector('.labkit-panel-refresh').click()")
        after = _wait(driver, f"const t = (() => {{{PANEL_TEXT}}})(); return t !== {before!r} ? t : '';",
                      30, "Refresh to update the panel")
        assert driver.execute_script(STAMP_TEXT) != stamp
        ro1_service = [line for line in after.splitlines() if line.startswith("ro1\tnode")]
        assert ro1_service and "stopped" in ro1_service[0] and "role ro" not in ro1_service[0], after
        driver.save_screenshot(str(SHOTS / "03_panel_refreshed.png"))
    finally:
        driver.quit()
