"""The lab directory: what runs, where, with which ports and secrets.

Every notebook kernel and CLI call finds the same lab through ``state.json`` in
``lab_home()`` (``$LABKIT_HOME``, else ``<repo>/.lab``). The file is mode 0600
because it holds generated passwords; updates hold an fcntl lock so two kernels
never lose each other's writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labkit.errors import LabError

REPO_ROOT = Path(__file__).resolve().parents[2]  # labkit/lab/state.py -> the repository


def lab_home() -> Path:
    """Where the lab keeps its data, logs, mounts and state."""
    env = os.environ.get("LABKIT_HOME")
    if env:
        return Path(env).expanduser().resolve()
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / ".lab"
    return Path.home() / ".labkit"


class LabState:
    """Read-modify-write access to ``<home>/state.json``; each call re-reads the file."""

    def __init__(self, home: Path | str | None = None) -> None:
        self.home = Path(home) if home else lab_home()
        self.path = self.home / "state.json"

    # -- directory ---------------------------------------------------------
    def ensure_home(self) -> Path:
        try:
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            # a name of our own: two kernels probing at once must not unlink each other's file
            probe = self.home / f".write-test-{os.getpid()}-{threading.get_ident()}"
            probe.write_text("ok")
            probe.unlink(missing_ok=True)
        except OSError as exc:
            raise LabError(f"The lab directory {self.home} is not writable ({exc.strerror}); "
                           "set LABKIT_HOME to a writable directory.") from None
        return self.home

    def dir(self, *parts: str) -> Path:
        """A subdirectory of the lab home, created on demand."""
        path = self.ensure_home().joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- file access -------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.ensure_home()
        with open(self.home / ".state.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read()
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                self._write(data)

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"services": {}, "secrets": {}}
        except json.JSONDecodeError as exc:
            raise LabError(f"The lab state file {self.path} is damaged ({exc}); "
                           "run `labkit down` and delete it to start afresh.") from None

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def snapshot(self) -> dict[str, Any]:
        """A copy of the whole state (secrets included: never print it)."""
        return self._read() if self.path.exists() else {"services": {}, "secrets": {}}

    # -- services ----------------------------------------------------------
    def services(self) -> dict[str, dict[str, Any]]:
        return dict(self.snapshot().get("services", {}))

    def get(self, name: str) -> dict[str, Any] | None:
        return self.services().get(name)

    def record(self, name: str, **info: Any) -> dict[str, Any]:
        """Merge ``info`` into the record of service ``name`` and return the record."""
        with self._locked() as data:
            rec = data.setdefault("services", {}).setdefault(name, {"name": name})
            rec.update(info)
            rec["updated_at"] = time.time()
            return dict(rec)

    def forget(self, name: str) -> None:
        with self._locked() as data:
            data.setdefault("services", {}).pop(name, None)

    # -- lab-wide settings (e.g. the recorded cluster shape) ----------------
    def meta(self, key: str) -> Any:
        return self.snapshot().get("meta", {}).get(key)

    def set_meta(self, key: str, value: Any) -> None:
        with self._locked() as data:
            data.setdefault("meta", {})[key] = value

    # -- secrets -----------------------------------------------------------
    def secret(self, name: str, nbytes: int = 12) -> str:
        """A generated secret, created once per lab and then reused."""
        with self._locked() as data:
            store = data.setdefault("secrets", {})
            if name not in store:
                store[name] = secrets.token_hex(nbytes)
            return store[name]

    def secret_values(self) -> list[str]:
        return [v for v in self.snapshot().get("secrets", {}).values() if v]

    def mask(self, text: str) -> str:
        """``text`` with every lab secret (and any URL password) replaced by ****."""
        for value in self.secret_values():
            text = text.replace(value, "****")
        return mask_url_passwords(text)


_URL_PASS = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)", re.I)


def mask_url_passwords(text: str) -> str:
    """``redis://:secret@host`` -> ``redis://:****@host`` for any scheme."""
    return _URL_PASS.sub(lambda m: m.group("head") + "****", text)
