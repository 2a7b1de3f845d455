"""Commands a participant runs in the notebooks (``juicefs``, ``ls``), shown with their real output.

Secrets never reach the page: the lab's generated passwords are masked in the command line and in
whatever the command printed. ``flag_rows`` explains every option the lab passes to ``juicefs``.
"""

from __future__ import annotations

import html
import os
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# what each juicefs option the lab passes does, and why the lab passes it
JUICEFS_FLAGS = {
    "--storage": "object store type. The article: `wasb` (Azure Blob). Here: `file` (a local directory) "
                 "or `s3` (the moto S3 emulator): no cloud account is needed",
    "--bucket": "where the data blocks go: a directory for `file`, an http URL for `s3` "
                "(the article: `https://<container>`)",
    "--access-key": "S3 access key of the emulator (moto accepts any)",
    "--secret-key": "S3 secret key of the emulator (masked)",
    "--trash-days": "0 = files Milvus deletes (segments merged away, dropped collections) free their "
                    "space at once; the default 1 keeps them a day in `.trash`",
    "--no-update": "if the volume already exists, keep its settings: running `format` again is harmless",
    "--cache-dir": "this node's own block cache, as each host has its own local disk",
    "-d": "run the client in the background (the article uses it too)",
    "--no-usage-report": "send no anonymous usage report: the lab makes no outside connections",
    "--cache-size": "local block cache capacity in MiB (1024 = 1 GiB; the default is 100 GiB)",
    "--metrics": "Prometheus metrics on 127.0.0.1 and a free port: every client on one machine "
                 "needs its own (the default 9567 would collide)",
    "--log": "the background client's log file (default /var/log/juicefs.log)",
    "--read-only": "the client refuses writes (used when a node must never write)",
}


@dataclass
class Ran:
    """A command that ran: masked command line, exit code, masked output (stdout then stderr)."""

    cmd: str
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def __repr__(self) -> str:
        tail = f"\n(exit code {self.returncode})" if self.returncode else ""
        return f"$ {self.cmd}\n{self.output.rstrip()}{tail}"

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(repr(self))}</pre>"


def run(args: Sequence[str], env: dict[str, str] | None = None, mask: Any = None, timeout: float = 120,
        shown: str | None = None) -> Ran:
    """Run ``args`` (no shell) and keep what it printed; ``mask`` hides secrets in both."""
    mask = mask or (lambda s: s)
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    return Ran(mask(shown or shlex.join(args)), proc.returncode, mask(proc.stdout + proc.stderr))


def juicefs(lab: Any, args: Sequence[str], timeout: float = 120) -> Ran:
    """``juicefs <args>`` with the lab's Redis password and object store settings in the environment."""
    from labkit.lab.services import binaries

    vol = lab.volume()
    meta, masked = vol.meta_url(), vol.masked_meta_url()

    def mask(text: str) -> str:
        return lab.state.mask(text).replace(meta, masked)

    return run([binaries.juicefs(), "--no-color", *args], env=vol.meta_env(), mask=mask, timeout=timeout,
               shown="juicefs " + shlex.join(args))


def flag_rows(args: Sequence[str]) -> list[dict[str, str]]:
    """One row per option in a juicefs argument list: the flag, its value and why the lab sets it."""
    rows = []
    for i, arg in enumerate(args):
        if not arg.startswith("-"):
            continue
        value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("-") and arg in VALUED else ""
        if arg == "--secret-key":
            value = "****"
        rows.append({"flag": arg, "value": value, "why": JUICEFS_FLAGS.get(arg, "(not explained)")})
    return rows


VALUED = {"--storage", "--bucket", "--access-key", "--secret-key", "--trash-days", "--cache-dir",
          "--cache-size", "--metrics", "--log", "--block-size"}
