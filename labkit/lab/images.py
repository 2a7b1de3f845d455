"""Container images for the docker backend: the real ones a connected user pulls, or a local set.

``LABKIT_IMAGES`` chooses the set: ``real`` (default; what the article's readers pull from Docker
Hub) or ``local`` (built here by ``labkit images build``, for machines without a registry):

- ``labkit/debian:bookworm``: ``debootstrap --variant=minbase bookworm`` from the Debian mirror
  apt already uses (read from /etc/apt/sources.list*), imported with ``docker import``;
- ``labkit/mariadb``, ``labkit/redis``: Debian's packages on that base;
- ``labkit/lab``: a venv with labkit's node/router dependencies from PyPI; runs
  ``python -m labkit.node`` (a Milvus 1.1 node) or ``python -m labkit.router`` (Mishards role).

Every local image carries a ``labkit.inputs`` label (hash of what it was built from); ``build``
skips an image whose label matches, so each machine builds once until an input changes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labkit.errors import LabError
from labkit.lab import engine as engines
from labkit.lab.services import binaries

REAL = {
    "node": "milvusdb/milvus:1.1.1-cpu-d061621-330cc6",
    "router": "milvusdb/mishards",
    "mysql": "mysql:5.7",
    "redis": "redis",
}
BASE = "labkit/debian:bookworm"
LOCAL = {"node": "labkit/lab:latest", "router": "labkit/lab:latest", "mysql": "labkit/mariadb:latest",
         "redis": "labkit/redis:latest"}
SETS = {"real": REAL, "local": LOCAL}
SUITE = "bookworm"
DOCKERFILES = Path(__file__).resolve().parent / "dockerfiles"
REPO = Path(__file__).resolve().parents[2]
# the distributions the labkit image needs to run labkit.node and labkit.router (not the notebook
# stack); their version ranges are pyproject.toml's
LAB_DEP_NAMES = ("numpy", "faiss-cpu", "grpcio", "protobuf", "pyyaml", "pymysql", "psutil", "uhashring",
                 "ujson", "requests", "aiohttp", "annoy", "prometheus-client", "google-re2")


def lab_deps() -> tuple[str, ...]:
    """``LAB_DEP_NAMES`` with pyproject.toml's version ranges, e.g. ``numpy>=1.26``."""
    import tomllib

    specs = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    by_name = {re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0].lower(): spec for spec in specs}
    missing = [n for n in LAB_DEP_NAMES if n not in by_name]
    if missing:
        raise LabError(f"pyproject.toml does not list {', '.join(missing)}, which the labkit image needs.")
    return tuple(by_name[n] for n in LAB_DEP_NAMES)
PYMILVUS = "pymilvus==1.1.2"


def image_set() -> str:
    """The chosen set: ``LABKIT_IMAGES`` (real | local), default real."""
    name = os.environ.get("LABKIT_IMAGES", "real").strip().lower() or "real"
    if name not in SETS:
        raise LabError(f"LABKIT_IMAGES={name!r} is not an image set; choose one of: {', '.join(SETS)}.")
    return name


def image_for(kind: str, which: str | None = None) -> str:
    """The image that runs ``kind`` (node, router, mysql, redis) in the chosen set."""
    return SETS[which or image_set()][kind]


# -- the Debian mirror -----------------------------------------------------------------------

def debian_mirror(sources: list[tuple[str, str]] | None = None) -> str:
    """The first Debian archive URI apt uses for the main suite (not -security, not -updates).

    ``sources``: (path, text) pairs for tests; default: /etc/apt/sources.list and sources.list.d.
    """
    if sources is None:
        paths = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
        sources = [(str(p), p.read_text(errors="replace")) for p in paths
                   if p.is_file() and p.name.endswith((".list", ".sources"))]
    for path, text in sources:
        for uri, suites in (_deb822(text) if path.endswith(".sources") else _one_line(text)):
            if any(s == SUITE for s in suites) and "security" not in uri:
                return uri.rstrip("/")
    raise LabError("No Debian bookworm mirror found in /etc/apt/sources.list*; "
                   "debootstrap needs one (add it to apt's sources first).")


def _one_line(text: str) -> list[tuple[str, list[str]]]:
    out = []
    for line in text.splitlines():
        parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
        if len(parts) >= 3 and parts[0] == "deb":
            out.append((parts[1], [parts[2]]))
    return out


def _deb822(text: str) -> list[tuple[str, list[str]]]:
    out = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
            for uri in fields.get("uris", "").split():
                out.append((uri, fields.get("suites", "").split()))
    return out


# -- build -----------------------------------------------------------------------------------

def _digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def _labkit_sources() -> list[Path]:
    files = [REPO / "pyproject.toml", REPO / "README.md", REPO / "labkit-milvus-compat.pth"]
    files += sorted(p for p in (REPO / "labkit").rglob("*")
                    if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    return files


def inputs(name: str, mirror: str) -> str:
    """The ``labkit.inputs`` label an up-to-date image ``name`` carries."""
    if name == BASE:
        return _digest(SUITE, "minbase", mirror)
    base = inputs(BASE, mirror)
    dockerfile = (DOCKERFILES / f"{_short(name)}.Dockerfile").read_bytes()
    if name == LOCAL["node"]:
        srcs = [str(p.relative_to(REPO)).encode() + p.read_bytes() for p in _labkit_sources()]
        return _digest(base, dockerfile, " ".join(lab_deps()), PYMILVUS, pip_ca_bundle().read_bytes(), *srcs)
    extra = [p.read_bytes() for p in sorted(DOCKERFILES.glob(f"{_short(name)}-*"))]
    return _digest(base, dockerfile, *extra)


def pip_ca_bundle() -> Path:
    """The CA bundle this machine's pip trusts (PIP_CERT, SSL_CERT_FILE, else Debian's bundle).

    Copied into the build so ``pip`` inside works behind the same TLS setup as the host's.
    """
    for var in ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return Path("/etc/ssl/certs/ca-certificates.crt")


def _short(name: str) -> str:
    return name.split("/", 1)[1].split(":", 1)[0]


def _current(client, name: str, want: str) -> bool:
    import docker

    try:
        return client.images.get(name).labels.get("labkit.inputs") == want
    except docker.errors.ImageNotFound:
        return False


def build(say: Callable[[str], None] = print, force: bool = False) -> dict[str, Any]:
    """Build the local image set (each only when its inputs changed); seconds per image built."""
    eng = engines.ensure()
    client = eng.client(timeout=1800)
    mirror = debian_mirror()
    timings: dict[str, Any] = {}
    order = [BASE, LOCAL["mysql"], LOCAL["redis"], LOCAL["node"]]
    for name in order:
        want = inputs(name, mirror)
        if not force and _current(client, name, want):
            say(f"{name}: up to date")
            timings[name] = None
            continue
        say(f"{name}: building ...")
        t0 = time.monotonic()
        if name == BASE:
            _build_base(client, mirror, want, say)
        else:
            _build_derived(client, name, want)
        timings[name] = round(time.monotonic() - t0, 1)
        say(f"{name}: built in {timings[name]} s")
    client.images.prune(filters={"dangling": True})  # layers of failed or replaced builds
    client.close()
    result = {"engine": eng.url, "mirror": mirror, "seconds": timings,
              "total_built_seconds": round(sum(v for v in timings.values() if v), 1)}
    first = engines.docker_home() / "first-build.json"
    if all(v is not None for v in timings.values()) and not first.exists():
        first.write_text(json.dumps({**result, "built_at": time.time()}, indent=2))
    if first.exists():
        result["first_build"] = json.loads(first.read_text())
    return result


def _build_base(client, mirror: str, want: str, say: Callable[[str], None]) -> None:
    debootstrap = binaries.require(["debootstrap"], "Building the base image")
    if os.geteuid() != 0:
        raise LabError("Building the base image with debootstrap needs root.")
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=engines.docker_home()))
    try:
        rootfs, tar = work / "rootfs", work / "rootfs.tar"
        log = engines.docker_home() / "debootstrap.log"
        say(f"debootstrap --variant=minbase {SUITE} from {mirror}")
        # packages apt already downloaded on this machine are reused (and new ones kept there)
        cache = ["--cache-dir=/var/cache/apt/archives"] if Path("/var/cache/apt/archives").is_dir() else []
        with open(log, "wb") as out:
            rc = subprocess.run([debootstrap, "--variant=minbase", *cache, SUITE, str(rootfs), mirror],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                timeout=1200).returncode
        if rc != 0:
            from labkit.lab.procs import tail

            raise LabError(f"debootstrap failed (exit {rc}). Last lines of {log}:\n{tail(log)}")
        # apt inside the image uses the same mirror; no caches or docs in the image
        (rootfs / "etc/apt/sources.list").write_text(
            f"deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\n")
        (rootfs / "etc/dpkg/dpkg.cfg.d/01-labkit-nodoc").write_text(
            "path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\n"
            "path-exclude /usr/share/locale/*\n")
        (rootfs / "etc/apt/apt.conf.d/01-labkit").write_text(
            'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n')
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True, timeout=600)
        repo, tag = BASE.split(":")
        client.api.import_image(src=str(tar), repository=repo, tag=tag,
                                changes=[f"LABEL labkit.inputs={want}", 'CMD ["/bin/bash"]'])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _build_derived(client, name: str, want: str) -> None:

    short = _short(name)
    with tempfile.TemporaryDirectory(prefix=f"ctx-{short}-", dir=engines.docker_home()) as tmp:
        ctx = Path(tmp)
        shutil.copy(DOCKERFILES / f"{short}.Dockerfile", ctx / "Dockerfile")
        for extra in DOCKERFILES.glob(f"{short}-*"):
            shutil.copy(extra, ctx / extra.name)
        buildargs = {}
        if name == LOCAL["node"]:
            for src in _labkit_sources():
                dest = ctx / "src" / src.relative_to(REPO)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(src, dest)
            shutil.copy(pip_ca_bundle(), ctx / "pip-ca.crt")
            buildargs = {"LAB_DEPS": " ".join(lab_deps()), "PYMILVUS": PYMILVUS}
        _docker_build(client, ctx, name, want, buildargs)


def _docker_build(client, ctx: Path, name: str, want: str, buildargs: dict[str, str]) -> None:
    import docker

    try:
        client.images.build(path=str(ctx), tag=name, network_mode="host", rm=True, forcerm=True,
                            labels={"labkit.inputs": want}, buildargs=buildargs, pull=False)
    except docker.errors.BuildError as exc:
        lines = [str(c.get("stream", c.get("error", ""))).rstrip() for c in exc.build_log]
        tail = "\n".join(x for x in lines if x)[-1500:]
        raise LabError(f"Building {name} failed: {exc.msg}\n{tail}") from None


def build_custom(name: str, dockerfile: Path, files: dict[str, bytes],
                 say: Callable[[str], None] = print) -> float | None:
    """Build image ``name`` FROM the local base (host network), unless its inputs are unchanged.

    ``files``: extra build-context files (name -> content). Returns the build seconds, or None
    when the cached image was current.
    """
    eng = engines.ensure()
    client = eng.client(timeout=1800)
    mirror = debian_mirror()
    ca = pip_ca_bundle().read_bytes()
    want = _digest(inputs(BASE, mirror), dockerfile.read_bytes(), ca,
                   *(k.encode() + v for k, v in sorted(files.items())))
    if _current(client, name, want):
        say(f"{name}: up to date")
        return None
    say(f"{name}: building ...")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ctx-", dir=engines.docker_home()) as tmp:
        ctx = Path(tmp)
        shutil.copy(dockerfile, ctx / "Dockerfile")
        (ctx / "pip-ca.crt").write_bytes(ca)
        for fname, content in files.items():
            (ctx / fname).write_bytes(content)
        _docker_build(client, ctx, name, want, {})
    client.images.prune(filters={"dangling": True})
    seconds = round(time.monotonic() - t0, 1)
    say(f"{name}: built in {seconds} s")
    return seconds


def present(which: str | None = None) -> dict[str, bool]:
    """Which images of the set exist in the engine (without building or pulling)."""
    import docker

    eng = engines.find()
    if eng is None:
        return {}
    client = eng.client()
    out = {}
    for image in sorted(set(SETS[which or image_set()].values())):
        try:
            client.images.get(image)
            out[image] = True
        except docker.errors.ImageNotFound:
            out[image] = False
    client.close()
    return out


def require(name: str) -> str:
    """Image ``name`` on the engine (pulled if missing); a clear error when it cannot be had."""
    import docker

    client = engines.ensure().client()
    try:
        client.images.get(name)
        return name
    except docker.errors.ImageNotFound:
        pass
    if name in LOCAL.values() or name == BASE:
        raise LabError(f"The local image {name} is missing; build the local set with `labkit images build`.")
    try:
        client.images.pull(name)
        return name
    except docker.errors.APIError as exc:
        raise LabError(f"Cannot pull {name} ({str(exc)[:160]}); without a registry build the local set "
                       "with `labkit images build` and set LABKIT_IMAGES=local.") from None
    finally:
        client.close()

