"""Router settings: Mishards variable names, .env files, host:port entries, clear errors."""

import pytest

from labkit.errors import LabError
from labkit.router import config

URI = "mysql+pymysql://root:p%40ss@127.0.0.1:3307/milvus?charset=utf8mb4"


def test_mishards_names_and_defaults():
    cfg = config.load({"WOSERVER": "tcp://127.0.0.1:19540", "SQLALCHEMY_DATABASE_URI": URI,
                       "DISCOVERY_STATIC_HOSTS": "127.0.0.1:19541, 127.0.0.1:19542,10.0.0.5"})
    assert cfg.woserver == "127.0.0.1:19540"
    assert cfg.db == {"host": "127.0.0.1", "port": 3307, "user": "root", "password": "p@ss",
                      "database": "milvus", "charset": "utf8mb4"}
    assert cfg.static_hosts == ["127.0.0.1:19541", "127.0.0.1:19542", "10.0.0.5:19530"]
    assert (cfg.server_port, cfg.max_retry, cfg.max_workers, cfg.discovery) == (19530, 3, 50, "static")


def test_env_file_and_environment_wins(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "# mishards\nexport WOSERVER='tcp://127.0.0.1:1'\nSQLALCHEMY_DATABASE_URI=" + URI + "\n"
        'SERVER_PORT="19531"\nDISCOVERY_PLUGIN_PATH=static\nDISCOVERY_STATIC_PORT=19600\n'
        "DISCOVERY_STATIC_HOSTS=127.0.0.1\nMAX_RETRY=1\n")
    cfg = config.load({"WOSERVER": "tcp://127.0.0.1:2"}, env_file=env_file)
    assert cfg.woserver == "127.0.0.1:2"
    assert cfg.server_port == 19531 and cfg.max_retry == 1
    assert cfg.static_hosts == ["127.0.0.1:19600"]


@pytest.mark.parametrize("env, words", [
    ({"SQLALCHEMY_DATABASE_URI": URI}, "WOSERVER"),
    ({"WOSERVER": "tcp://h:1"}, "SQLALCHEMY_DATABASE_URI"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": "postgresql://u@h/x"}, r"mysql\+pymysql"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": "sqlite://"}, "needs a file"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "TIMEZONE": "Mars/Base"}, "TIMEZONE"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "SQL_ECHO": "maybe"}, "SQL_ECHO"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "TRACER_CLASS_NAME": "jaeger"}, "tracing"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "ROUTER_CLASS_NAME": "Mine"},
     "FileBasedHashRing"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "SQLALCHEMY_POOL_SIZE": "ten"}, "POOL_SIZE"),
    ({"WOSERVER": "http://h:1", "SQLALCHEMY_DATABASE_URI": URI}, "tcp://host:port"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "MAX_RETRY": "x"}, "MAX_RETRY"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "DISCOVERY_STATIC_HOSTS": "h:99999"},
     "host:port"),
    ({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI": URI, "DISCOVERY_CLASS_NAME": "kubernetes"},
     "static"),
])
def test_bad_settings_are_one_clear_error(env, words):
    with pytest.raises(LabError, match=words):
        config.load(env)


def test_labkit_discovery_may_omit_woserver():
    cfg = config.load({"SQLALCHEMY_DATABASE_URI": URI, "DISCOVERY_CLASS_NAME": "labkit"})
    assert cfg.woserver == "" and cfg.discovery == "labkit"


def test_hosts_file_is_reread_when_it_changes(tmp_path):
    import os

    from labkit.router.discovery import Discovery

    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1:1\n")
    cfg = config.load({"WOSERVER": "tcp://127.0.0.1:9", "SQLALCHEMY_DATABASE_URI": URI,
                       "DISCOVERY_STATIC_HOSTS_FILE": str(hosts), "DISCOVERY_STATIC_HOSTS": "127.0.0.1:5"})
    d = Discovery(cfg)
    assert d.read_nodes() == ["127.0.0.1:5", "127.0.0.1:1"]
    hosts.write_text("127.0.0.1:2, 127.0.0.1:3\n")
    os.utime(hosts, (1, 1))  # a distinct mtime even within one clock tick
    assert d.read_nodes() == ["127.0.0.1:5", "127.0.0.1:2", "127.0.0.1:3"]
    d.remove("127.0.0.1:5")
    d.add("127.0.0.1:4")
    d.suspend("127.0.0.1:2")
    assert d.read_nodes() == ["127.0.0.1:2", "127.0.0.1:3", "127.0.0.1:4"]
    assert d.live_nodes() == ["127.0.0.1:3", "127.0.0.1:4"]
    assert d.suspended() == ["127.0.0.1:2"]


def test_mishards_settings_are_read():
    cfg = config.load({"WOSERVER": "tcp://h:1", "SQLALCHEMY_DATABASE_URI":
                       "sqlite:////tmp/milvus/db/meta.sqlite?check_same_thread=False", "DEBUG": "True",
                       "LOG_PATH": "/tmp/m", "LOG_NAME": "router", "TIMEZONE": "Asia/Shanghai",
                       "SQL_ECHO": "true", "SQLALCHEMY_POOL_SIZE": "4", "SQLALCHEMY_MAX_OVERFLOW": "2",
                       "SQLALCHEMY_POOL_RECYCLE": "5", "SERVER_BIND": "0.0.0.0"})
    assert cfg.db == {"sqlite": "/tmp/milvus/db/meta.sqlite"}
    assert (cfg.log_level, cfg.log_path, cfg.log_name, cfg.timezone) == ("DEBUG", "/tmp/m", "router",
                                                                         "Asia/Shanghai")
    assert cfg.sql_echo and (cfg.pool_size, cfg.max_overflow, cfg.pool_recycle) == (4, 2, 5.0)
    assert cfg.server_bind == "0.0.0.0"
