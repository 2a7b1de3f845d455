"""``labkit export compose``: the article's cluster as one docker-compose set per host.

Layout (the article's): host 1 runs MySQL, Redis (JuiceFS metadata), the rw Milvus and Mishards;
hosts 2..N each run one ro Milvus. Every host mounts the JuiceFS volume itself and bind-mounts
``$JFS_MOUNT/milvus/db`` at ``/var/lib/milvus/db``. Every address, port, path and secret is a
variable in the host's ``.env``; the files hold nothing of the machine that wrote them.

Per host folder ``hostK/``: ``docker-compose.yml`` (real images), ``docker-compose.local.yml``
(override for labkit's local image set), ``.env``, ``server_config.yaml.tmpl``, ``prepare.sh``
(renders ``conf/server_config.yaml`` from ``.env``), ``juicefs.sh`` (format on host 1, mount on
each host). ``README.md`` gives the order.
"""

from __future__ import annotations

import os
import secrets
import shlex
from pathlib import Path
from typing import Any

import yaml

from labkit.errors import LabError
from labkit.lab import images
from labkit.lab.services.mysql import DATABASE, USER

ARTICLE_PORTS = {"MYSQL_PORT": 3306, "REDIS_PORT": 6379, "MILVUS_PORT": 19530, "MISHARDS_PORT": 19531}


def _tcp_check(var: str) -> dict[str, Any]:
    return {"test": ["CMD", "bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/${{{var}}}"], "interval": "2s",
            "timeout": "2s", "retries": 10}


def compose_file(host: int) -> dict[str, Any]:
    """The compose document of host ``host`` (1-based); host 1 carries MySQL, Redis and Mishards."""
    common = {"network_mode": "host", "restart": "on-failure:3", "init": True}
    services: dict[str, Any] = {}
    if host == 1:
        services["mysql"] = {
            **common, "image": "${MYSQL_IMAGE}",
            "command": ["--port=${MYSQL_PORT}", "--bind-address=${MYSQL_BIND}",
                        "--character-set-server=utf8mb4", "--collation-server=utf8mb4_general_ci"],
            "environment": {"MYSQL_ROOT_PASSWORD": "${MYSQL_ROOT_PASSWORD}", "MYSQL_DATABASE": DATABASE,
                            "MYSQL_USER": USER, "MYSQL_PASSWORD": "${MYSQL_PASSWORD}"},
            "volumes": ["${DATA_DIR}/mysql:/var/lib/mysql"], "healthcheck": _tcp_check("MYSQL_PORT")}
        # the password reaches redis-server on stdin (config "-"), never on its command line
        services["redis"] = {
            **common, "image": "${REDIS_IMAGE}", "environment": {"REDIS_PASSWORD": "${REDIS_PASSWORD}"},
            "command": ["sh", "-c", "exec redis-server - --port ${REDIS_PORT} --bind ${REDIS_BIND} --appendonly yes"
                        " --maxmemory-policy noeviction --dir /data <<EOF\nrequirepass $$REDIS_PASSWORD\nEOF\n"],
            "volumes": ["${DATA_DIR}/redis:/data"], "healthcheck": _tcp_check("REDIS_PORT")}
    services["milvus"] = {
        **common, "image": "${MILVUS_IMAGE}",
        "volumes": ["${JFS_MOUNT}/milvus/db:/var/lib/milvus/db", "./conf:/var/lib/milvus/conf",
                    "${DATA_DIR}/logs:/var/lib/milvus/logs", "${DATA_DIR}/wal:/var/lib/milvus/wal"],
        "healthcheck": _tcp_check("MILVUS_PORT")}
    if host == 1:
        services["mishards"] = {
            **common, "image": "${MISHARDS_IMAGE}",
            "environment": {
                "SERVER_PORT": "${MISHARDS_PORT}", "SERVER_BIND": "${MISHARDS_BIND}",
                "WOSERVER": "tcp://${RW_HOST}:${MILVUS_PORT}",
                "SQLALCHEMY_DATABASE_URI": (f"mysql+pymysql://{USER}:${{MYSQL_PASSWORD}}@${{MYSQL_HOST}}:"
                                            f"${{MYSQL_PORT}}/{DATABASE}?charset=utf8mb4"),
                "DISCOVERY_CLASS_NAME": "static", "DISCOVERY_STATIC_HOSTS": "${RO_HOSTS}",
                "DISCOVERY_STATIC_PORT": "${RO_PORT}", "MAX_RETRY": "3"},
            "healthcheck": _tcp_check("MISHARDS_PORT")}
    return {"version": "2.4", "services": services}


def local_override(host: int) -> dict[str, Any]:
    """``-f docker-compose.local.yml``: labkit's local images in place of the real ones."""
    services: dict[str, Any] = {"milvus": {"image": images.LOCAL["node"]}}
    if host == 1:
        services["mysql"] = {"image": images.LOCAL["mysql"]}
        services["redis"] = {"image": images.LOCAL["redis"]}
        services["mishards"] = {"image": images.LOCAL["router"], "command": ["python", "-m", "labkit.router"]}
    return {"version": "2.4", "services": services}


def env_file(host: int, hosts: int, project: str) -> dict[str, str]:
    """The variables of host ``host``: placeholders for addresses, fresh secrets, the article's ports."""
    env = {"COMPOSE_PROJECT_NAME": f"{project}-host{host}",
           "MILVUS_IMAGE": images.REAL["node"], "DATA_DIR": "/var/lib/milvus-lab",
           "JFS_MOUNT": "/root/jfs", "MILVUS_BIND": "0.0.0.0", "MILVUS_PORT": "19530",
           "MYSQL_HOST": "host1", "MYSQL_PORT": "3306", "REDIS_HOST": "host1", "REDIS_PORT": "6379",
           "JFS_METRICS_PORT": "9567"}
    if host == 1:
        env.update({"MYSQL_IMAGE": images.REAL["mysql"], "REDIS_IMAGE": images.REAL["redis"],
                    "MISHARDS_IMAGE": images.REAL["router"], "MYSQL_BIND": "0.0.0.0", "REDIS_BIND": "0.0.0.0",
                    "MYSQL_ROOT_PASSWORD": "", "MISHARDS_BIND": "0.0.0.0", "MISHARDS_PORT": "19531",
                    "RW_HOST": "host1", "RO_HOSTS": ",".join(f"host{k}" for k in range(2, hosts + 1)),
                    "RO_PORT": "19530", "JFS_STORAGE": "file", "JFS_BUCKET": "/var/lib/milvus-lab/objects/"})
    env["MYSQL_PASSWORD"] = ""
    env["REDIS_PASSWORD"] = ""
    return env


def _env_text(env: dict[str, str], host: int) -> str:
    head = [f"# host {host}: every address, port, path and secret of this host's services.",
            "# hostN stands for that host's address; the passwords are the same on every host."]
    return "\n".join(head + [f"{k}={v}" for k, v in env.items()]) + "\n"


PREPARE = """#!/bin/sh
# Renders conf/server_config.yaml from .env and makes this host's folders. Run it first.
set -eu
cd "$(dirname "$0")"
set -a; . ./.env; set +a
mkdir -p conf "$DATA_DIR/logs" "$DATA_DIR/wal" "$JFS_MOUNT"
[ -z "${MYSQL_ROOT_PASSWORD+x}" ] || mkdir -p "$DATA_DIR/mysql" "$DATA_DIR/redis"
umask 077
eval "cat <<__LABKIT_EOF__
$(cat server_config.yaml.tmpl)
__LABKIT_EOF__" > conf/server_config.yaml
echo "conf/server_config.yaml written"
"""

JUICEFS = """#!/bin/sh
# JuiceFS on this host: `./juicefs.sh format` (host 1 only, once), then `./juicefs.sh mount` (every host).
set -eu
cd "$(dirname "$0")"
set -a; . ./.env; set +a
export META_PASSWORD="$REDIS_PASSWORD"
META="redis://${REDIS_HOST}:${REDIS_PORT}/1"
case "${1:-}" in
  format) juicefs format --storage "$JFS_STORAGE" --bucket "$JFS_BUCKET" --trash-days 0 "$META" milvus-jfs ;;
  mount)  juicefs mount -d --no-usage-report --cache-dir "$DATA_DIR/jfs-cache" --log "$DATA_DIR/juicefs.log" \\
              --metrics "127.0.0.1:${JFS_METRICS_PORT:-9567}" "$META" "$JFS_MOUNT"
          mkdir -p "$JFS_MOUNT/milvus/db" ;;
  umount) juicefs umount "$JFS_MOUNT" ;;
  *) echo "usage: $0 format|mount|umount" >&2; exit 2 ;;
esac
"""


def _readme(hosts: int) -> str:
    others = f"hosts 2..{hosts}" if hosts > 2 else "host 2"
    ro = "" if hosts < 2 else f"""
   On {others}: `cd hostK && ./prepare.sh && ./juicefs.sh mount && docker-compose up -d milvus`
   (each one a ro Milvus on its own JuiceFS mount)."""
    return f"""# The article's cluster on {hosts} host(s), with docker-compose

Written by `labkit export compose --hosts {hosts}`. One folder per host. Host 1 runs MySQL, Redis
(JuiceFS metadata), the rw Milvus and Mishards; every other host runs one ro Milvus. Each host
mounts JuiceFS itself; Milvus sees `$JFS_MOUNT/milvus/db` as `/var/lib/milvus/db`.

## 0. Fill in every `.env`
Replace `host1`, `host2`, ... by the hosts' addresses, choose the passwords (the same
`MYSQL_PASSWORD` and `REDIS_PASSWORD` on every host; `MYSQL_ROOT_PASSWORD` on host 1) and, if
needed, ports, paths (`DATA_DIR`, `JFS_MOUNT`) and the object store (`JFS_STORAGE`, `JFS_BUCKET`:
the article used `--storage wasb` with `AZURE_STORAGE_CONNECTION_STRING` in the environment).
`*_BIND=0.0.0.0` listens on every interface: firewall these ports to the cluster's hosts.
Check each file: `docker-compose config -q`.

## Order
1. Host 1: `cd host1 && ./prepare.sh && docker-compose up -d mysql redis`
2. Host 1: `./juicefs.sh format` (once), then `./juicefs.sh mount`
3. Host 1: `docker-compose up -d milvus` (the rw node){ro}
4. Host 1: `docker-compose up -d mishards`; clients connect to `host1:$MISHARDS_PORT`
   (pymilvus 1.1.x: `Milvus(host='host1', port=MISHARDS_PORT)`).

Without a registry, labkit's local images stand in for the real ones: on each host
`labkit images build`, then add `-f docker-compose.yml -f docker-compose.local.yml` to every
`docker-compose` command.

## Stop (JuiceFS clients need Redis until they have unmounted)
1. Every host but host 1: `docker-compose down`; host 1: `docker-compose stop mishards milvus`.
2. Every host: `./juicefs.sh umount`.
3. Host 1: `docker-compose down`.
"""


def export(out: Path | str, hosts: int, project: str = "milvus") -> list[Path]:
    """Write the set for ``hosts`` hosts into ``out``; returns the host folders."""
    if not 1 <= hosts <= 32:
        raise LabError(f"--hosts must be between 1 and 32, not {hosts}.")
    if not project.replace("-", "").isalnum():
        raise LabError(f"Invalid project name {project!r}; use letters, digits and '-'.")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise LabError(f"{out} is not empty; export into a new folder so nothing is overwritten.")
    from labkit.node.config import render_server_config

    mysql_pw, redis_pw, root_pw = (secrets.token_hex(12) for _ in range(3))
    folders = []
    for host in range(1, hosts + 1):
        d = out / f"host{host}"
        d.mkdir(parents=True, exist_ok=True)
        dump = lambda doc: yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)  # noqa: E731
        (d / "docker-compose.yml").write_text(dump(compose_file(host)))
        (d / "docker-compose.local.yml").write_text(dump(local_override(host)))
        env = env_file(host, hosts, project)
        env.update({"MYSQL_PASSWORD": mysql_pw, "REDIS_PASSWORD": redis_pw})
        if host == 1:
            env["MYSQL_ROOT_PASSWORD"] = root_pw
        _write_private(d / ".env", _env_text(env, host))
        (d / "server_config.yaml.tmpl").write_text(render_server_config(
            role="rw" if host == 1 else "ro", meta_uri=f"mysql://{USER}:${{MYSQL_PASSWORD}}@${{MYSQL_HOST}}:"
            f"${{MYSQL_PORT}}/{DATABASE}", port="${MILVUS_PORT}", address="${MILVUS_BIND}",  # type: ignore[arg-type]
            cache_size="4GB", insert_buffer_size="1GB"))
        for name, text in (("prepare.sh", PREPARE), ("juicefs.sh", JUICEFS)):
            (d / name).write_text(text)
            (d / name).chmod(0o755)
        folders.append(d)
    (out / "README.md").write_text(_readme(hosts))
    return folders


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def read_env(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a host's ``.env``."""
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key] = value
    return out


def write_env(path: Path, values: dict[str, str]) -> None:
    """Change variables of a host's ``.env`` in place (comments and order kept)."""
    lines, seen = [], set()
    for line in path.read_text().splitlines():
        key = line.partition("=")[0]
        if line and not line.startswith("#") and key in values:
            lines.append(f"{key}={values[key]}")
            seen.add(key)
        else:
            lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in seen]
    _write_private(path, "\n".join(lines) + "\n")


def compose_argv(folder: Path, local: bool) -> list[str]:
    """``docker-compose -f ... [-f ...local.yml]`` for a host folder."""
    argv = ["docker-compose", "--project-directory", str(folder), "-f", str(folder / "docker-compose.yml")]
    if local:
        argv += ["-f", str(folder / "docker-compose.local.yml")]
    return argv


def shell(argv: list[str]) -> str:
    return shlex.join(argv)
