"""Start JupyterLab on the notebooks: ``make lab`` and the browser test use the same command.

Listens on 127.0.0.1 only, with a token generated per start; as root (the README's own setup runs as
root) Jupyter refuses to start without ``--allow-root``, so it is added when the uid is 0.

    python -m labkit.nb.jupyter [--port 8888]     # prints the URL with its token, then runs JupyterLab
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from labkit.lab.procs import free_port
from labkit.lab.state import REPO_ROOT


def lab_command(port: int, token: str, notebook_dir: Path | str = REPO_ROOT / "notebooks",
                extra: Sequence[str] = ()) -> list[str]:
    """The ``jupyter lab`` command line (no browser, 127.0.0.1, the given token, ``extra`` options)."""
    cmd = [sys.executable, "-m", "jupyterlab", f"--notebook-dir={notebook_dir}", "--no-browser",
           "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", *extra]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd


def lab_url(port: int, token: str, path: str = "lab") -> str:
    return f"http://127.0.0.1:{port}/{path}?token={token}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="JupyterLab on notebooks/, on 127.0.0.1 with a fresh token")
    parser.add_argument("--port", type=int, default=None, help="default: 8888, or the next free port")
    args = parser.parse_args(argv)
    port = args.port or free_port(8888)
    token = secrets.token_hex(24)
    print(f"JupyterLab: {lab_url(port, token)}", flush=True)
    print("(stop it with Ctrl-C; the lab's services keep running until `make down`)", flush=True)
    cmd = lab_command(port, token)
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
