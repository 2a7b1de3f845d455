"""Milvus 1.1's rules for server_config.yaml values (Config.cpp ``Check*``), with its codes and messages.

``check(section, key, value, values)`` raises MilvusError when 1.1 would refuse ``value``: at startup
(the node does not start) and on ``set_config`` (the value is not taken). Codes follow 1.1's gRPC
mapping: SERVER_INVALID_ARGUMENT -> ILLEGAL_ARGUMENT (5), SERVER_UNEXPECTED_ERROR -> 1.

``SETTABLE`` is what 1.1's ``set_config`` accepts (others answer ``Config node invalid``),
``LIVE_SECTIONS`` the sections whose keys take effect without a restart (cache, engine_config, gpu).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from typing import Any

from labkit.milvus.status import Code, MilvusError

PORT_MIN, PORT_MAX = 1024, 65535  # exclusive bounds, as 1.1 checks them
LOG_LEVELS = ("debug", "info", "warning", "error", "fatal")
SIMD_TYPES = ("avx512", "avx2", "sse", "auto")
_BOOLS = {"true", "on", "yes", "1", "false", "off", "no", "0", ""}
_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_TZ = re.compile(r"[+-]((\d|0\d|1\d|2[0-3])|((\d|0\d|1\d|2[0-3]):[0-5]\d))")
_URI = re.compile(r"(.*)://(.*):(.*)@(.*):(.*)/(.*)")

SETTABLE: dict[str, set[str]] = {
    "cluster": {"enable", "role"},
    "general": {"timezone", "meta_uri"},
    "network": {"bind.address", "bind.port", "http.port"},
    "storage": {"path", "auto_flush_interval"},
    "metric": {"enable", "address", "port"},
    "cache": {"cache_size", "cpu_cache_threshold", "cache_insert_data", "insert_buffer_size",
              "preload_collection"},
    "engine_config": {"use_blas_threshold", "omp_thread_num", "simd_type", "search_combine_nq",
                      "max_partition_num"},
    "wal": {"enable", "recovery_error_ignore", "buffer_size", "path"},
    "logs": {"level", "trace.enable", "path", "max_log_file_size", "log_rotate_num", "log_to_stdout",
             "log_to_file"},
}
LIVE_SECTIONS = {"cache", "engine_config", "gpu"}
LIVE_KEYS = {"storage.auto_flush_interval"}  # live on the lab node too (1.1 needed a restart)


def _bad(msg: str, code: Code = Code.ILLEGAL_ARGUMENT) -> MilvusError:
    return MilvusError(code, msg)


def text(value: Any) -> str:
    """A YAML value as 1.1 keeps it in memory (a string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(x) for x in value)
    return "" if value is None else str(value)


def is_number(s: str) -> bool:
    return bool(s) and s.isdigit()


def to_bool(s: str) -> bool:
    return s.strip().lower() in {"true", "on", "yes", "1"}


def parse_bytes(value: Any) -> int:
    """1.1's ``parse_bytes``: digits, or digits with one of b/k/m/g (an extra trailing ``b`` allowed)."""
    s = text(value).strip()
    if is_number(s):
        return int(s)
    if not s:
        return 0
    if len(s) >= 2 and s[-2:].isalpha() and s[-1] in "bB":
        s = s[:-1]
    suffix = s[-1].lower()
    digits = s if suffix.isdigit() else s[:-1]
    if suffix.isdigit():
        suffix = "b"
    if suffix not in _UNITS or not is_number(digits):
        raise _bad(f"The specified value for memory ({value}) should specify the units."
                   "The postfix should be one of the `b` `k` `m` `g` characters")
    return int(digits) * _UNITS[suffix]


def total_memory() -> int:
    """Physical memory, or the cgroup limit when that is lower (as 1.1 compares against both)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = open(path).read().strip()  # noqa: SIM115
        except OSError:
            continue
        if raw.isdigit():
            total = min(total, int(raw))
    return total


def _bool(what: str, prefix: str) -> Callable[[str, dict], None]:
    def rule(v: str, _: dict) -> None:
        if v.lower() not in _BOOLS:
            raise _bad(f"{prefix}: {v}. Possible reason: {what} is not a boolean.")
    return rule


def _plain_bool(v: str, _: dict) -> None:
    if v.lower() not in _BOOLS:
        raise _bad(f"Invalid boolean: {v}")


def _port(label: str, key: str) -> Callable[[str, dict], None]:
    def rule(v: str, _: dict) -> None:
        if not is_number(v):
            raise _bad(f"Invalid {label}: {v}. Possible reason: {key} is not a number.")
        if not PORT_MIN < int(v) < PORT_MAX:
            raise _bad(f"Invalid {label}: {v}. Possible reason: {key} is not in range "
                       f"({PORT_MIN}, {PORT_MAX}).")
    return rule


def _ip(label: str, key: str) -> Callable[[str, dict], None]:
    def rule(v: str, _: dict) -> None:
        try:
            ipaddress.IPv4Address(v)
        except ValueError:
            raise _bad(f"Invalid {label}: {v}. Possible reason: {key} is invalid.") from None
    return rule


def _path(key: str, empty_msg: str) -> Callable[[str, dict], None]:
    # 1.1 also refuses any character outside [A-Za-z0-9_-/]; the lab keeps its data under
    # ~/.labkit, so '.' is allowed here (listed in docs/differences-from-milvus-1.1.md).
    def rule(v: str, _: dict) -> None:
        if not v:
            raise _bad(empty_msg)
        if not v.startswith("/") or "//" in v:
            raise _bad("Invalid file path")
    return rule


def _number(msg: str) -> Callable[[str, dict], None]:
    def rule(v: str, _: dict) -> None:
        if not is_number(v):
            raise _bad(msg.format(v=v))
    return rule


def _range(msg: str, range_msg: str, lo: int, hi: int) -> Callable[[str, dict], None]:
    def rule(v: str, _: dict) -> None:
        if not is_number(v):
            raise _bad(msg.format(v=v))
        if not lo <= int(v) <= hi:
            raise _bad(range_msg.format(v=v, lo=lo, hi=hi))
    return rule


def _role(v: str, _: dict) -> None:
    if v not in ("rw", "ro"):
        raise _bad("cluster.role is not one of rw and ro.")


def _timezone(v: str, _: dict) -> None:
    if len(v) <= 3 or not v.startswith("UTC"):
        raise _bad(f"Invalid general.timezone: {v}")
    if not _TZ.fullmatch(v[3:]):
        raise _bad(f"Invalid general.timezone: {v}", Code.UNEXPECTED_ERROR)


def _meta_uri(v: str, _: dict) -> None:
    m = _URI.fullmatch(v)
    ok = bool(m) and ("mysql" in m.group(1).lower() or "sqlite" in m.group(1).lower())
    if ok and m.group(5) and not is_number(m.group(5)):
        ok = False
    if not ok:
        raise _bad(f"Invalid meta uri: {v}. Possible reason: general.meta_uri is invalid. The correct format "
                   "should be like sqlite://:@:/ or mysql://root:123456@127.0.0.1:3306/milvus.")


def _cache_size(v: str, values: dict) -> None:
    size = parse_bytes(v)
    if size <= 0:
        raise _bad(f"Invalid cpu cache capacity: {v}. Possible reason: cache.cache_size is not a "
                   "positive integer.")
    total = total_memory()
    if size >= total:
        raise _bad(f"Invalid cpu cache size: {v}. Possible reason: cache.cache_size exceeds system memory.")
    if parse_bytes(values["cache"]["insert_buffer_size"]) + size >= total:
        raise _bad(f"Invalid cpu cache size: {v}. Possible reason: sum of cache.cache_size and "
                   "cache.insert_buffer_size exceeds system memory.")


def _insert_buffer(v: str, values: dict) -> None:
    size = parse_bytes(v)
    if size <= 0:
        raise _bad(f"Invalid insert buffer size: {v}. Possible reason: cache.insert_buffer_size is not a "
                   "positive integer.")
    if size + parse_bytes(values["cache"]["cache_size"]) >= total_memory():
        raise _bad(f"Invalid insert buffer size: {v}. Possible reason: sum of cache.cache_size and "
                   "cache.insert_buffer_size exceeds system memory.")


def _threshold(v: str, _: dict) -> None:
    msg = (f"Invalid cpu cache threshold: {v}. Possible reason: cache_config.cpu_cache_threshold is not in "
           "range (0.0, 1.0].")
    try:
        x = float(v)
    except ValueError:
        raise _bad(msg) from None
    if not 0.0 < x < 1.0:
        raise _bad(msg)


def _preload(v: str, _: dict) -> None:
    # existence is checked against the metadata when the node starts (a missing collection is fatal)
    if v in ("", "*", "'*'"):
        return
    names = v.split(",")
    for name in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,254}", name):
            raise _bad(f"Invalid collection name: {name}")
    if len(set(names)) != len(names):
        raise _bad("Invalid preload tables. Possible reason: cache.preload_collection contains duplicate "
                   "collection.")


def _omp(v: str, _: dict) -> None:
    if not is_number(v):
        raise _bad(f"Invalid omp thread num: {v}. Possible reason: engine_config.omp_thread_num is not a "
                   "positive integer.")
    if int(v) > (os.cpu_count() or 8):
        raise _bad(f"Invalid omp thread num: {v}. Possible reason: engine_config.omp_thread_num "
                   "exceeds system cpu cores.")


def _simd(v: str, _: dict) -> None:
    if v not in SIMD_TYPES:
        raise _bad("engine_config.simd_type is not one of avx512, avx2, sse and auto.")


def _wal_buffer(v: str, _: dict) -> None:
    try:
        parse_bytes(v)
    except MilvusError:
        raise _bad(f"Invalid wal buffer size: {v}. Possible reason: wal.buffer_size is not a positive "
                   "integer.") from None


def _log_level(v: str, _: dict) -> None:
    if not v:
        raise _bad("logs.level is empty!")
    if v not in LOG_LEVELS:
        raise _bad("Log level must be one of debug, info, warning, error and fatal.")


def _log_size(v: str, _: dict) -> None:
    lo, hi = 512 << 20, 4 << 30
    try:
        size = parse_bytes(v)
    except MilvusError:
        raise _bad(f"Invalid max_log_file_size: {v}. Possible reason: logs.max_log_file_size is not "
                   "a positive integer.") from None
    if not lo <= size <= hi:
        raise _bad(f"Invalid max_log_file_size: {v}. Possible reason: logs.max_log_file_size is not in range "
                   f"[{lo}, {hi}].")


def _version(v: str, _: dict) -> None:
    if v != "0.5":
        raise _bad(f"Invalid config version: {v}. Expected config version: 0.5")


def _gpu_enable(v: str, _: dict) -> None:
    _bool("gpu.enable", "Invalid gpu resource config")(v, _)


RULES: dict[tuple[str, str], Callable[[str, dict], None]] = {
    ("version", ""): _version,
    ("cluster", "enable"): _plain_bool,
    ("cluster", "role"): _role,
    ("general", "timezone"): _timezone,
    ("general", "meta_uri"): _meta_uri,
    ("network", "bind.address"): _ip("server IP address", "network.bind.address"),
    ("network", "bind.port"): _port("server port", "network.bind.port"),
    ("network", "http.enable"): _plain_bool,
    ("network", "http.port"): _port("web server port", "network.http.port"),
    ("storage", "path"): _path("storage.path", "storage.path is empty."),
    ("storage", "auto_flush_interval"): _number(
        "Invalid storage configuration auto_flush_interval: {v}. Possible reason: "
        "storage.auto_flush_interval is not a natural number."),
    ("storage", "file_cleanup_timeout"): _range(
        "Invalid file_cleanup_timeout: {v}. Possible reason: storage.file_cleanup_timeout is not a positive "
        "integer.",
        "Invalid file_cleanup_timeout: {v}. Possible reason: storage.file_cleanup_timeout is not in range "
        "[{lo}, {hi}].", 0, 3600),
    ("metric", "enable"): _bool("metric.enable", "Invalid metric config"),
    ("metric", "address"): _ip("metric ip", "metric.ip"),
    ("metric", "port"): _port("metric port", "metric.port"),
    ("cache", "cache_size"): _cache_size,
    ("cache", "cpu_cache_threshold"): _threshold,
    ("cache", "insert_buffer_size"): _insert_buffer,
    ("cache", "cache_insert_data"): _bool("cache_config.cache_insert_data",
                                          "Invalid cache insert data option"),
    ("cache", "preload_collection"): _preload,
    ("engine_config", "use_blas_threshold"): _number(
        "Invalid use blas threshold: {v}. Possible reason: engine_config.use_blas_threshold is not "
        "a positive integer."),
    ("engine_config", "omp_thread_num"): _omp,
    ("engine_config", "simd_type"): _simd,
    ("engine_config", "search_combine_nq"): _number(
        "Invalid omp thread num: {v}. Possible reason: engine_config.omp_thread_num is not a "
        "positive integer."),
    ("engine_config", "max_partition_num"): _number(
        "Invalid max partition number: {v}. Possible reason: engine_config.max_partition_num is "
        "not a positive integer."),
    ("gpu", "enable"): _gpu_enable,
    ("wal", "enable"): _bool("wal.enable", "Invalid wal config"),
    ("wal", "recovery_error_ignore"): _bool("wal.recovery_error_ignore", "Invalid wal config"),
    ("wal", "buffer_size"): _wal_buffer,
    ("wal", "path"): _path("wal.path", "wal.path is empty!"),
    ("logs", "level"): _log_level,
    ("logs", "trace.enable"): _bool("logs.trace.enable", "Invalid logs config"),
    ("logs", "path"): _path("logs.path", "logs.path is empty!"),
    ("logs", "max_log_file_size"): _log_size,
    ("logs", "log_rotate_num"): _range(
        "Invalid log_rotate_num: {v}. Possible reason: logs.log_rotate_num is not a positive integer.",
        "Invalid log_rotate_num: {v}. Possible reason: logs.log_rotate_num is not in range [{lo}, {hi}].",
        0, 1024),
    ("logs", "log_to_stdout"): _bool("logs.log_to_stdout", "Invalid logs config"),
    ("logs", "log_to_file"): _bool("logs.log_to_file", "Invalid logs config"),
}


def check(section: str, key: str, value: Any, values: dict) -> None:
    """Refuse ``value`` for ``section.key`` as 1.1 would; keys without a rule take any value."""
    rule = RULES.get((section, key))
    if rule is not None:
        rule(text(value), values)
