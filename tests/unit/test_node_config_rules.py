"""1.1's value rules (Config.cpp Check*): accepted values pass, refused ones carry 1.1's code and message."""

from __future__ import annotations

import pytest

from labkit.milvus.status import Code, MilvusError
from labkit.node import config_rules as rules
from labkit.node.config import DEFAULTS


@pytest.mark.parametrize(("section", "key", "value"), [
    ("general", "timezone", "UTC+8"), ("general", "timezone", "UTC-05:30"), ("general", "timezone", "UTC+23"),
    ("general", "meta_uri", "mysql://root:123456@127.0.0.1:3306/milvus"), ("general", "meta_uri", "sqlite://:@:/"),
    ("network", "bind.port", "1025"), ("network", "bind.address", "0.0.0.0"), ("cluster", "enable", "on"),
    ("cache", "cache_size", "1g"), ("cache", "preload_collection", "*"),
    ("cache", "preload_collection", "a,b"), ("engine_config", "simd_type", "avx2"),
    ("logs", "level", "fatal"), ("logs", "max_log_file_size", "512MB"), ("logs", "log_rotate_num", "1024"),
    ("storage", "file_cleanup_timeout", "3600"), ("wal", "buffer_size", "1g"),
])
def test_accepted(section, key, value):
    rules.check(section, key, value, DEFAULTS)


@pytest.mark.parametrize(("section", "key", "value", "code", "message"), [
    ("general", "timezone", "GMT+8", Code.ILLEGAL_ARGUMENT, "Invalid general.timezone: GMT+8"),
    ("general", "timezone", "UTC+24", Code.UNEXPECTED_ERROR, "Invalid general.timezone: UTC+24"),
    ("network", "bind.port", "1024", Code.ILLEGAL_ARGUMENT, "not in range (1024, 65535)"),
    ("network", "bind.port", "abc", Code.ILLEGAL_ARGUMENT, "network.bind.port is not a number"),
    ("network", "bind.address", "localhost", Code.ILLEGAL_ARGUMENT, "Invalid server IP address: localhost"),
    ("metric", "port", "99999", Code.ILLEGAL_ARGUMENT, "metric.port is not in range (1024, 65535)"),
    ("cluster", "enable", "yesplease", Code.ILLEGAL_ARGUMENT, "Invalid boolean: yesplease"),
    ("cluster", "role", "master", Code.ILLEGAL_ARGUMENT, "cluster.role is not one of rw and ro."),
    ("cache", "cache_size", "0", Code.ILLEGAL_ARGUMENT, "cache.cache_size is not a positive integer"),
    ("cache", "cpu_cache_threshold", "1.0", Code.ILLEGAL_ARGUMENT, "not in range (0.0, 1.0]"),
    ("cache", "preload_collection", "a,a", Code.ILLEGAL_ARGUMENT, "contains duplicate collection"),
    ("cache", "preload_collection", "1abc", Code.ILLEGAL_ARGUMENT, "Invalid collection name: 1abc"),
    ("engine_config", "omp_thread_num", "9999", Code.ILLEGAL_ARGUMENT, "exceeds system cpu cores"),
    ("engine_config", "use_blas_threshold", "-1", Code.ILLEGAL_ARGUMENT, "is not a positive integer"),
    ("storage", "auto_flush_interval", "0.5", Code.ILLEGAL_ARGUMENT, "is not a natural number"),
    ("storage", "file_cleanup_timeout", "3601", Code.ILLEGAL_ARGUMENT, "is not in range [0, 3600]"),
    ("storage", "path", "relative/path", Code.ILLEGAL_ARGUMENT, "Invalid file path"),
    ("logs", "log_rotate_num", "1025", Code.ILLEGAL_ARGUMENT, "is not in range [0, 1024]"),
    ("logs", "level", "", Code.ILLEGAL_ARGUMENT, "logs.level is empty!"),
    ("version", "", "0.4", Code.ILLEGAL_ARGUMENT,
     "Invalid config version: 0.4. Expected config version: 0.5"),
])
def test_refused(section, key, value, code, message):
    with pytest.raises(MilvusError) as err:
        rules.check(section, key, value, DEFAULTS)
    assert err.value.code == code and message in err.value.reason


def test_every_settable_key_has_a_default():
    for section, keys in rules.SETTABLE.items():
        assert keys <= set(DEFAULTS[section]), section
