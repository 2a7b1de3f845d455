"""Router settings, read the way Mishards reads them: environment variables, else an .env file.

Mishards keys (same names, same defaults): WOSERVER, SQLALCHEMY_DATABASE_URI, SERVER_PORT,
MAX_WORKERS, MAX_RETRY, DISCOVERY_CLASS_NAME (alias DISCOVERY_PLUGIN_PATH), DISCOVERY_STATIC_HOSTS,
DISCOVERY_STATIC_PORT. labkit additions, for many nodes on one IP:

- DISCOVERY_STATIC_HOSTS entries may be ``host:port`` (a bare host takes DISCOVERY_STATIC_PORT);
- DISCOVERY_STATIC_HOSTS_FILE: a file of such entries (one per line or comma separated), re-read
  when it changes, so read nodes can be added or removed at runtime;
- DISCOVERY_CLASS_NAME=labkit: the read nodes are the lab's running ``ro`` nodes (LABKIT_HOME
  state.json), re-read every second; WOSERVER may then be omitted (the lab's ``rw`` node);
- SERVER_BIND (127.0.0.1; 0.0.0.0 or a host address for multi-host use), SEARCH_TIMEOUT seconds
  per node call (15), SUSPEND_SECONDS a failed read node stays out of the ring (3);
- LABKIT_NODE_FRAMES (true): SearchInFiles and ReloadSegments reach lab nodes over a framed TCP
  link instead of gRPC (``labkit.milvus.frames``); nodes without one are called over gRPC.

Mishards's other settings are honoured: DEBUG / LOG_LEVEL, LOG_PATH, LOG_NAME, TIMEZONE (log files
and their timestamps), SQL_ECHO (every metadata query logged), and SQLALCHEMY_DATABASE_URI may be
``sqlite:////path/meta.sqlite`` as in Mishards's ``.env.example``. Mishards hard-codes its
SQLAlchemy pool (pool_size 100, pool_recycle 5, pool_timeout 30, pool_pre_ping, max_overflow 0);
here they are settable as SQLALCHEMY_POOL_SIZE (+ SQLALCHEMY_MAX_OVERFLOW: metadata connections
open at once), SQLALCHEMY_POOL_RECYCLE (seconds before a connection is reopened, 0 = never),
SQLALCHEMY_POOL_TIMEOUT (seconds to wait for a connection) and SQLALCHEMY_POOL_PRE_PING.
Settings of Mishards that the router does not have (tracing, Kubernetes discovery, another
ROUTER_CLASS_NAME) are refused with a sentence saying so.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from labkit.errors import LabError
from labkit.milvus.defaults import DEFAULT_PORT


@dataclass
class RouterConfig:
    woserver: str = ""  # "host:port" of the rw node ("" = from the lab state, labkit discovery)
    db: dict = field(default_factory=dict)  # pymysql.connect kwargs
    server_port: int = DEFAULT_PORT
    server_bind: str = "127.0.0.1"
    max_workers: int = 50
    max_retry: int = 3
    discovery: str = "static"  # static | labkit
    static_hosts: list[str] = field(default_factory=list)  # "host:port"
    static_port: int = DEFAULT_PORT
    hosts_file: str = ""
    labkit_home: str = ""
    search_timeout: float = 15.0
    suspend_seconds: float = 3.0
    # Mishards's logging and metadata settings
    log_level: str = "INFO"
    log_path: str = ""  # "" = log to stderr only (LOG_PATH unset); Mishards's default is /tmp/mishards
    log_name: str = "logfile"
    timezone: str = "UTC"
    sql_echo: bool = False
    pool_size: int = 100
    max_overflow: int = 0
    pool_recycle: float = 0.0
    pool_timeout: float = 30.0
    pool_pre_ping: bool = False
    pushgateway: str = ""  # host:port: push the router's counters there every second (labkit)
    node_frames: bool = True  # per-search calls to lab nodes over framed TCP (labkit.milvus.frames)


def read_env_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """``KEY=VALUE`` lines (``#`` comments, optional ``export`` and quotes), as python-dotenv reads them."""
    out: dict[str, str] = {}
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise LabError(f"Cannot read the router's env file {path} ({exc.strerror}).") from None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        if line.startswith("export "):
            line = line[7:].lstrip()
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[key.strip()] = value
    return out


def parse_tcp(uri: str, default_port: int = DEFAULT_PORT) -> str:
    """``tcp://host:port`` / ``host:port`` / ``host`` -> ``host:port``."""
    text = uri.strip()
    if "://" in text:
        scheme, _, text = text.partition("://")
        if scheme not in {"tcp", "grpc"}:
            raise LabError(f"WOSERVER must look like tcp://host:port, not {uri!r}.")
    text = text.strip("/")
    if not text:
        raise LabError(f"WOSERVER must look like tcp://host:port, not {uri!r}.")
    return parse_host(text, default_port)


def parse_host(entry: str, default_port: int) -> str:
    """``host`` or ``host:port`` -> ``host:port`` (a bad port is one clear error)."""
    host, sep, port = entry.strip().rpartition(":")
    if not sep:
        host, port = entry.strip(), str(default_port)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LabError(f"{entry!r} is not a host or host:port.")
    return f"{host}:{int(port)}"


def parse_hosts(text: str, default_port: int) -> list[str]:
    """A comma/whitespace separated host list -> unique ``host:port`` entries, order kept."""
    seen: list[str] = []
    for item in text.replace("\n", ",").split(","):
        item = item.split("#", 1)[0].strip()
        if item:
            addr = parse_host(item, default_port)
            if addr not in seen:
                seen.append(addr)
    return seen


def parse_sqlalchemy_uri(uri: str) -> dict:
    """``mysql+pymysql://user:pass@host:port/db?charset=utf8mb4`` -> pymysql.connect kwargs;
    ``sqlite:////abs/path/meta.sqlite`` -> ``{"sqlite": "/abs/path/meta.sqlite"}``."""
    parsed = urlparse(uri.strip())
    if parsed.scheme.split("+", 1)[0] == "sqlite":
        path = unquote(parsed.path)
        if not path or path == "/":
            raise LabError("SQLALCHEMY_DATABASE_URI sqlite:// needs a file, e.g. "
                           "sqlite:////var/lib/milvus/db/meta.sqlite "
                           "(the node's <storage.path>/db/meta.sqlite).")
        # SQLAlchemy's form: sqlite:////abs/path (four slashes), sqlite:///relative/path (three)
        return {"sqlite": str(Path(path[1:]).resolve())}
    if parsed.scheme.split("+", 1)[0] != "mysql":
        raise LabError("SQLALCHEMY_DATABASE_URI must be a mysql+pymysql:// or sqlite:// URI "
                       f"(got scheme {parsed.scheme!r}).")
    database = parsed.path.lstrip("/")
    if not parsed.hostname or not database:
        raise LabError("SQLALCHEMY_DATABASE_URI needs a host and a database name, "
                       "e.g. mysql+pymysql://root:pass@127.0.0.1:3306/milvus.")
    params = {
        "host": parsed.hostname,
        "port": parsed.port or 3306,
        "user": unquote(parsed.username or "root"),
        "password": unquote(parsed.password or ""),
        "database": database,
    }
    query = parse_qs(parsed.query)
    if "charset" in query:
        params["charset"] = query["charset"][0]
    return params


def _int(env: Mapping[str, str], key: str, default: int) -> int:
    value = env.get(key, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise LabError(f"{key} must be a whole number, not {value!r}.") from None


def _float(env: Mapping[str, str], key: str, default: float) -> float:
    value = env.get(key, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise LabError(f"{key} must be a number, not {value!r}.") from None


_UNSUPPORTED = {
    "TRACER_CLASS_NAME": "tracing (jaeger) is not built into the labkit router",
    "TRACING_TYPE": "tracing (jaeger) is not built into the labkit router",
    "SD_PROVIDER": "Kubernetes discovery is not available; use DISCOVERY_CLASS_NAME static or labkit",
}


def _bool(env: Mapping[str, str], key: str, default: bool) -> bool:
    value = env.get(key, "").strip().lower()
    if not value:
        return default
    if value in {"1", "true", "yes", "on", "t", "y"}:
        return True
    if value in {"0", "false", "no", "off", "f", "n"}:
        return False
    raise LabError(f"{key} must be true or false, not {env[key]!r}.")


def _logging_settings(merged: Mapping[str, str], cfg: RouterConfig) -> None:
    import logging
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    debug = _bool(merged, "DEBUG", False)
    cfg.log_level = merged.get("LOG_LEVEL", "DEBUG" if debug else "INFO").strip().upper()
    if not isinstance(logging.getLevelName(cfg.log_level), int):
        raise LabError("LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, "
                       f"not {cfg.log_level!r}.")
    cfg.log_path = merged.get("LOG_PATH", "").strip()
    cfg.log_name = merged.get("LOG_NAME", "logfile").strip() or "logfile"
    cfg.timezone = merged.get("TIMEZONE", "UTC").strip() or "UTC"
    try:
        ZoneInfo(cfg.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise LabError(f"TIMEZONE {cfg.timezone!r} is not a time zone name "
                       "(e.g. UTC, Asia/Shanghai).") from None
    cfg.sql_echo = _bool(merged, "SQL_ECHO", False)


def _pool_settings(merged: Mapping[str, str], cfg: RouterConfig) -> None:
    cfg.pool_size = max(1, _int(merged, "SQLALCHEMY_POOL_SIZE", cfg.pool_size))
    cfg.max_overflow = max(0, _int(merged, "SQLALCHEMY_MAX_OVERFLOW", cfg.max_overflow))
    cfg.pool_recycle = max(0.0, _float(merged, "SQLALCHEMY_POOL_RECYCLE", cfg.pool_recycle))
    cfg.pool_timeout = max(0.1, _float(merged, "SQLALCHEMY_POOL_TIMEOUT", cfg.pool_timeout))
    cfg.pool_pre_ping = _bool(merged, "SQLALCHEMY_POOL_PRE_PING", cfg.pool_pre_ping)


def load(env: Mapping[str, str] | None = None,
         env_file: str | os.PathLike[str] | None = None) -> RouterConfig:
    """Settings from ``env`` (default os.environ) over ``env_file``; one clear LabError when invalid."""
    merged: dict[str, str] = {}
    if env_file:
        merged.update(read_env_file(env_file))
    # an empty variable does not hide the file's value (the lab service blanks inherited ones)
    merged.update({k: v for k, v in (os.environ if env is None else env).items() if v != ""})

    discovery = merged.get("DISCOVERY_CLASS_NAME") or merged.get("DISCOVERY_PLUGIN_PATH") or "static"
    discovery = discovery.strip()
    if discovery not in {"static", "labkit"}:
        raise LabError(f"DISCOVERY_CLASS_NAME {discovery!r} is not supported here; use static or labkit.")
    static_port = _int(merged, "DISCOVERY_STATIC_PORT", DEFAULT_PORT)
    cfg = RouterConfig(
        server_port=_int(merged, "SERVER_PORT", DEFAULT_PORT),
        server_bind=merged.get("SERVER_BIND", "127.0.0.1").strip() or "127.0.0.1",
        max_workers=max(2, _int(merged, "MAX_WORKERS", 50)),
        max_retry=max(0, _int(merged, "MAX_RETRY", 3)),
        discovery=discovery,
        static_hosts=parse_hosts(merged.get("DISCOVERY_STATIC_HOSTS", ""), static_port),
        static_port=static_port,
        hosts_file=merged.get("DISCOVERY_STATIC_HOSTS_FILE", "").strip(),
        labkit_home=merged.get("LABKIT_HOME", "").strip(),
        search_timeout=_float(merged, "SEARCH_TIMEOUT", 15.0),
        suspend_seconds=_float(merged, "SUSPEND_SECONDS", 3.0),
    )
    wo = merged.get("WOSERVER", "").strip()
    if wo:
        cfg.woserver = parse_tcp(wo)
    elif discovery != "labkit":
        raise LabError("WOSERVER is not set; give the rw node as tcp://host:port.")
    uri = merged.get("SQLALCHEMY_DATABASE_URI", "").strip()
    if not uri:
        raise LabError("SQLALCHEMY_DATABASE_URI is not set; give the metadata MySQL as "
                       "mysql+pymysql://user:pass@host:port/milvus.")
    cfg.db = parse_sqlalchemy_uri(uri)
    for key, why in _UNSUPPORTED.items():
        if merged.get(key, "").strip():
            raise LabError(f"{key} is set, but {why}; unset it.")
    router_class = merged.get("ROUTER_CLASS_NAME", "FileBasedHashRingRouter").strip()
    if router_class != "FileBasedHashRingRouter":
        raise LabError(f"ROUTER_CLASS_NAME {router_class!r} is not available; the router implements "
                       "Mishards's FileBasedHashRingRouter only.")
    _logging_settings(merged, cfg)
    _pool_settings(merged, cfg)
    cfg.node_frames = _bool(merged, "LABKIT_NODE_FRAMES", True)
    cfg.pushgateway = merged.get("PUSHGATEWAY", "").strip()
    if cfg.pushgateway:
        cfg.pushgateway = parse_host(cfg.pushgateway, 9091)
    return cfg
